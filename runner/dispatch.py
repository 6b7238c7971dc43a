"""Event batch in, BatchResult out: each event to each strategy that wants it, errors per strategy.

Every event is converted from the protocol once and offered to every strategy slot of this
runner; ``StrategySlot`` wraps each handler call in its own ``try/except``, so a strategy that
raises gets an ``Error`` for that event and the others carry on. An event the runner cannot
read is reported as a ``bad_event`` error rather than ending the runner.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from engine_proto import strategy_pb2 as pb
from runner import wire
from sdk.dispatch import HandlerError, StrategySlot
from sdk.events import Event

__all__ = ["Dispatcher", "error_to_pb"]


def error_to_pb(error: HandlerError, seq: int = 0) -> pb.Error:
    return pb.Error(
        kind=error.kind, strategy=error.strategy, seq=seq, text=error.text,
        traceback=error.traceback, handler=error.handler,
    )  # fmt: skip


class _Output:
    """What one strategy produced over one batch."""

    __slots__ = ("compute_before", "errors", "events_before")

    def __init__(self, slot: StrategySlot) -> None:
        self.errors: list[pb.Error] = []
        self.events_before = slot.events
        self.compute_before = slot.compute_ns


class Dispatcher:
    """Delivers protocol batches to the runner's strategy slots."""

    def __init__(self, slots: Sequence[StrategySlot]) -> None:
        self.slots = list(slots)
        self.by_id = {slot.strategy_id: slot for slot in self.slots}

    def handle_batch(self, batch: pb.EventBatch) -> pb.BatchResult:
        started = time.perf_counter_ns()
        seq = batch.seq
        outputs = {slot.strategy_id: _Output(slot) for slot in self.slots}
        for message in batch.events:
            try:
                event = wire.event_from_pb(message)
            except Exception as exc:
                self._bad_event(outputs, message.target, seq, exc)
                continue
            self._deliver(event, message.target, outputs, seq)
        result = pb.BatchResult(seq=seq, compute_ns=time.perf_counter_ns() - started)
        for slot in self.slots:
            result.outputs.append(self._output(slot, outputs[slot.strategy_id]))
        return result

    def _deliver(self, event: Event, target: str, outputs: dict[str, _Output], seq: int) -> None:
        slots = self.slots if not target else [self.by_id[target]] if target in self.by_id else []
        for slot in slots:
            if slot.wants(event):
                error = slot.deliver(event)
                if error is not None:
                    outputs[slot.strategy_id].errors.append(error_to_pb(error, seq))

    def _bad_event(self, outputs: dict[str, _Output], target: str, seq: int, exc: Exception) -> None:
        text = f"the runner could not read an event: {type(exc).__name__}: {exc}"
        for strategy_id, output in outputs.items():
            if not target or target == strategy_id:
                output.errors.append(pb.Error(kind="bad_event", strategy=strategy_id, seq=seq, text=text))

    def _output(self, slot: StrategySlot, output: _Output) -> pb.StrategyOutput:
        signals, cancels = slot.drain()
        now = slot.context.now_ns()
        return pb.StrategyOutput(
            strategy=slot.strategy_id,
            signals=[wire.signal_to_pb(signal, now) for signal in signals],
            cancels=[wire.cancel_to_pb(cancel) for cancel in cancels],
            errors=output.errors,
            compute_ns=slot.compute_ns - output.compute_before,
            events=slot.events - output.events_before,
        )

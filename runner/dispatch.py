"""Event batch in, BatchResult out: each event to each strategy that wants it, errors per strategy.

Every event is converted from the protocol once and offered to every strategy slot of this
runner; ``StrategySlot`` wraps each handler call in its own ``try/except``, so a strategy that
raises gets an ``Error`` for that event and the others carry on. An event the runner cannot
read is reported as a ``bad_event`` error rather than ending the runner.

Market data without a target (the feed's ticks, nearly every event) takes a shorter path,
``StrategySlot.offer_market``: the same filtering, clock, timing and error capture as
``wants`` then ``deliver``, in one call a slot.

A backtest's batch (``cut_on_output``) stops after the first event on which any strategy of the
runner asked for something; ``BatchResult.consumed`` says how many events were handled, and the
host sends the rest again once it has acted on that output (so no strategy sees an event that
comes after its own order before the order's fate).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from engine_proto import strategy_pb2 as pb
from protocol import wire
from sdk.dispatch import HandlerError, StrategySlot
from sdk.events import Book, Candle, Event, Tick, Trade
from sdk.strategy import HANDLERS

__all__ = ["Dispatcher", "error_to_pb", "locate"]

_MARKET_HANDLERS: dict[type[Event], str] = {cls: HANDLERS[cls] for cls in (Tick, Trade, Book, Candle)}


def locate(exc: BaseException | None, plugin: Path | None) -> str:
    """``file:line`` of the innermost frame of ``exc`` in the plugin's code, relative to the plugins folder.

    Without a frame in the plugin (it raised from a library, or there is no plugin) the innermost
    frame of all, as its path says; "" when there is no traceback.
    """
    frames = traceback.extract_tb(exc.__traceback__) if exc is not None else []
    if not frames:
        return ""
    root = plugin.resolve() if plugin is not None else None
    for frame in reversed(frames):
        path = Path(frame.filename)
        if root is not None and path.is_relative_to(root):
            return f"{path.relative_to(root.parent)}:{frame.lineno}"
    return f"{frames[-1].filename}:{frames[-1].lineno}"


def error_to_pb(error: HandlerError, seq: int = 0, strategy: str = "", plugin: Path | None = None) -> pb.Error:
    return pb.Error(
        kind=error.kind, strategy=strategy or error.strategy, seq=seq, text=error.text,
        traceback=error.traceback, handler=error.handler, location=locate(error.exception, plugin),
    )  # fmt: skip


def _any_true(checks: list[Callable[[], bool]]) -> bool:
    """``any(check() for check in checks)`` at half the cost (no generator), once an event in a backtest."""
    for check in checks:  # noqa: SIM110  (the generator any() wants costs twice this loop)
        if check():
            return True
    return False


class _Output:
    """What one strategy produced over one batch, and its entry in the batch's result (filled at the end)."""

    __slots__ = ("compute_before", "errors", "events_before", "message")

    def __init__(self, slot: StrategySlot, message: pb.StrategyOutput) -> None:
        self.errors: list[pb.Error] = []
        self.events_before = slot.events
        self.compute_before = slot.compute_ns
        self.message = message


class Dispatcher:
    """Delivers protocol batches to the runner's strategy slots."""

    def __init__(self, slots: Sequence[StrategySlot], plugin: Path | None = None) -> None:
        self.slots = list(slots)
        self.plugin = plugin  # whose frames a traceback's location names
        # Ids as the host assigned them, fixed here: strategy code can reach its slot object and
        # rewrite its id, but what this runner reports and routes by does not follow.
        self.ids = [slot.strategy_id for slot in self.slots]
        self.by_id = dict(zip(self.ids, self.slots, strict=True))

    def handle_batch(self, batch: pb.EventBatch, into: pb.BatchResult | None = None) -> pb.BatchResult:
        """Deliver ``batch``; its result is built in ``into`` (an empty message, e.g. a reply's field) or a new one."""
        started = time.perf_counter_ns()
        seq = batch.seq
        # Messages are filled where they will be sent from (the outputs, the reply's result):
        # putting a finished message into another copies it (~1-2 us each, every batch).
        result = pb.BatchResult() if into is None else into
        result.SetInParent()
        result.seq = seq
        outputs = {sid: _Output(slot, result.outputs.add(strategy=sid)) for sid, slot in self.by_id.items()}
        offers = [(sid, slot.offer_market, outputs[sid].errors) for sid, slot in self.by_id.items()]
        made_output = [slot.has_output for slot in self.slots]
        market_handlers = _MARKET_HANDLERS
        decode = wire.event_from_pb
        cut = batch.cut_on_output
        consumed = 0
        for message in batch.events:
            consumed += 1
            try:
                event = decode(message)
            except Exception as exc:
                self._bad_event(outputs, message.target, seq, exc)
                continue
            handler = market_handlers.get(type(event))
            target = message.target
            if handler is None or target:
                self._deliver(event, target, outputs, seq)
            else:
                for sid, offer, errors in offers:
                    error = offer(event, handler)  # type: ignore[arg-type]  # market data: it has a market handler
                    if error is not None:
                        errors.append(self.error_to_pb(error, seq, sid))
            if cut and _any_true(made_output):
                break
        result.compute_ns = time.perf_counter_ns() - started
        result.consumed = consumed
        for sid, slot in self.by_id.items():
            self._output(sid, slot, outputs[sid])
        return result

    def _deliver(self, event: Event, target: str, outputs: dict[str, _Output], seq: int) -> None:
        if target:
            slot = self.by_id.get(target)
            targets = [] if slot is None else [(target, slot)]
        else:
            targets = list(self.by_id.items())
        for sid, slot in targets:
            if target or slot.wants(event):  # a targeted event is this slot's by the host's word
                error = slot.deliver(event)
                if error is not None:
                    outputs[sid].errors.append(self.error_to_pb(error, seq, sid))

    def error_to_pb(self, error: HandlerError, seq: int = 0, strategy: str = "") -> pb.Error:
        return error_to_pb(error, seq, strategy, self.plugin)

    def _bad_event(self, outputs: dict[str, _Output], target: str, seq: int, exc: Exception) -> None:
        text = f"the runner could not read an event: {type(exc).__name__}: {exc}"
        for strategy_id, output in outputs.items():
            if not target or target == strategy_id:
                output.errors.append(pb.Error(kind="bad_event", strategy=strategy_id, seq=seq, text=text))

    def _output(self, sid: str, slot: StrategySlot, output: _Output) -> pb.StrategyOutput:
        """Fill ``output.message`` (``sid``'s entry in the result) with what the slot produced; return it."""
        message = output.message
        signals, cancels = slot.drain()
        if signals:
            now = slot.context.now_ns()
            message.signals.extend([wire.signal_to_pb(signal, now) for signal in signals])
        if cancels:
            message.cancels.extend([wire.cancel_to_pb(cancel) for cancel in cancels])
        if output.errors:
            message.errors.extend(output.errors)
        timers = slot.drain_timers()
        if timers:
            message.timers.extend([wire.timer_request_to_pb(request) for request in timers])
        message.compute_ns = slot.compute_ns - output.compute_before
        message.events = slot.events - output.events_before
        return message

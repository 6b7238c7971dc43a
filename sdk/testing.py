"""Run a strategy over events with no server at all: what authors use in their unit tests.

    from sdk.testing import run_strategy
    result = run_strategy(Momentum(MomentumConfig(lookback_period=3)), [tick1, tick2, tick3])
    assert result.signals[0].side is Side.BUY

Events go through the same ``StrategySlot`` the runner uses. Fill events for the strategy are
followed by the position they produce (computed by ``sdk.positions``), as the host does, so a
strategy's ``self.position(symbol)`` reflects its fills. A handler that raises fails the test
(``raise_errors=True``) or is collected in ``result.errors``.

What the engine would answer about the strategy's orders is the test's to say: ``OrderUpdate``
events in the list reach ``on_order`` like any other event. So that they can name the order, a
signal emitted without a client order id gets ``order-1``, ``order-2``, ... in emission order
(the runner gives random ones), e.g. ``OrderUpdate(client_order_id="order-1", symbol="BTCUSDT",
side=Side.BUY, status=OrderUpdateStatus.REJECTED, quantity=0.01, rule="max_position_size",
timestamp_ns=...)``.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from sdk._timers import TimerBook, TimerRejected
from sdk.codec import load_events
from sdk.dispatch import HandlerError, RecordingLogger, StrategySlot
from sdk.events import Cancel, Event, Fill, Signal
from sdk.positions import PositionBook
from sdk.strategy import Strategy

__all__ = ["RunResult", "run_strategy"]


@dataclass
class RunResult:
    """What a strategy did over a run: its orders, cancels, handler errors, log records and state."""

    signals: list[Signal] = field(default_factory=list)
    cancels: list[Cancel] = field(default_factory=list)
    errors: list[HandlerError] = field(default_factory=list)
    logs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    state: bytes = b""
    # For each signal, the index of the event that produced it (-1: on_start / on_stop).
    signal_events: list[int] = field(default_factory=list)


def run_strategy(
    strategy: Strategy[Any],
    events: Iterable[Event] | str | Path,
    *,
    strategy_id: str = "test",
    restore: bytes = b"",
    raise_errors: bool = True,
    positions_from_fills: bool = True,
    drive_timers: bool = True,
    until_ns: int | None = None,
) -> RunResult:
    """Start the strategy, deliver every event it wants, stop it and return what it did.

    Timers the strategy schedules (``every``, ``at``) fire by event time, as in a replay: before
    each event, every timer due by its time (``sdk._timers.TimerBook``); after the last event, those
    due by ``until_ns`` (a quiet market until then). ``drive_timers=False`` fires none (the events
    carry the timers, as a crash capture's do).
    """
    source = load_events(events) if isinstance(events, (str, Path)) else events
    logger = RecordingLogger()
    numbers = itertools.count(1)
    slot = StrategySlot(strategy_id, strategy, logger, new_id=lambda: f"order-{next(numbers)}")
    book = PositionBook(strategy_id)
    result = RunResult(logs=logger.records)
    timers = TimerBook() if drive_timers else None
    settle = functools.partial(_settled, result, slot, raise_errors, timers)
    settle(slot.start(restore), -1)
    for index, event in enumerate(source):
        _fire(timers, slot, settle, event.timestamp_ns, index)
        if not slot.wants(event):
            continue
        settle(slot.deliver(event), index)
        if positions_from_fills and isinstance(event, Fill):
            settle(slot.deliver(book.apply_fill(event)), index)
    if until_ns is not None:
        _fire(timers, slot, settle, until_ns, -1)
    saved = slot.save()
    if isinstance(saved, HandlerError):
        settle(saved, -1)
    else:
        result.state = saved
    settle(slot.stop(), -1)
    return result


def _fire(
    timers: TimerBook | None, slot: StrategySlot, settle: Callable[[HandlerError | None, int], None], now_ns: int,
    index: int,
) -> None:  # fmt: skip
    for _, timer in timers.step(now_ns) if timers is not None else ():
        settle(slot.deliver(timer), index)


def _settled(
    result: RunResult, slot: StrategySlot, raise_errors: bool, timers: TimerBook | None, error: HandlerError | None,
    index: int,
) -> None:  # fmt: skip
    """``_settle``, and the timer requests of the handler applied (a refused one is a ``bad_signal`` error)."""
    _settle(result, slot, error, index, raise_errors)
    for request in slot.drain_timers():
        if timers is None:
            continue
        try:
            timers.apply(slot.strategy_id, request)
        except TimerRejected as err:
            if raise_errors:
                raise
            result.errors.append(HandlerError(slot.strategy_id, "timer", "bad_signal", str(err), ""))


def _settle(result: RunResult, slot: StrategySlot, error: HandlerError | None, index: int, raise_errors: bool) -> None:
    signals, cancels = slot.drain()
    result.signals.extend(signals)
    result.signal_events.extend([index] * len(signals))
    result.cancels.extend(cancels)
    if error is None:
        return
    if raise_errors and error.exception is not None:
        raise error.exception
    if raise_errors:
        raise AssertionError(f"{error.handler}: {error.text}")
    result.errors.append(error)

"""Run a strategy over events with no server at all: what authors use in their unit tests.

    from sdk.testing import FillModel, run_strategy
    result = run_strategy(Momentum(MomentumConfig(lookback_period=3)), [tick1, tick2, tick3])
    assert result.signals[0].side is Side.BUY

Events go through the same delivery code the runner uses. Fill events for the strategy are
followed by the position they produce (computed from the fills, as the host's books do), so a
strategy's ``self.position(symbol)`` reflects its fills. A handler that raises fails the test
(``raise_errors=True``) or is collected in ``result.errors``.

**Without a fill model** (the default) nothing answers the strategy's orders: what the engine
would say about them is the test's to put in the events. `sdk.OrderUpdate` events in the list reach
``on_order`` like any other event. So that they can name the order, a signal emitted without a
client order id gets ``order-1``, ``order-2``, ... in emission order (the runner gives random
ones), e.g. ``OrderUpdate(client_order_id="order-1", symbol="BTCUSDT", side=Side.BUY,
status=OrderUpdateStatus.REJECTED, quantity=0.01, rule="max_position_size", timestamp_ns=...)``.

**With a fill model** (``fills=FillModel(...)``, or ``fills=True`` for the defaults) the run
answers them the way a simple venue would, deterministically (the rules are `FillModel`'s):
- each signal is accepted at once: its `sdk.OrderUpdate` (``accepted``) reaches ``on_order`` before
  the next event (after the slot's previous order's ``cancelled``, for a signal in a slot);
- it fills no earlier than the next market event of its symbol, and that fill is delivered before
  that event: ``on_fill`` (a `sdk.Fill` whose ``order_id`` is the client order id), then
  ``on_position`` (the position after it), then ``on_order`` (``filled``), the order the engine
  uses. Ticks fill market orders at the touch, trades at their price, candles at the next bar's
  open (``FillModel(at="close")``: at the deciding bar's close, right after its handler);
  limits as the engine's paper venue fills them in a backtest: one the market already reaches
  when it arrives (its first market event: an ask or a trade at or below a buy's limit) fills at
  that price; otherwise it rests and fills at its limit once a quote reaches it or a trade or
  candle goes through it;
- ``self.cancel(symbol, slot)`` cancels what works in the slot (``cancelled``);
- orders still working at the end stay so (``result.orders`` shows them accepted), and positions
  stay open. There is no risk check and no aggregation: every signal becomes an order.

``RunResult.fills``, ``.orders`` and ``.positions`` then hold every fill and order update the
strategy was handed (the simulated ones and any in the events) and its last position per symbol.

**Timers** the strategy schedules (`sdk.Strategy.every`, `sdk.Strategy.at`) fire by event time,
as in a replay: before each event, every timer due by its time, each at its own due time (a
``self.now_ns`` of the due time, not of the event). The run ends with the last event unless
``until_ns`` carries it on over a quiet market, firing what falls due by then; the orders a timer
sends there are placed but, with no market event left, not filled. A timer due before an event
fires before it, and what the strategy decides on it is decided before that event (its
``signal_events`` entry is the index of the event before): with a fill model an order it sends may
fill at that event, and a cancel it sends is done before it, as in ``strategy-engine backtest``.
``RunResult.timers`` lists
every `sdk.Timer` delivered::

    result = run_strategy(strategy, ticks, fills=True, until_ns=ticks[-1].timestamp_ns + 60 * 10**9)
    assert [t.name for t in result.timers] == ["hold:BTCUSDT"]
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sdk._codec import load_events
from sdk._fills import FillModel, Matcher
from sdk._positions import PositionBook
from sdk._timers import TimerBook, TimerRejected
from sdk.dispatch import HandlerError, RecordingLogger, StrategySlot
from sdk.errors import SdkError
from sdk.events import Book, Cancel, Candle, Event, Fill, OrderUpdate, Position, Signal, Tick, Timer, Trade
from sdk.strategy import Strategy

__all__ = ["FillModel", "HandlerError", "RunResult", "run_strategy"]

_MAX_ANSWERS = 10_000  # order updates in a row that the strategy answers with new orders: a loop


@dataclass
class RunResult:
    """What a strategy did over a run: its orders, cancels, handler errors, log records and state,
    and (with a fill model, or fills in the events) the fills, order updates and positions it got."""

    signals: list[Signal] = field(default_factory=list)
    """Every signal the strategy emitted, in order, each with its client order id (``order-1``, ...)."""
    cancels: list[Cancel] = field(default_factory=list)
    """Every cancel it asked for (``self.cancel(symbol, slot)``), in order."""
    errors: list[HandlerError] = field(default_factory=list)
    """Its handler errors, with ``raise_errors=False`` (otherwise the first one is raised)."""
    logs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """Its log records as ``(level, event, data)``: ``("info", "crossed", {"symbol": "BTCUSDT"})``."""
    state: bytes = b""
    """What ``on_save`` returned at the end (for ``run_strategy(..., restore=result.state)``)."""
    signal_events: list[int] = field(default_factory=list)
    """For each signal, the index of the event that produced it (or whose turn it was, for a fill, an
    order update or a timer delivered before it); -1: ``on_start``, ``on_stop`` or a timer fired
    after the last event (``until_ns``)."""
    fills: list[Fill] = field(default_factory=list)
    """Every fill delivered to the strategy, in order."""
    orders: list[OrderUpdate] = field(default_factory=list)
    """Every order update delivered to the strategy, in order."""
    positions: dict[str, Position] = field(default_factory=dict)
    """The strategy's last position per symbol."""
    timers: list[Timer] = field(default_factory=list)
    """Every timer delivered to the strategy (fired by the run, or given in the events), in order."""


def run_strategy(
    strategy: Strategy[Any],
    events: Iterable[Event] | str | Path,
    *,
    strategy_id: str = "test",
    restore: bytes = b"",
    raise_errors: bool = True,
    positions_from_fills: bool = True,
    fills: FillModel | bool = False,
    drive_timers: bool = True,
    until_ns: int | None = None,
) -> RunResult:
    """Start the strategy, deliver every event it wants, stop it and return what it did.

    ``fills``: a `FillModel` (or True for the default one) to fill the strategy's orders; False
    (the default) leaves them unanswered. ``positions_from_fills=False`` stops fills given in the
    events from producing positions (the test gives its own); simulated fills always do.

    Timers the strategy schedules (``every``, ``at``) fire by event time, as in a replay: before
    each event, every timer due by its time; after the last event, those due by ``until_ns`` (a
    quiet market until then). ``drive_timers=False`` fires none (the events carry the timers, as a
    crash capture's do).
    """
    source = load_events(events) if isinstance(events, (str, Path)) else events
    model = FillModel() if fills is True else (fills if isinstance(fills, FillModel) else None)
    run = _Run(strategy, strategy_id, model, raise_errors, positions_from_fills, drive_timers)
    run.settle(run.slot.start(restore), -1)
    for index, event in enumerate(source):
        run.event(event, index)
    if until_ns is not None:
        run.fire(until_ns, -1)
    result = run.result
    saved = run.slot.save()
    if isinstance(saved, HandlerError):
        run.settle(saved, -1)
    else:
        result.state = saved
    run.settle(run.slot.stop(), -1)
    result.positions = dict(run.slot.context.positions())
    return result


class _Run:
    """One run: the slot, the optional matcher and the deliveries waiting their turn."""

    def __init__(
        self,
        strategy: Strategy[Any],
        strategy_id: str,
        model: FillModel | None,
        raise_errors: bool,
        positions: bool,
        drive_timers: bool,
    ) -> None:
        logger = RecordingLogger()
        numbers = itertools.count(1)
        self.slot = StrategySlot(strategy_id, strategy, logger, new_id=lambda: f"order-{next(numbers)}")
        self.book = PositionBook(strategy_id)
        self.result = RunResult(logs=logger.records)
        self.matcher = None if model is None else Matcher(model, strategy_id)
        self.raise_errors = raise_errors
        self.positions = positions
        self.pending: deque[Fill | Position | OrderUpdate] = deque()
        self.timers = TimerBook() if drive_timers else None

    def fire(self, now_ns: int, index: int) -> None:
        """Every timer due by ``now_ns``, at its own time, before event ``index``: what the strategy
        decides on one counts as decided after the event before (its orders may match event ``index``)."""
        before = index - 1 if index >= 0 else index
        for _, timer in self.timers.step(now_ns) if self.timers is not None else ():
            self.deliver(timer, before)
            self.flush(before)

    def event(self, event: Event, index: int) -> None:
        """Timers due by its time, the fills it causes, the event, then (``at="close"``) fills at a candle's close."""
        self.fire(event.timestamp_ns, index)
        if self.matcher is not None and isinstance(event, (Tick, Trade, Book, Candle)):
            for out in self.matcher.match(event, index):
                self._queue(out)
            self.flush(index)
        if self.slot.wants(event):
            self.deliver(event, index)
            self.flush(index)
        if self.matcher is not None and isinstance(event, Candle):
            for out in self.matcher.close(event, index):
                self._queue(out)
            self.flush(index)

    def deliver(self, event: Event, index: int) -> None:
        """One event to the strategy; a given fill brings its position; outputs are placed."""
        if isinstance(event, Fill):
            self.result.fills.append(event)
        elif isinstance(event, OrderUpdate):
            self.result.orders.append(event)
        elif isinstance(event, Timer):
            self.result.timers.append(event)
        self.settle(self.slot.deliver(event), index)
        if isinstance(event, Fill) and self.positions:
            self.settle(self.slot.deliver(self.book.apply_fill(event)), index)

    def flush(self, index: int) -> None:
        """Deliver what waits (fills, positions, updates) and what the strategy's answers cause."""
        answered = 0
        while self.pending:
            item = self.pending.popleft()
            if isinstance(item, OrderUpdate):
                answered += 1
                if answered > _MAX_ANSWERS:
                    raise SdkError(
                        f"sdk.testing: the strategy answered {_MAX_ANSWERS} order updates in a row with new "
                        f"orders on event {index}; it would never reach the next event"
                    )
            if isinstance(item, Fill):
                self.result.fills.append(item)
                self.settle(self.slot.deliver(item), index)
                self.settle(self.slot.deliver(self.book.apply_fill(item)), index)
            else:
                self.deliver(item, index)

    def settle(self, error: HandlerError | None, index: int) -> None:
        """Collect the strategy's outputs (placed with the matcher, if any) and its error."""
        signals, cancels = self.slot.drain()
        result = self.result
        result.signals.extend(signals)
        result.signal_events.extend([index] * len(signals))
        result.cancels.extend(cancels)
        self._timers(result)
        matcher = self.matcher
        if matcher is not None:
            now = self.slot.context.now_ns()
            for cancel in cancels:  # cancels first, as the engine acts on them before queued signals
                self.pending.extend(matcher.cancel(cancel, now))
            for signal in signals:
                self.pending.extend(matcher.place(signal, now, index))
        if error is None:
            return
        if self.raise_errors and error.exception is not None:
            raise error.exception
        if self.raise_errors:
            raise AssertionError(f"{error.handler}: {error.text}")
        result.errors.append(error)

    def _timers(self, result: RunResult) -> None:
        """The handler's timer requests applied (a refused one is a ``bad_signal`` error)."""
        for request in self.slot.drain_timers():
            if self.timers is None:
                continue
            try:
                self.timers.apply(self.slot.strategy_id, request)
            except TimerRejected as err:
                if self.raise_errors:
                    raise
                result.errors.append(HandlerError(self.slot.strategy_id, "timer", "bad_signal", str(err), ""))

    def _queue(self, out: tuple[Fill, OrderUpdate] | OrderUpdate) -> None:
        if isinstance(out, tuple):
            self.pending.extend(out)
        else:
            self.pending.append(out)

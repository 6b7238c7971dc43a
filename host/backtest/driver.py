"""The backtest driver: recorded market data through the live code path, causal and deterministic.

Model. A backtest is a run of the engine ``host.app.compose`` builds for a replay (runners, the
supervisor and its breakers, aggregation, risk, the execution engine, the ledger and the paper
venue) with this driver as its source and as the supervisor's ``Lockstep``
(``host.supervisor.lockstep``). The clock is a ``ReplayClock``; the paper venue matches with an
arrival delay (``host.execution.matching``: an order decided on one event fills no earlier than
the next event of its symbol, plus ``--latency``).

Positions on the timeline. Market events are numbered in file order (0, 1, ...). The host's work at
event *j* is the step ``M_j``: the timers due by its time fire (each delivered at its own time),
then the clock moves to the event, books are marked and the paper venue matches working orders
against it. What a strategy asks for is placed on the timeline where it was decided: ``(j, 1)``
when event *j* made it; ``(j, 0)`` when something ``M_j`` delivered in front of event *j* did (a
fill, its position, an order update); ``(j, -3)`` when something delivered before ``M_j`` matched
did (a timer that fell due by then, an update the host gave before): so a cancel a timer asks for
at 2.0 s is acted on before a tick at 2.5 s is matched. So the timeline of event *j* reads the
timers, the outputs decided at ``(j, -3)``, the match, those at ``(j, 0)``, those at ``(j, 1)``,
strategies in id order; the host always takes the earliest item, never one a strategy could still
precede.

Lanes. Each strategy has a lane: a cursor (the first market event it has not seen), the reliable
events waiting for it (fills, positions, order updates the host made, in order) and at most one
batch in flight. A batch is the waiting events followed by the market events from the cursor up to
(not including) the first event that could change one of the strategy's working orders (the paper
venue says which could, by symbol, time and price: ``MatchingEngine.reach``), at most ``lane.size``
of them; the runner cuts it after the first event that made output (``cut_on_output``). So a
strategy runs ahead freely through events that cannot touch its orders, and never sees an event
that follows one of its decisions before the host has acted on that decision and told it the
outcome: a lane whose output the host has not reached yet (another lane is behind it) is held, and
gets nothing until the host acts. A runner that dies with a batch in flight has answered none of
it: its replacement gets the same batch (no simulated time passes while a strategy restarts), so a
strategy that crashes on an event crashes on it again until its breaker holds it open, as it would
live.

Rounds. The driver works in rounds: hand every lane that has work a batch, wait until every batch
is answered, then take host steps while the earliest thing on the timeline is earlier than every
lane's frontier (the earliest position at which that lane could still produce output). What a
round does depends only on the data and the strategies' answers, never on which runner answered
first, so two runs of the same inputs take the same steps and give the same results. While a
strategy restarts the driver waits for it; a strategy its breaker holds open is dropped.
"""

from __future__ import annotations

import asyncio
import heapq
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

import structlog

from host.assembly import Engine
from host.clock import ReplayClock
from host.risk.seams import FeedView
from host.supervisor.managed import StrategyState
from host.supervisor.supervisor import Supervisor
from protocol import wire
from sdk.events import Book, Cancel, Candle, Fill, MarketEvent, OrderUpdate, Position, Signal, Tick, Timer, Trade

__all__ = ["BacktestDriver", "Observer", "mark_price"]

log = structlog.get_logger("host.backtest")

_INF = (sys.maxsize, 2)
# Phases of a position (index, phase), in timeline order at one market event: a runner's on_start
# (before anything at its cursor), decisions on what was delivered before the host matched the event
# (timers that fell due by its time, order updates), the host's step M (-1: timers fired, then the
# event matched), decisions on what M delivered (fills, positions, updates), decisions on the event.
_START, _PRE, _POST, _EVENT = -5, -3, 0, 1
_NEVER = 2**63  # later than any event time
_TRIM_EVERY = 65_536  # market events kept behind every cursor before the window is trimmed


class Observer(Protocol):
    """What the results see of a backtest, in timeline order."""

    def mark(self, timestamp_ns: int, symbol: str, price: float) -> None: ...
    def fill(self, fill: Fill) -> None: ...
    def order(self, update: OrderUpdate) -> None: ...


def _before(position: tuple[int, int]) -> int:
    """The first market event whose step ``(index, -1)`` is not earlier than ``position``."""
    return position[0] + 1 if position[1] > -1 else position[0]


def mark_price(event: MarketEvent) -> float | None:
    """The price a position in the event's symbol is worth after it: a bar's close, a quote's mid,
    a trade's price; None when the event gives none."""
    match event:
        case Candle():
            return event.close
        case Tick():
            return (event.bid_price + event.ask_price) / 2
        case Trade():
            return event.last_price
        case Book():
            if event.bids and event.asks:
                return (event.bids[0][0] + event.asks[0][0]) / 2
            return event.last_price
    return None


@dataclass(order=True, slots=True)
class _Output:
    position: tuple[int, int]
    strategy: str
    decided_ns: int = field(compare=False)
    signals: list[Signal] = field(compare=False, default_factory=list)
    cancels: list[Cancel] = field(compare=False, default_factory=list)


@dataclass(slots=True)
class _Lane:
    id: str
    symbols: frozenset[str]
    cursor: int = 0
    waiting: list[tuple[bytes, int, bool]] = field(default_factory=list)  # (item, time, a timer?) not yet seen
    timers: int = 0  # how many of the waiting items are timers (decisions on them come before M_cursor)
    pre: bool = False  # the batch in flight was sent before the host stepped through its cursor's event
    busy: bool = False
    out: bool = False  # held open by its breaker, or stopped: no more batches
    ready: list[bytes] = field(default_factory=list)  # the batch chunk() hands out next
    sent_waiting: int = 0  # waiting items at the head of the batch in flight
    sent_indices: Sequence[int] = ()  # market events of the batch in flight (a range when it wants them all)
    sent_end: int = 0  # the cursor once the whole batch is handled
    cut: tuple[int, int] = _INF  # where the last answer stopped (its output's position)
    size: int = 64  # market events to offer in its next batch (grows while batches run through uncut)
    held: int = 0  # its outputs the host has not acted on yet: it sees nothing more until then
    going: bool = False  # its runner went with a batch in flight; the breaker has not been told yet
    collected: bool = False  # its runner's on_start outputs are in (the empty batch after Ready answered)
    inflight: bool = False  # a batch of ours was taken by its loop and is not answered yet
    cut_ns: int = 0


class BacktestDriver:
    """The source and the lockstep of a backtest (see the module docstring)."""

    def __init__(
        self,
        events: Iterable[MarketEvent],
        clock: ReplayClock,
        observer: Observer,
        *,
        chunk_events: int = 4096,
        progress: TextIO | None = None,
        total: int | None = None,
        on_round: Callable[[Supervisor], None] | None = None,
    ) -> None:
        self.on_round = on_round  # told after each round (the run notes breaker events from the states)
        self._source: Iterator[MarketEvent] = iter(events)
        self.clock = clock
        self.observer = observer
        self.chunk_events = chunk_events
        self.progress = progress
        self.total = total
        self.events = 0  # market events read
        self.rounds = 0
        self.batches = 0
        self.sent = 0  # events handed to runners, a batch's events cut off and sent again counted each time
        self.dropped_signals = 0  # of strategies that went down before the host reached them
        self._window: list[MarketEvent] = []  # the market events read and not trimmed yet
        self._encoded: list[bytes] = []  # ... each as the item a batch carries, index for index
        self._base = 0  # market index of _window[0]
        self._exhausted = False
        self._g = 0  # the next market event the host steps through
        self._lanes: dict[str, _Lane] = {}
        self._outputs: list[_Output] = []
        self._engine: Engine | None = None
        self._closed = False
        self._failure: BaseException | None = None
        self._last_progress = 0.0
        self.final_states: dict[str, StrategyState] = {}  # each strategy's state when the data ended
        self.final_errors: dict[str, tuple[int, str]] = {}  # ... its handler errors and the last one
        self._delivered = 0  # events delivered to lanes so far (a change of some lane's frontier)
        self.ready_at = 0.0  # monotonic seconds when every runner was ready (for the speed line, not the report)
        self.done_at = 0.0  # ... and when the last event was handled

    # ---------------------------------------------------------------- Source

    @property
    def feed(self) -> FeedView | None:
        return None

    def bind(self, engine: Engine) -> None:
        self._engine = engine
        engine.supervisor.use_lockstep(self)
        for definition in engine.supervisor.definitions():
            self._lanes[definition.id] = _Lane(definition.id, frozenset(definition.symbols))
        if self._fill(1):  # simulated time starts at the data's first event, before any runner boots
            self.clock.advance(self._event(0).timestamp_ns)

    def brokers(self) -> Mapping[str, bool]:
        return {}

    async def close(self) -> None:
        self._closed = True
        if self._engine is not None:
            self._engine.supervisor.notify()

    async def run(self, engine: Engine) -> None:
        supervisor = engine.supervisor
        async with asyncio.timeout(supervisor.settings.handshake_timeout_s + 5):
            await supervisor.until(lambda: self._closed or supervisor.started.is_set())
            await supervisor.until(lambda: self._closed or StrategyState.STARTING not in supervisor.states().values())
        self.ready_at = time.monotonic()
        while not self._closed:
            self._update_lanes(supervisor)
            dispatched = self._dispatch(supervisor)
            if dispatched:
                self._read_ahead()  # while the runners work
                await supervisor.until(lambda: self._closed or self._answered(supervisor))
                await engine.execution.drain()
            self._update_lanes(supervisor)
            stepped = await self._steps(engine)
            if self.on_round is not None:
                self.on_round(supervisor)
            self._trim()
            self._report_progress()
            if not dispatched and not stepped:
                if self._finished(supervisor):
                    break
                if not self._restarting(supervisor):
                    raise RuntimeError(f"backtest stalled at event {self._g}: {self._describe()}")
                await supervisor.until(lambda: self._closed or not self._restarting(supervisor))
        self.done_at = time.monotonic()
        self.final_states = supervisor.states()
        self.final_errors = {s.id: (s.errors, s.last_error) for s in supervisor.status()}
        if self.progress is not None:
            self.progress.write("\n")

    # ---------------------------------------------------------------- Lockstep (the managed loops call these)

    def chunk(self, strategy_id: str) -> list[bytes]:
        lane = self._lanes.get(strategy_id)
        if lane is None or not lane.ready:
            return []
        items, lane.ready = lane.ready, []
        lane.inflight = True
        self.sent += len(items)
        return items

    def answered(self, strategy_id: str, consumed: int) -> None:
        lane = self._lanes[strategy_id]
        if not lane.inflight:  # the empty batch after Ready: on_start's outputs, placed before the cursor
            lane.collected = True
            lane.cut, lane.cut_ns = (lane.cursor, _PRE), self.clock.now_ns()
            self._notify()
            return
        lane.busy = lane.inflight = False
        self.batches += 1
        head = lane.sent_waiting
        if consumed <= head:
            lane.cut = (lane.cursor, _PRE if lane.pre else _POST)
            lane.cut_ns = lane.waiting[consumed - 1][1] if consumed else self.clock.now_ns()
            self._seen(lane, consumed)
        else:
            self._seen(lane, head)
            handled = consumed - head
            last = lane.sent_indices[handled - 1]
            lane.cut = (last, _EVENT)
            lane.cut_ns = self._event(last).timestamp_ns
            through = handled == len(lane.sent_indices)
            lane.cursor = lane.sent_end if through else last + 1
            lane.size = min(self.chunk_events, 2 * lane.size) if through else max(64, 2 * handled)
        lane.sent_indices = ()
        self._notify()

    @staticmethod
    def _seen(lane: _Lane, count: int) -> None:
        """The first ``count`` waiting items reached the strategy."""
        if lane.timers:
            lane.timers -= sum(1 for _, _, timer in lane.waiting[:count] if timer)
        del lane.waiting[:count]

    def lost(self, strategy_id: str) -> None:
        lane = self._lanes[strategy_id]
        lane.busy = lane.inflight = False
        lane.going = True
        lane.ready = []
        lane.sent_indices = ()
        lane.size = 64  # the next runner gets the lost batch again, from its first event, in small batches
        log.warning("backtest_batch_lost", strategy=strategy_id, cursor=lane.cursor)
        self._notify()

    def deliver(self, strategy_id: str, event: Fill | Position | Timer | OrderUpdate, item: bytes) -> None:
        lane = self._lanes.get(strategy_id)
        self._delivered += 1
        if isinstance(event, Fill):
            self.observer.fill(event)
        elif isinstance(event, OrderUpdate):
            self.observer.order(event)
        if lane is not None and not lane.out:
            timer = isinstance(event, Timer)
            lane.timers += timer
            lane.waiting.append((item, event.timestamp_ns or self.clock.now_ns(), timer))

    # StrategyListener: signals are held at their place on the timeline; the rest goes to the engine.

    def signals(self, strategy_id: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        lane = self._lanes[strategy_id]
        lane.held += 1
        heapq.heappush(self._outputs, _Output(lane.cut, strategy_id, lane.cut_ns, list(signals), list(cancels)))

    def strategy_down(self, strategy_id: str, reason: str) -> None:
        self._execution.strategy_down(strategy_id, reason)

    def strategy_up(self, strategy_id: str) -> None:
        self._execution.strategy_up(strategy_id)

    def positions(self, strategy_id: str) -> list[Position]:
        return self._execution.positions(strategy_id)

    # ---------------------------------------------------------------- rounds

    @property
    def _execution(self) -> ExecutionLike:
        assert self._engine is not None, "bound before the supervisor runs"
        return self._engine.execution

    def _notify(self) -> None:
        if self._engine is not None:
            self._engine.supervisor.notify()

    def _update_lanes(self, supervisor: Supervisor) -> None:
        """A lane whose strategy is held open (or stopped) gets nothing more; what waited for it is dropped."""
        states = supervisor.states()
        for lane in self._lanes.values():
            state = states.get(lane.id)
            if not lane.out and state in (StrategyState.OPEN, StrategyState.PAUSED, StrategyState.STOPPED):
                lane.out, lane.busy, lane.ready, lane.waiting, lane.timers = True, False, [], [], 0
                log.warning("backtest_strategy_out", strategy=lane.id, state=state.value if state else None)
            elif lane.busy and lane.ready and state is not StrategyState.RUNNING:
                lane.busy, lane.ready = False, []  # it went before taking its batch: nothing was sent
            if state is not StrategyState.RUNNING:
                lane.collected = False  # its next runner's on_start outputs are to come

    def _dispatch(self, supervisor: Supervisor) -> bool:
        """A batch for every serving lane that has work; True if any was handed out."""
        states = supervisor.states()
        dispatched = False
        for lane in self._lanes.values():
            if (
                lane.out
                or lane.busy
                or lane.held
                or not lane.collected
                or states.get(lane.id) is not StrategyState.RUNNING
            ):
                continue
            if self._prepare(lane):
                lane.busy = True
                dispatched = True
                supervisor.wake(lane.id)
        return dispatched

    def _prepare(self, lane: _Lane) -> bool:
        """Make the lane's next batch; False when it has nothing it may see yet.

        The batch offers ``lane.size`` market events: doubled (up to ``chunk_events``) after a batch
        the strategy ran through, set back to twice what it took after one it cut. Sizes change only
        how much is sent and then sent again, never what the strategy sees: the results do not
        depend on them."""
        end = self._block(lane, lane.size)
        start, base = lane.cursor, self._base
        indices: Sequence[int]
        if lane.symbols:
            window, symbols = self._window, lane.symbols
            indices = [i for i in range(start, end) if window[i - base].symbol in symbols]
            market = [self._encoded[i - base] for i in indices]
        else:  # it wants every event: the window's slice, no test per event
            indices = range(start, end)
            market = self._encoded[start - base : end - base]
        if not lane.waiting and not indices:
            lane.cursor = max(lane.cursor, end)  # nothing it wants before the block: skip ahead
            return False
        lane.sent_waiting = len(lane.waiting)
        lane.sent_indices = indices
        lane.sent_end = end
        lane.pre = self._g <= lane.cursor
        lane.ready = [item for item, _, _ in lane.waiting] + market if lane.waiting else market
        return True

    def _block(self, lane: _Lane, size: int = 1) -> int:
        """Where the lane's next batch must end: the first market event the host has not stepped
        through that could change one of its working orders, or ``size`` on, or the data's end."""
        assert self._engine is not None and self._engine.paper is not None
        limit = min(self._fill(lane.cursor + size), lane.cursor + size)  # more may be read already
        orders = self._engine.paper.engine.reach(lane.id)
        timer = self._engine.supervisor.timers.next_due_of(lane.id)
        if not orders and timer is None:
            return limit
        due = _NEVER if timer is None else timer
        for index in range(max(lane.cursor, self._g), limit):
            event = self._event(index)
            reach = orders.get(event.symbol)
            if event.timestamp_ns >= due or (reach is not None and reach.touches(event)):
                return index
        return limit

    def _frontier(self, lane: _Lane, state: StrategyState | None) -> tuple[int, int]:
        """The earliest timeline position at which the lane may still produce output."""
        if lane.out or lane.held or state in (StrategyState.OPEN, StrategyState.PAUSED, StrategyState.STOPPED):
            return _INF  # held: nothing more from it before the host acts on what it asked for
        if not lane.collected:
            return (lane.cursor, _START)  # its runner's on_start (timers anchored at the next step) comes first
        before_match = self._g <= lane.cursor
        if state is not StrategyState.RUNNING or (before_match and (lane.timers or (lane.busy and lane.pre))):
            return (lane.cursor, _PRE)  # it decides on a timer (or restarts) before the host matches the event
        if lane.busy or lane.waiting:
            return (lane.cursor, _POST)
        if self._block(lane) == lane.cursor and before_match:
            return (lane.cursor, _POST)  # its orders may fill at the cursor's event: after M_cursor, fills come first
        if self._fill(lane.cursor + 1) <= lane.cursor:
            return _INF  # seen everything
        return (lane.cursor, _EVENT)

    async def _steps(self, engine: Engine) -> bool:
        """Host steps while the earliest item on the timeline precedes every lane's frontier.

        The frontier changes only when the host delivers something to a lane or acts on outputs,
        so it is worked out again only then, not at every market event."""
        states = engine.supervisor.states()
        stepped = False
        frontier: tuple[int, int] | None = None
        while not self._closed:
            if frontier is None:
                frontier = min((self._frontier(lane, states.get(lane.id)) for lane in self._lanes.values()),
                               default=_INF)  # fmt: skip
                delivered = self._delivered
            output = self._outputs[0].position if self._outputs else _INF
            market = (self._g, -1) if self._fill(self._g + 1) > self._g else _INF
            if min(output, market) >= frontier:
                return stepped
            stepped = True
            if market < output:
                self._run(engine, min(_before(output), _before(frontier)), delivered)
                if self._delivered != delivered:
                    frontier = None
            else:
                await self._act(engine, output, states)
                frontier = None
        return stepped

    def _run(self, engine: Engine, end: int, delivered: int) -> None:
        """Host steps from ``_g`` up to ``end`` (at most ``chunk_events`` of them), stopping after one
        that delivered something to a strategy (its frontier moves): what ``_steps`` would take one
        at a time, as nothing but a delivery changes its choice between them."""
        g = self._g
        end = min(end, g + self.chunk_events)
        end = min(end, self._fill(end))  # fewer when the data ends first
        window, base = self._window, self._base
        timers, fire, advance = engine.supervisor.timers, engine.supervisor.fire_timers, self.clock.advance
        match, mark = engine.match, self.observer.mark
        while g < end:
            event = window[g - base]
            ts = event.timestamp_ns
            if timers.waiting or ((due := timers.next_due()) is not None and due <= ts):
                fire(ts, advance=advance)  # the timers due by the event's time go first ...
                if self._delivered != delivered:
                    break  # ... and what their strategies decide on them comes before M_g
            advance(ts)
            match(event)
            price = mark_price(event)
            if price is not None:
                mark(ts, event.symbol, price)
            g += 1
            if self._delivered != delivered:
                break
        self._g = g

    async def _act(self, engine: Engine, position: tuple[int, int], states: Mapping[str, StrategyState]) -> None:
        """Hand the outputs decided at ``position`` to the execution engine, strategies in id order."""
        group = []
        while self._outputs and self._outputs[0].position == position:
            group.append(heapq.heappop(self._outputs))
        for output in group:
            lane = self._lanes[output.strategy]
            lane.held -= 1
            if lane.out or states.get(output.strategy) is not StrategyState.RUNNING:
                self.dropped_signals += len(output.signals)
                continue
            self.clock.advance(output.decided_ns)
            engine.execution.signals(output.strategy, output.signals, output.cancels)
            await engine.execution.drain()

    def _answered(self, supervisor: Supervisor) -> bool:
        """Every batch in flight answered, or its runner gone and that failure charged to its breaker
        (which reads the simulated clock: the host must not move it before)."""
        self._update_lanes(supervisor)
        states = supervisor.states()
        for lane in self._lanes.values():
            if lane.going and states.get(lane.id) is not StrategyState.RUNNING:
                lane.going = False
        return not any(lane.busy or lane.going for lane in self._lanes.values())

    def _finished(self, supervisor: Supervisor) -> bool:
        states = supervisor.states()
        waiting = any(
            not lane.out and (lane.waiting or lane.busy or states.get(lane.id) is not StrategyState.RUNNING)
            for lane in self._lanes.values()
        )
        return not waiting and not self._outputs and self._fill(self._g + 1) <= self._g

    def _restarting(self, supervisor: Supervisor) -> bool:
        """Some lane waits for its strategy's next runner (it will serve again, or be held open)."""
        states = supervisor.states()
        return any(
            not lane.out
            and (states.get(lane.id) in (StrategyState.BACKOFF, StrategyState.STARTING) or not lane.collected)
            for lane in self._lanes.values()
        )

    def _describe(self) -> str:
        lanes = ", ".join(
            f"{lane.id}: cursor {lane.cursor}, waiting {len(lane.waiting)}, busy {lane.busy}, out {lane.out}"
            for lane in self._lanes.values()
        )
        return f"{lanes}; outputs {[o.position for o in self._outputs[:3]]}"

    # ---------------------------------------------------------------- the window of market events

    def _event(self, index: int) -> MarketEvent:
        return self._window[index - self._base]

    def _fill(self, upto: int) -> int:
        """Read market events until ``upto`` are known (or the data ends); how many are known."""
        known = self._base + len(self._window)
        while known < upto and not self._exhausted:
            try:
                event = next(self._source)
            except StopIteration:
                self._exhausted = True
                break
            self._window.append(event)
            self._encoded.append(wire.encode_event_item(event))
            known += 1
        self.events = known
        return known

    def _read_ahead(self) -> None:
        """Read (decode, encode) the market events the next batches will offer, ahead of need."""
        ahead = max((lane.cursor + 2 * lane.size for lane in self._lanes.values() if not lane.out), default=0)
        self._fill(min(ahead, self._base + len(self._window) + self.chunk_events))

    def _trim(self) -> None:
        low = min([self._g, *(lane.cursor for lane in self._lanes.values() if not lane.out)])
        drop = low - self._base
        if drop >= _TRIM_EVERY:
            del self._window[:drop]
            del self._encoded[:drop]
            self._base = low

    def _report_progress(self) -> None:
        if self.progress is None or time.monotonic() - self._last_progress < 0.5:
            return
        self._last_progress = time.monotonic()
        share = f" / {self.total:,} ({100 * self._g / self.total:.0f} %)" if self.total else ""
        self.progress.write(f"\r  backtested {self._g:,}{share} events\x1b[K")
        self.progress.flush()


class ExecutionLike(Protocol):
    def strategy_down(self, strategy: str, reason: str) -> None: ...
    def strategy_up(self, strategy: str) -> None: ...
    def positions(self, strategy: str) -> list[Position]: ...

"""The order path: signals -> aggregation -> risk -> journal -> venue; fills -> ledger -> strategies.

Model. One asyncio task (``run``) takes batches from the bounded ``SignalQueue``, aggregates
them and places each resulting order in turn, so every order passes risk exactly once and in
priority order. Placing an order is: build the ``OrderIntent`` (client order id = a fresh signal
id), cancel the strategy's working order in the same slot first, ``RiskManager.check``, journal it
in the ledger (a ledger failure rejects it: fail closed), mark it ``SENT``, ``Venue.submit``. The
reply moves it on. ``VenueUnavailable`` (nothing reached the venue) rejects it; ``VenueTimeout``
(ambiguous) leaves it ``SENT`` and a resolver asks ``Venue.status`` until the venue answers:
known means the reply is applied; unknown is trusted only as far as the ledger backs it
(``_settle``): an order never acknowledged and never filled did not arrive and is submitted again
*under the same id* (unless it was cancelled meanwhile: then it is CANCELLED, never sent); one
the venue acknowledged or filled was lost by it (a restart) and is closed, never revived, so the
quantity sent under one id never exceeds its quantity. It is never resent under a new id. A cancel
the venue did not answer is sent again until it is. Retries back off (up to 10 s), go at once when
the venue's connection comes back, and log their first failure and their outcome, not each try.
An order counts as sent (``risk.sent``, ``orders_submitted_total``) once the venue took it.

Fills (from the paper venue's sink, or NATS in live mode) go to ``record_fill``: stored once in the
ledger (a duplicate is ignored), applied to the books, then delivered to the strategy's runner as
the fill and its new position (a fill that beats its submit's reply is tied to its order, see
``_client_id``). Cancel-on-disconnect: ``strategy_down`` (runner lost, breaker open,
paused) cancels the strategy's working orders before anything else. An order refused by its
strategy's own order-rate quota is also reported to ``over_quota`` (the supervisor's, which
charges a strategy that keeps doing it): the way back from a risk rule to a strategy's breaker.
``reconcile`` runs at start, and again whenever the venue's connection comes back (``venue_back``,
from ``GrpcVenue.watch``) or the fill feed's core NATS subscription is live again after a time it
was not (``venue_back`` from ``FillFeed``: fills published meanwhile are gone):
every order the ledger holds as working is checked with the venue
(``last_reconcile`` says what the last pass found), and at start orders journaled but never sent
are sent (same id), so a host killed at any point loses and duplicates nothing. Fills lost while
the host was down (core NATS delivers at most once) are recovered: when the venue reports more
filled than the ledger's fills hold, and still does after ``fill_grace_s`` (fills may be on their
way), the difference is stored as one fill marked ``reconciled`` and delivered like any fill; a
venue fill arriving later for that quantity is stored as covered and not counted again.

Waiting. ``run`` sleeps on an event that ``signals`` sets (and at most a second, to flush the
persister); ``drain`` (before a stop) sleeps on an event set where the queue empties and where a
background task (a cancel, a resolution) ends, and looks again each time. The only timed loops
are the resolver's and the cancel retry's, which pace requests to the venue: its state reaches
the host only as answers.

Order updates. ``_order_update`` is the one place a strategy is told of its orders
(``host.orders.order_update`` builds the update), under the client order id of the signal (its
``client_order_id``, which the runner's ``emit`` fills in). A signal that becomes no order gets one
``rejected`` update whose ``rule`` says why: an aggregation outcome (``netted``, ``merged``,
``outvoted``, ``no_consensus``, ``superseded``), ``queue_full``, a risk rule, ``observation``,
``duplicate_client_order_id`` or ``ledger_unavailable``. ``_transition`` tells of a move into
``accepted`` (once), ``cancelled``, ``expired`` or ``rejected`` (rule ``venue`` or
``venue_unavailable``); ``_deliver_fill`` tells of fill progress: each fill the strategy is handed
(stored by ``record_fill``, or recovered by reconciliation) is followed, after the fill and its
position, by exactly one update of its order as the ledger then holds it (``partially_filled``,
``filled``, or its terminal status when the fill raced a cancel). A venue reply that reports fills
before they arrive tells nothing itself: the fills, or the fill reconciliation recovers, do. A
reduced (netted) or weighted order is its lead signal's: its id, slot and metadata, and the
quantity actually sent, which the update carries.

Modes: ``live`` and ``simulation`` differ only in the venue given; ``observation`` runs the same
path up to risk and records what would have been sent, sending nothing (each approved order is
answered ``rejected``, rule ``observation``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import structlog

from host.clock import Clocks
from host.execution.book import Book
from host.execution.persist import Persister
from host.execution.rejections import RejectionLog
from host.execution.venue import Venue, VenueReply, VenueTimeout, VenueUnavailable
from host.ledger import DuplicateOrder, Ledger, LedgerError
from host.metrics import ExecutionMetrics
from host.orders import TERMINAL, OrderIntent, OrderState, OrderStatus, order_update, told_on_transition
from host.risk import QUOTA_RULES, AggregationResult, Aggregator, OutcomeKind, Rejected, RiskManager, SignalQueue
from sdk.events import Cancel, Fill, MarketEvent, OrderUpdate, Position, Signal

__all__ = ["Deliver", "ExecutionEngine", "ExecutionStats", "ReconcileReport"]

log = structlog.get_logger("host.execution")

Deliver = Callable[[str, Fill | Position | OrderUpdate], None]
OverQuota = Callable[[str, str], None]  # (strategy, the rejection's message)
_BATCH = 256
_IN_FLIGHT = (OrderStatus.SENT, OrderStatus.CANCEL_PENDING)  # sent; the venue may not have answered yet
_MAX_RETRY_S = 10.0  # the longest pause between two asks about one order while the venue does not answer
_QUANTITY_EPSILON = 1e-9
_SENT_ALONE = frozenset({OutcomeKind.EXECUTED, OutcomeKind.REDUCED})  # aggregation kept the signal as its own order


def _behind(current: OrderStatus, reported: OrderStatus) -> bool:
    """Whether a venue's ``reported`` state is older news than the ledger's ``current`` one: any state
    after a terminal one, or accepted after a fill or a cancel request."""
    if current in TERMINAL:
        return reported is not current
    lagging = (OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCEL_PENDING)
    return reported is OrderStatus.ACCEPTED and current in lagging


def utc_day(timestamp_ns: int) -> date:
    return datetime.fromtimestamp(timestamp_ns // 1_000_000_000, tz=UTC).date()


@dataclass(slots=True)
class ReconcileReport:
    """One reconciliation of the working orders with the venue (``ExecutionEngine.last_reconcile``)."""

    at_ns: int
    trigger: str  # "start", "venue_reconnected"
    checked: int = 0  # working orders asked about
    closed: int = 0  # the venue no longer knew them: closed, not re-sent
    resent: int = 0  # never reached the venue: sent again under the same id
    reconciled_fills: int = 0  # fills recovered from the venue's filled quantity
    unavailable: int = 0  # no answer: asked again with backoff


@dataclass
class ExecutionStats:
    submitted: int = 0
    rejected_by_risk: dict[str, int] = field(default_factory=dict)
    rejected_by_venue: int = 0
    observed: int = 0
    fills: int = 0
    duplicate_fills: int = 0
    foreign_updates: int = 0  # venue order updates about orders this engine did not journal
    ambiguous: int = 0
    cancels: int = 0
    rejections: dict[str, dict[str, int]] = field(default_factory=dict)  # strategy -> reason -> count
    orders_by_strategy: dict[str, int] = field(default_factory=dict)  # sent to the venue
    fills_by_strategy: dict[str, int] = field(default_factory=dict)


class ExecutionEngine:
    """Everything between a strategy's signal and the venue, and back."""

    def __init__(
        self,
        *,
        mode: str,
        ledger: Ledger,
        book: Book,
        risk: RiskManager,
        aggregator: Aggregator,
        queue: SignalQueue,
        venue: Venue | None,
        deliver: Deliver,
        clock: Clocks,
        metrics: ExecutionMetrics,
        resolve_interval_s: float = 0.5,
        persister: Persister | None = None,
        disconnect_action: str = "cancel",
        max_unsent_age_s: float = 60.0,
        over_quota: OverQuota | None = None,
        fill_grace_s: float = 2.0,
    ) -> None:
        if mode != "observation" and venue is None:
            raise ValueError(f"execution mode {mode!r} needs a venue")
        self.mode = mode
        self.ledger = ledger
        self.book = book
        self.risk = risk
        self.aggregator = aggregator
        self.queue = queue
        self.venue = venue
        # Every deliver the engine is built with hands any event on to Supervisor.deliver, which takes
        # order updates; host/assembly.py still annotates its own as fills and positions only.
        self.deliver = deliver
        self.clock = clock
        self.metrics = metrics
        self.resolve_interval_s = resolve_interval_s
        self.persister = persister
        self.disconnect_action = disconnect_action
        self.max_unsent_age_s = max_unsent_age_s  # a journaled order older than this is not sent after a restart
        self.over_quota = over_quota
        self._reduce_only: set[str] = set()
        self._cancel_requested: set[str] = set()  # orders a cancel was asked for (see _cancel_if_requested)
        self.stats = ExecutionStats()
        self.rejection_log = RejectionLog(clock)  # a line for the first of a run, then counts per interval
        self._wake = asyncio.Event()  # signals queued, or drain asked: run places what is queued
        self._settled = asyncio.Event()  # the queue emptied or a background task ended: drain looks again
        self._tasks: set[asyncio.Task[None]] = set()
        self._venue_ids: dict[str, str] = {}  # venue order id -> client order id
        self.fill_grace_s = fill_grace_s  # how long fills may lag the venue's word before they are recovered
        self.last_reconcile: ReconcileReport | None = None
        self._calling: dict[str, int] = {}  # client order id -> venue calls about it on their way
        self._venue_up = asyncio.Event()  # set (and replaced) when the venue's connection comes back
        self._reconciling = False
        self._pending_triggers: list[str] = []  # asked for while a reconciliation ran: one more pass
        self._placing = False  # the run loop is placing a batch it took from the queue

    # ---------------------------------------------------------------- the supervisor's listener

    def signals(self, strategy: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        for signal in signals:
            if not self.queue.put(strategy, signal):
                labels = self.metrics.labels
                self.metrics.signals_dropped.labels(
                    strategy=labels.strategy(strategy), symbol=labels.symbol(signal.symbol), reason="queue_full"
                ).inc()
                self._refused(self._intent(strategy, signal), "queue_full", "the engine's signal queue is full")
        for cancel in cancels:
            self._spawn(self._cancel_slot(strategy, cancel))
        self.metrics.queue_size.set(len(self.queue))
        self._wake.set()

    def strategy_down(self, strategy: str, reason: str) -> None:
        """On disconnect, before anything else: cancel the strategy's working orders (``cancel``) or put
        it into reduce-only (``reduce_only``: its kill switch, so only orders that shrink its position
        pass risk, until a runner of it is serving again). Positions stay on the books either way."""
        if self.disconnect_action == "reduce_only":
            if self.risk.engage(strategy):
                self._reduce_only.add(strategy)
                log.warning("reduce_only_on_disconnect", strategy=strategy, reason=reason[:200])
            return
        orders = self.book.strategy_orders(strategy)
        if orders:
            log.warning("cancel_on_disconnect", strategy=strategy, orders=len(orders), reason=reason[:200])
        for order in orders:
            self._spawn(self._cancel(order, f"strategy down: {reason}"))

    def strategy_up(self, strategy: str) -> None:
        """Serving again: lift the reduce-only this engine put on it (never an operator's kill switch)."""
        if strategy in self._reduce_only:
            self._reduce_only.discard(strategy)
            self.risk.release(strategy)
            log.info("reduce_only_lifted", strategy=strategy)

    def positions(self, strategy: str) -> list[Position]:
        return self.book.strategy_positions(strategy)

    def strategy_of(self, order_id: str) -> str | None:
        """The strategy an order belongs to, by client or venue order id (routes fills without one)."""
        if not order_id:
            return None
        client_id = self._venue_ids.get(order_id, order_id)
        order = self.book.order(client_id) or self.ledger.find_order(client_id)
        return None if order is None else order.intent.strategy

    # ---------------------------------------------------------------- market data and fills

    def on_market(self, event: MarketEvent) -> None:
        self.book.on_market(event)

    def record_fill(self, fill: Fill) -> bool:
        """Store a fill once, update the books, hand fill and position to the strategy; False if seen."""
        now = self.clock.now_ns()
        client_id = self._client_id(fill)
        # _client_id already looked the fill's venue id up in the ledger: a client id here, or nobody's.
        order = self.book.order(client_id) or (self.ledger.order(client_id) if client_id else None)
        strategy = order.intent.strategy if order is not None else fill.strategy
        position = self.ledger.record_fill(fill, now)  # LedgerError propagates: the fill is not acked
        if position is None:
            self.stats.duplicate_fills += 1
            return False
        self._deliver_fill(strategy, fill, position, client_id)
        return True

    def _deliver_fill(self, strategy: str, fill: Fill, position: Position, client_id: str) -> None:
        """Books updated, then the fill, the ledger's position after it and its order's update (the
        one this fill makes) to the strategy.

        A venue fill a reconciled fill already counted reaches the strategy only for the quantity
        the reconciled one did not (the strategy was told of that one): wholly covered, only the
        position goes."""
        self.stats.fills += 1
        self.stats.fills_by_strategy[strategy] = self.stats.fills_by_strategy.get(strategy, 0) + 1
        self.book.position_changed(position, utc_day(fill.timestamp_ns))
        refreshed = self.ledger.order(client_id) if client_id else None  # the order as this fill left it
        if refreshed is not None:
            self.book.order_changed(refreshed)
            self._forget_if_terminal(refreshed)
        if not strategy:
            return
        told: Fill | None = fill if fill.strategy == strategy else replace(fill, strategy=strategy)
        covered = self.ledger.covered(fill.fill_id) if refreshed is not None and not fill.reconciled else 0.0
        if covered:
            uncovered = fill.quantity - covered
            told = replace(fill, strategy=strategy, quantity=uncovered) if uncovered > fill.quantity * 1e-9 else None
        if told is not None:
            self.deliver(strategy, told)
        self.deliver(strategy, position)  # the ledger's: the strategy's truth in every mode
        if told is not None and refreshed is not None:
            self._order_update(refreshed)

    def _client_id(self, fill: Fill) -> str:
        """The client order id of the order ``fill`` belongs to, as far as the engine can tell.

        A fill can beat the reply of the submit that caused it (the paper venue fills inside
        ``submit``; a NATS fill can overtake the gRPC reply), so nobody knows its venue order id
        yet and the ledger could not tie it to its order (whose filled quantity and status would
        then never add up). When exactly one of the strategy's sent orders on that symbol and side
        has no venue id yet, the fill is that order's: the venue id is recorded on it first. Not
        with a venue that streams its orders' state (``streams_orders``: order.OrderService): its
        updates name every order's venue id, and a guess could tie another order's report (one
        placed before a restart) to the wrong one; the report waits untied, and the ledger counts
        it toward the order its venue id turns out to be.
        A fill naming no order (the account monitor's) is tied to none: "" is returned.
        """
        if not fill.order_id:
            return ""
        known = self._venue_ids.get(fill.order_id)
        if known is not None or self.book.order(fill.order_id) is not None:
            return known or fill.order_id
        found = self.ledger.find_order(fill.order_id)  # a venue id this process has not seen, or let go of
        if found is not None:
            return found.intent.client_order_id
        if getattr(self.venue, "streams_orders", False):
            return fill.order_id
        waiting = []
        for order in self.book.strategy_orders(fill.strategy):
            if order.venue_order_id == fill.order_id:
                return order.intent.client_order_id
            intent = order.intent
            if not order.venue_order_id and order.status in _IN_FLIGHT and intent.symbol == fill.symbol \
                    and intent.side is fill.side:  # fmt: skip
                waiting.append(order)
        if len(waiting) != 1:
            return fill.order_id
        client_id = waiting[0].intent.client_order_id
        self._venue_ids[fill.order_id] = client_id
        self._transition(client_id, waiting[0].status, venue_order_id=fill.order_id)
        return client_id

    def on_fill(self, fill: Fill) -> None:
        """The paper venue's fill sink (synchronous, on the event loop)."""
        try:
            self.record_fill(fill)
        except LedgerError as err:
            log.error("fill_not_recorded", fill_id=fill.fill_id, reason=str(err))

    # ---------------------------------------------------------------- operator

    def engage_kill_switch(self, strategy: str | None = None) -> None:
        """New orders refused (reduce-only still allowed when configured); working orders cancelled."""
        self.risk.engage(strategy)
        for order in self.book.strategy_orders(strategy):
            self._spawn(self._cancel(order, "kill switch"))
        log.warning("kill_switch_engaged", strategy=strategy or "all")

    def release_kill_switch(self, strategy: str | None = None) -> None:
        self.risk.release(strategy)
        log.warning("kill_switch_released", strategy=strategy or "all")

    # ---------------------------------------------------------------- lifecycle

    async def reconcile(self, trigger: str = "start") -> int:
        """Settle every order the ledger holds as working with the venue; return how many were checked.

        At start (``trigger="start"``) the books are loaded from the ledger first and orders
        journaled but never sent are sent (same id) or expired. Later (the venue reconnected) the
        orders this process is sending or cancelling right now are left to that call. What each
        answer does is ``_settle``'s; an order the venue did not answer about is asked again, paced.
        """
        orders = self.ledger.working_orders()
        report = ReconcileReport(at_ns=self.clock.now_ns(), trigger=trigger)
        for order in orders:
            cid = order.intent.client_order_id
            if trigger == "start":
                self.book.order_changed(order)
            elif cid in self._calling or order.status is OrderStatus.PENDING_NEW:
                continue  # a call of its own is on its way: its answer settles it
            if self.venue is None:
                continue
            report.checked += 1
            if order.status is OrderStatus.PENDING_NEW:
                await self._send_late(order)
            elif not await self._resolve(cid, report):
                report.unavailable += 1
                self._spawn(self._resolve_loop(cid))
        self.metrics.reconciliations.labels(trigger=trigger).inc()
        self.last_reconcile = report
        if report.checked or trigger != "start":
            log.info("orders_reconciled", **dataclasses.asdict(report))
        return len(orders)

    def venue_back(self, trigger: str = "venue_reconnected") -> None:
        """The venue's connection is up again after it was lost (it may have restarted and forgotten
        orders), its order-update stream (re)opened (updates before it are not replayed), or the fill
        feed's core NATS subscription came (back) up (``fills_subscribed``, ``fills_resubscribed``:
        fills published meanwhile are gone): reconcile while running, and let paced retries go at once."""
        if trigger == "venue_reconnected":
            log.warning("venue_reconnected", working=len(self.book.strategy_orders(None)))
        self._venue_up.set()
        self._venue_up = asyncio.Event()
        self._pending_triggers.append(trigger)
        if not self._reconciling:  # else the pass under way runs once more when it ends
            self._reconciling = True
            self._spawn(self._reconcile_again())

    async def _reconcile_again(self) -> None:
        try:
            while self._pending_triggers:
                trigger = self._pending_triggers[-1]
                self._pending_triggers.clear()
                await self.reconcile(trigger)
        finally:
            self._reconciling = False

    async def _send_late(self, order: OrderState) -> None:
        """An order journaled but never sent before the host stopped: send it (same id) only if it is
        still fresh and its strategy is not under a kill switch; otherwise it expires unsent."""
        intent = order.intent
        age_s = (self.clock.now_ns() - intent.created_ns) / 1e9
        if self.risk.is_killed(intent.strategy) or age_s > self.max_unsent_age_s:
            why = "kill switch engaged" if self.risk.is_killed(intent.strategy) else f"{age_s:.0f} s old"
            self._transition(intent.client_order_id, OrderStatus.EXPIRED, reason=f"not sent before a restart ({why})")
            log.warning("unsent_order_expired", client_order_id=intent.client_order_id, reason=why)
            return
        await self._send(order)

    async def run(self) -> None:
        """Place aggregated orders until cancelled (flushing counters and the equity peak each second);
        beside it, the venue's connection is watched (``venue_back`` when it returns)."""
        watch = getattr(self.venue, "watch", None)
        watcher = asyncio.ensure_future(watch(self.venue_back)) if watch is not None else None
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._wake.wait()
                self._wake.clear()
                if self.persister is not None:
                    self.persister.flush(self.clock.now_ns())
                self._placing = True  # until what was queued is placed: a drain waits for that too
                try:
                    while len(self.queue):
                        batch = self.queue.take_batch(_BATCH)
                        self.metrics.queue_size.set(len(self.queue))
                        result = self.aggregator.aggregate(batch)
                        self._absorbed(batch, result)
                        for strategy, signal in result.orders:
                            await self._place(strategy, signal)
                finally:
                    self._placing = False
                    self._note_settled()
        finally:
            if self.persister is not None:
                self.persister.flush(self.clock.now_ns())
            for task in list(self._tasks):
                task.cancel()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Until the queue is empty, what was taken from it is placed, and no cancel or resolution is in
        flight (bounded)."""
        self._wake.set()  # run may be sitting out its flush interval with signals queued
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                # Looked at again on every signal: a new signal or task may have arrived since.
                while not self._drained():
                    self._settled.clear()
                    await self._settled.wait()

    def _drained(self) -> bool:
        return not len(self.queue) and not self._tasks and not self._placing

    def _note_settled(self) -> None:
        """Called where the queue shrinks or a task ends, the only changes that can complete a drain."""
        if self._drained():
            self._settled.set()

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._note_settled()

    # ---------------------------------------------------------------- placing

    def _intent(self, strategy: str, signal: Signal) -> OrderIntent:
        return OrderIntent.from_signal(strategy, signal, self.clock.now_ns())

    def _absorbed(self, batch: list[tuple[str, Signal]], result: AggregationResult) -> None:
        """Signals aggregation sent no order of their own for: each strategy hears it, and why."""
        for outcome in result.outcomes:
            if outcome.kind not in _SENT_ALONE:
                strategy, signal = batch[outcome.index]
                self._refused(self._intent(strategy, signal), outcome.kind.value, outcome.detail)

    async def _place(self, strategy: str, signal: Signal) -> None:
        now = self.clock.now_ns()
        intent = OrderIntent.from_signal(strategy, signal, now)
        if signal.slot:
            current = self.book.slot_order(strategy, signal.symbol, signal.slot)
            if current is not None:
                await self._cancel(current, f"replaced in slot {signal.slot!r}")
        self.metrics.risk_checks.inc()
        decision = self.risk.check(intent)
        if isinstance(decision, Rejected):
            self._rejected(strategy, decision.rule.value, decision.message, risk=True)
            self._refused(intent, decision.rule.value, decision.message)
            if decision.rule in QUOTA_RULES and self.over_quota is not None:
                self.over_quota(strategy, decision.message)
            return
        if self.mode == "observation":
            self.stats.observed += 1
            log.info("order_observed", strategy=strategy, symbol=intent.symbol, side=intent.side.value,
                     quantity=intent.quantity, client_order_id=intent.client_order_id)  # fmt: skip
            self._refused(intent, "observation", "observation mode: approved by risk and recorded, never sent")
            return
        try:
            state = self.ledger.journal(intent, now)
        except DuplicateOrder as err:
            # Risk remembers only so many ids; the journal is the durable guard (a strategy chose the id).
            self._rejected(strategy, "duplicate_client_order_id", str(err), risk=False)
            self._refused(intent, "duplicate_client_order_id", str(err))
            return
        except LedgerError as err:
            self._rejected(strategy, "ledger_unavailable", str(err), risk=False)
            self._refused(intent, "ledger_unavailable", str(err))
            return
        self.book.order_changed(state)
        await self._send(state)

    async def _send(self, state: OrderState) -> None:
        assert self.venue is not None
        intent = state.intent
        cid = intent.client_order_id
        now = self.clock.now_ns()
        try:
            sent = self.ledger.transition(cid, OrderStatus.SENT, now)
        except LedgerError as err:
            self._rejected(intent.strategy, "ledger_unavailable", str(err), risk=False)
            self._refused(intent, "ledger_unavailable", str(err))
            return
        self.book.order_changed(sent)
        started = self.clock.monotonic()
        try:
            reply = await self._calling_venue(cid, self.venue.submit(intent))
        except VenueUnavailable as err:
            self._venue_refused(sent, f"venue unavailable: {err}")
            return
        except VenueTimeout as err:
            self.stats.ambiguous += 1
            log.warning("order_ambiguous", client_order_id=cid, strategy=intent.strategy, reason=str(err))
            self._spawn(self._resolve_loop(cid))
            return
        self.metrics.order_latency_us.observe((self.clock.monotonic() - started) * 1e6)
        if reply.known and reply.status is not OrderStatus.REJECTED:
            self._took(intent)
        self._apply(reply)
        self._cancel_if_requested(cid, reply)

    def _venue_refused(self, state: OrderState, reason: str) -> None:
        self.stats.rejected_by_venue += 1
        self._transition(state.intent.client_order_id, OrderStatus.REJECTED, rule="venue_unavailable", reason=reason)
        self._rejected(state.intent.strategy, "venue_unavailable", reason, risk=False)

    def _rejected(self, strategy: str, reason: str, message: str, *, risk: bool) -> None:
        per = self.stats.rejections.setdefault(strategy, {})
        per[reason] = per.get(reason, 0) + 1
        self.metrics.orders_rejected.labels(reason=reason).inc()
        if risk:
            self.stats.rejected_by_risk[reason] = self.stats.rejected_by_risk.get(reason, 0) + 1
            self.metrics.risk_violations.labels(type=reason, strategy=self.metrics.labels.strategy(strategy)).inc()
        self.rejection_log.rejected(strategy, reason, message)

    # ---------------------------------------------------------------- replies and state

    def _cancel_if_requested(self, cid: str, reply: VenueReply) -> None:
        """A cancel asked for while the order was on its way may have reached the venue first and
        found nothing: if the venue now says the order works, cancel it again (same id)."""
        if cid not in self._cancel_requested:
            return
        order = self.book.order(cid)
        if order is not None and reply.status is not None and reply.status not in TERMINAL:
            self._spawn(self._cancel(order, "cancel requested while the order was on its way"))
        elif reply.status in TERMINAL:
            self._cancel_requested.discard(cid)

    def _apply(self, reply: VenueReply) -> None:
        if reply.venue_order_id:
            self._venue_ids[reply.venue_order_id] = reply.client_order_id
        if reply.status is None:
            return
        status = reply.status
        current = self.ledger.order(reply.client_order_id)
        if current is not None and _behind(current.status, status):
            # An older word than the ledger's (a stream's "created" after the create's reply said
            # filled): its ids may be news, its state is not.
            if not reply.venue_order_id or reply.venue_order_id == current.venue_order_id:
                self._forget_if_terminal(current)  # a late word about a finished order: nothing to keep
                return
            status = current.status
        self._transition(
            reply.client_order_id, status, venue_order_id=reply.venue_order_id or None,
            filled_quantity=reply.filled_quantity, average_price=reply.average_price, reason=reply.message,
            from_venue=True,
        )  # fmt: skip

    def _transition(
        self, cid: str, status: OrderStatus, *, rule: str = "venue", from_venue: bool = False, **fields: object
    ) -> None:
        """Move an order in the ledger and the book; tell its strategy when the move is one it hears of.

        ``rule`` is what a move to REJECTED reports: a venue's refusal unless the caller says otherwise.
        A venue's reply (``from_venue``) confirming a cancel the host asked for is told with the
        cancel's cause (a slot replacement, a kill switch, ...), not the venue's "cancelled"; a move
        the host decides is told with its own reason.
        """
        current = self.ledger.order(cid)
        if current is None:
            return
        filled = fields.get("filled_quantity")
        if isinstance(filled, float) and filled < current.filled_quantity:
            # A reply can lag the fills the ledger holds (a gRPC cancel reply carries no quantities
            # at all): what the fills gave the order is kept, quantities never go back.
            fields = {**fields, "filled_quantity": None, "average_price": None}
        if current.status is status and not any(v for v in fields.values() if v not in (None, "")):
            return
        try:
            state = self.ledger.transition(cid, status, self.clock.now_ns(), **fields)  # type: ignore[arg-type]
        except LedgerError as err:
            log.error("order_transition_failed", client_order_id=cid, status=status.value, reason=str(err))
            self._forget_if_terminal(current)
            return
        self.book.order_changed(state)
        if told_on_transition(current.status, state.status):
            cause = current.reason if from_venue and current.status is OrderStatus.CANCEL_PENDING else ""
            self._order_update(state, rule=rule, reason=cause)
        self._forget_if_terminal(state)

    def _forget_if_terminal(self, state: OrderState) -> None:
        """A terminal order leaves this engine's maps (the ledger keeps it, by client and venue id):
        memory follows working orders, not history."""
        if state.status in TERMINAL:
            self._venue_ids.pop(state.venue_order_id, None)
            self._cancel_requested.discard(state.intent.client_order_id)

    def _order_update(self, state: OrderState, *, rule: str = "", reason: str = "") -> None:
        """Tell the order's strategy where its order stands (the module docstring says when)."""
        update = order_update(state, self.clock.now_ns(), rule=rule, reason=reason)
        if update is not None:
            self.deliver(state.intent.strategy, update)

    def _refused(self, intent: OrderIntent, rule: str, reason: str) -> None:
        """A signal or order that never reached the venue, with no REJECTED state in the ledger: tell its strategy."""
        self._order_update(
            OrderState(intent, OrderStatus.REJECTED, updated_ns=self.clock.now_ns()), rule=rule, reason=reason
        )

    async def _resolve(self, cid: str, report: ReconcileReport | None = None) -> bool:
        """Ask the venue about an order of unknown outcome; True once it is settled."""
        assert self.venue is not None
        try:
            reply = await self._calling_venue(cid, self.venue.status(cid, *self._venue_ref(cid)))
        except (VenueUnavailable, VenueTimeout) as err:
            if report is None or report.unavailable == 0:
                log.warning("order_status_unavailable", client_order_id=cid, reason=str(err))
            return False
        await self._settle(cid, reply, report)
        return True

    async def _settle(self, cid: str, reply: VenueReply, report: ReconcileReport | None) -> None:
        """What the venue's answer about a journaled order proves, and only that.

        Known: its state is applied; a filled quantity beyond the fills the ledger holds is
        recovered after ``fill_grace_s`` if the fills have not arrived by then (``_recover_fills``).
        Unknown, and the ledger shows the order never acknowledged and never filled: the request
        never arrived, so it is sent again under the same id (a cancel asked meanwhile closes it
        instead). Unknown otherwise: the venue lost it (it restarted): the order is closed as
        EXPIRED with that reason, never revived, and its strategy is told; the quantity sent for
        one id never exceeds its quantity.
        """
        if reply.known:
            before = self.ledger.order(cid)
            self._apply(reply)
            self._cancel_if_requested(cid, reply)
            if before is not None and before.status is OrderStatus.SENT and reply.status is not OrderStatus.REJECTED:
                self._took(before.intent)  # a send that timed out: the venue did take it
            if reply.filled_quantity > self.ledger.counted_fills(cid) + _QUANTITY_EPSILON:
                self._spawn(self._recover_fills(cid, report))
            return
        order = self.ledger.order(cid)
        if order is None or not order.working or cid in self._calling:
            return  # settled already, or a send of it is on its way: that answer settles it
        never_seen = self._never_acknowledged(order)
        if order.status is OrderStatus.CANCEL_PENDING and never_seen:
            # Cancelled while its fate was unknown, and it never arrived: sending it now would
            # place an order the host (kill switch, cancel-on-disconnect) already took back.
            self._transition(cid, OrderStatus.CANCELLED, reason="cancelled before it reached the venue")
            return
        if never_seen:
            log.info("order_resent_same_id", client_order_id=cid, reason="the venue never saw it")
            if report is not None:
                report.resent += 1
            await self._send(order)
            return
        reason = (
            f"the venue no longer knows the order (restarted?): closed with {order.filled_quantity:g} of "
            f"{order.intent.quantity:g} filled; the remainder was not sent again"
        )
        log.warning(
            "order_lost_by_venue", client_order_id=cid, strategy=order.intent.strategy, status=order.status.value,
            filled=order.filled_quantity, quantity=order.intent.quantity,
        )  # fmt: skip
        self.metrics.orders_lost.labels(strategy=self.metrics.labels.strategy(order.intent.strategy)).inc()
        if report is not None:
            report.closed += 1
        cancelled = order.status is OrderStatus.CANCEL_PENDING  # what was asked for happened, one way or another
        self._transition(cid, OrderStatus.CANCELLED if cancelled else OrderStatus.EXPIRED, reason=reason)

    def _never_acknowledged(self, order: OrderState) -> bool:
        """No venue id, no fill, and no acceptance in its audit trail: the venue may never have seen it."""
        if order.venue_order_id or order.filled_quantity > 0 or self.ledger.counted_fills(order.intent.client_order_id):
            return False
        acknowledged = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
        return not any(event.status in acknowledged for event in self.ledger.order_events(order.intent.client_order_id))

    async def _recover_fills(self, cid: str, report: ReconcileReport | None) -> None:
        """The venue said more filled than the ledger holds. Fills can lag a reply (they travel on
        NATS, a JetStream consumer may be replaying them): wait ``fill_grace_s``, ask the venue
        again, and store what is still missing as a fill marked ``reconciled``, delivered like any."""
        assert self.venue is not None
        await self._pause(self.fill_grace_s)
        try:
            reply = await self.venue.status(cid, *self._venue_ref(cid))
        except (VenueUnavailable, VenueTimeout):
            return  # the next reconciliation (the venue coming back) asks again
        if not reply.known or reply.filled_quantity <= self.ledger.counted_fills(cid) + _QUANTITY_EPSILON:
            return
        recovered = self._fill_from(reply, reconciled=True)
        if recovered is None:
            return
        fill, position = recovered
        log.warning("fill_reconciled", client_order_id=cid, strategy=fill.strategy, quantity=fill.quantity,
                    price=fill.price, venue_filled=reply.filled_quantity,
                    reason="the venue reports fills the ledger never received")  # fmt: skip
        self.metrics.fills_reconciled.labels(strategy=self.metrics.labels.strategy(fill.strategy)).inc()
        if report is not None:
            report.reconciled_fills += 1
            if self.last_reconcile is report:
                self.last_reconcile = dataclasses.replace(report)
        self._deliver_fill(fill.strategy, fill, position, cid)

    def _fill_from(self, reply: VenueReply, *, reconciled: bool) -> tuple[Fill, Position] | None:
        """Store what the venue's cumulative filled quantity has beyond the ledger's fills (see
        ``Ledger.record_missing_fill``); None when nothing was missing."""
        try:
            return self.ledger.record_missing_fill(
                reply.client_order_id, reply.filled_quantity, reply.average_price, self.clock.now_ns(),
                venue_fee=reply.fee, reconciled=reconciled, venue_order_id=reply.venue_order_id,
            )  # fmt: skip
        except LedgerError as err:
            log.error("missing_fill_not_recorded", client_order_id=reply.client_order_id, reason=str(err))
            return None

    def on_order_update(self, reply: VenueReply) -> None:
        """An order update the venue pushed (order.OrderService's stream): the fill its cumulative
        quantity implies beyond the fills held (reports on NATS included, even those not tied to the
        order yet) is stored once and delivered, then its state applied. A fill report arriving
        after it for those executions is covered, not counted again. An update for an order this
        engine never journaled (another client's) is counted and ignored."""
        cid = reply.client_order_id
        if self.ledger.order(cid) is None:
            self.stats.foreign_updates += 1
            return
        if reply.venue_order_id:
            self._venue_ids[reply.venue_order_id] = cid
        if reply.filled_quantity > _QUANTITY_EPSILON:
            recovered = self._fill_from(reply, reconciled=False)
            if recovered is not None:
                fill, position = recovered
                self._deliver_fill(fill.strategy, fill, position, cid)
        self._apply(reply)

    async def _resolve_loop(self, cid: str) -> None:
        """Ask again until the venue settles the order: ``resolve_interval_s`` doubling up to
        ``_MAX_RETRY_S``, at once when the venue comes back; the first failure is logged, the rest
        are counted and summed up when it settles.

        The sleep paces requests to the venue, it does not wait on state here: what the venue
        knows reaches this process only as the answer to a request (or the connection coming back).
        """
        delay, attempts = self.resolve_interval_s, 1
        quiet = ReconcileReport(at_ns=0, trigger="retry", unavailable=1)  # logs nothing more
        while True:
            await self._pause(delay)
            attempts += 1
            order = self.ledger.order(cid)
            if order is None or not order.working or await self._resolve(cid, quiet):
                if attempts > 2:
                    log.info("order_status_resolved", client_order_id=cid, attempts=attempts)
                return
            delay = min(delay * 2, _MAX_RETRY_S)

    def _venue_ref(self, cid: str) -> tuple[str, str]:
        """The venue's order id (if known) and the symbol: what a venue may need besides the client id."""
        order = self.book.order(cid) or self.ledger.order(cid)
        return ("", "") if order is None else (order.venue_order_id, order.intent.symbol)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the venue comes back meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._venue_up.wait()

    async def _calling_venue(self, cid: str, call: Coroutine[object, object, VenueReply]) -> VenueReply:
        """Await one venue call about ``cid``, marking it in flight (reconciliation leaves it alone)."""
        self._calling[cid] = self._calling.get(cid, 0) + 1
        try:
            return await call
        finally:
            left = self._calling[cid] - 1
            if left:
                self._calling[cid] = left
            else:
                del self._calling[cid]

    def _took(self, intent: OrderIntent) -> None:
        """The venue has the order: it counts as sent (called once per order: after the reply to its
        send, or when a send that timed out is found at the venue)."""
        self.risk.record_sent(intent)
        self.stats.submitted += 1
        strategy = intent.strategy
        self.stats.orders_by_strategy[strategy] = self.stats.orders_by_strategy.get(strategy, 0) + 1
        self.metrics.orders_submitted.labels(strategy=self.metrics.labels.strategy(strategy)).inc()

    # ---------------------------------------------------------------- cancels

    async def _cancel_slot(self, strategy: str, cancel: Cancel) -> None:
        order = self.book.slot_order(strategy, cancel.symbol, cancel.slot)
        if order is not None:
            await self._cancel(order, f"cancelled by strategy (slot {cancel.slot!r})")

    async def _cancel(self, order: OrderState, reason: str) -> None:
        cid = order.intent.client_order_id
        if self.venue is None or not order.working:
            return
        if order.status is OrderStatus.PENDING_NEW:
            # Journaled, never sent: nothing to cancel at the venue.
            self._transition(cid, OrderStatus.CANCELLED, reason=reason)
            return
        self._cancel_requested.add(cid)
        self._transition(cid, OrderStatus.CANCEL_PENDING, reason=reason)
        if not await self._cancel_at_venue(cid):
            self._spawn(self._cancel_loop(cid))

    async def _cancel_at_venue(self, cid: str, *, quiet: bool = False) -> bool:
        """One cancel request; True once the venue answered it (the reply is applied)."""
        assert self.venue is not None
        try:
            reply = await self._calling_venue(cid, self.venue.cancel(cid, *self._venue_ref(cid)))
        except (VenueUnavailable, VenueTimeout) as err:
            if not quiet:
                log.warning("cancel_failed", client_order_id=cid, reason=str(err), retry="with backoff")
            return False
        self.stats.cancels += 1
        if reply.known:
            self._apply(reply)
        else:
            await self._settle(cid, reply, None)
        return True

    async def _cancel_loop(self, cid: str) -> None:
        """Ask again until the venue answers (a cancel is idempotent); the order stays CANCEL_PENDING.
        Paced like ``_resolve_loop`` (backoff, at once when the venue comes back, one log line for
        the first failure and one when it went through); it stops when the order is settled otherwise
        (a reconciliation closed it).

        Asking for its status instead would only learn that it still works, and drop the cancel.
        """
        delay, attempts = self.resolve_interval_s, 1
        while True:
            await self._pause(delay)
            order = self.ledger.order(cid)
            if order is None or not order.working:
                return
            attempts += 1
            if await self._cancel_at_venue(cid, quiet=True):
                log.info("cancel_sent", client_order_id=cid, attempts=attempts)
                return
            delay = min(delay * 2, _MAX_RETRY_S)

"""The order path: signals -> aggregation -> risk -> journal -> venue; fills -> ledger -> strategies.

Model. One asyncio task (``run``) takes batches from the bounded ``SignalQueue``, aggregates
them and places each resulting order in turn, so every order passes risk exactly once and in
priority order. Placing an order is: build the ``OrderIntent`` (client order id = a fresh signal
id), cancel the strategy's working order in the same slot first, ``RiskManager.check``, journal it
in the ledger (a ledger failure rejects it: fail closed), mark it ``SENT``, ``Venue.submit``. The
reply moves it on. ``VenueUnavailable`` (nothing reached the venue) rejects it; ``VenueTimeout``
(ambiguous) leaves it ``SENT`` and a resolver asks ``Venue.status`` until the venue answers:
unknown means it never arrived and it is submitted again *under the same id* (unless it was
cancelled meanwhile: then it is CANCELLED, never sent); known means the reply is applied. It is
never resent under a new id. A cancel the venue did not answer is sent again until it is.

Fills (from the paper venue's sink, or NATS in live mode) go to ``record_fill``: stored once in the
ledger (a duplicate is ignored), applied to the books, then delivered to the strategy's runner as
the fill and its new position (a fill that beats its submit's reply is tied to its order, see
``_client_id``). Cancel-on-disconnect: ``strategy_down`` (runner lost, breaker open,
paused) cancels the strategy's working orders before anything else. An order refused by its
strategy's own order-rate quota is also reported to ``over_quota`` (the supervisor's, which
charges a strategy that keeps doing it): the way back from a risk rule to a strategy's breaker.
``reconcile`` runs at start: every order the ledger holds as working is checked with the venue,
and orders journaled but never sent are sent (same id), so a host killed at any point loses and duplicates nothing.

Waiting. ``run`` sleeps on an event that ``signals`` sets (and at most a second, to flush the
persister); ``drain`` (before a stop) sleeps on an event set where the queue empties and where a
background task (a cancel, a resolution) ends, and looks again each time. The only timed loops
are the resolver's and the cancel retry's, which pace requests to the venue: its state reaches
the host only as answers.

Modes: ``live`` and ``simulation`` differ only in the venue given; ``observation`` runs the same
path up to risk and records what would have been sent, sending nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import structlog

from host.clock import Clocks
from host.execution.book import Book
from host.execution.persist import Persister
from host.execution.rejections import RejectionLog
from host.execution.venue import Venue, VenueReply, VenueTimeout, VenueUnavailable
from host.ledger import Ledger, LedgerError
from host.metrics import ExecutionMetrics
from host.orders import TERMINAL, OrderIntent, OrderState, OrderStatus
from host.risk import QUOTA_RULES, Aggregator, Rejected, RiskManager, SignalQueue
from sdk.events import Cancel, Fill, MarketEvent, Position, Signal

__all__ = ["ExecutionEngine", "ExecutionStats"]

log = structlog.get_logger("host.execution")

Deliver = Callable[[str, Fill | Position], None]
OverQuota = Callable[[str, str], None]  # (strategy, the rejection's message)
_BATCH = 256
_IN_FLIGHT = (OrderStatus.SENT, OrderStatus.CANCEL_PENDING)  # sent; the venue may not have answered yet


def utc_day(timestamp_ns: int) -> date:
    return datetime.fromtimestamp(timestamp_ns // 1_000_000_000, tz=UTC).date()


@dataclass
class ExecutionStats:
    submitted: int = 0
    rejected_by_risk: dict[str, int] = field(default_factory=dict)
    rejected_by_venue: int = 0
    observed: int = 0
    fills: int = 0
    duplicate_fills: int = 0
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
        deliver_positions: bool = True,
        persister: Persister | None = None,
        disconnect_action: str = "cancel",
        max_unsent_age_s: float = 60.0,
        over_quota: OverQuota | None = None,
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
        self.deliver = deliver
        self.clock = clock
        self.metrics = metrics
        self.resolve_interval_s = resolve_interval_s
        # Live: the OMS publishes positions on NATS and those reach the strategies; the ledger's
        # own position after a fill is then not sent as well.
        self.deliver_positions = deliver_positions
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

    # ---------------------------------------------------------------- the supervisor's listener

    def signals(self, strategy: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        for signal in signals:
            if not self.queue.put(strategy, signal):
                labels = self.metrics.labels
                self.metrics.signals_dropped.labels(
                    strategy=labels.strategy(strategy), symbol=labels.symbol(signal.symbol), reason="queue_full"
                ).inc()
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
        order = self.book.order(client_id)
        strategy = order.intent.strategy if order is not None else fill.strategy
        position = self.ledger.record_fill(fill, now)  # LedgerError propagates: the fill is not acked
        if position is None:
            self.stats.duplicate_fills += 1
            return False
        self.stats.fills += 1
        self.stats.fills_by_strategy[strategy] = self.stats.fills_by_strategy.get(strategy, 0) + 1
        self.book.position_changed(position, utc_day(fill.timestamp_ns))
        if order is not None:
            refreshed = self.ledger.order(client_id)
            if refreshed is not None:
                self.book.order_changed(refreshed)
                self._forget_if_terminal(refreshed)
        if strategy:
            self.deliver(strategy, fill if fill.strategy == strategy else replace(fill, strategy=strategy))
            if self.deliver_positions:
                self.deliver(strategy, position)
        return True

    def _client_id(self, fill: Fill) -> str:
        """The client order id of the order ``fill`` belongs to, as far as the engine can tell.

        A fill can beat the reply of the submit that caused it (the paper venue fills inside
        ``submit``; a NATS fill can overtake the gRPC reply), so nobody knows its venue order id
        yet and the ledger could not tie it to its order (whose filled quantity and status would
        then never add up). When exactly one of the strategy's sent orders on that symbol and side
        has no venue id yet, the fill is that order's: the venue id is recorded on it first.
        A fill naming no order (the account monitor's) is tied to none: "" is returned.
        """
        if not fill.order_id:
            return ""
        known = self._venue_ids.get(fill.order_id)
        if known is not None or self.book.order(fill.order_id) is not None:
            return known or fill.order_id
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

    async def reconcile(self) -> int:
        """Before trading: settle every order the ledger holds as working; return how many."""
        orders = self.ledger.working_orders()
        for order in orders:
            self.book.order_changed(order)
            if self.venue is None:
                continue
            if order.status is OrderStatus.PENDING_NEW:
                await self._send_late(order)
            elif not await self._resolve(order.intent.client_order_id):
                # The venue did not answer: keep asking, as for an order that timed out.
                self._spawn(self._resolve_loop(order.intent.client_order_id))
        if orders:
            log.info("orders_reconciled", count=len(orders))
        return len(orders)

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
        """Place aggregated orders until cancelled (flushing counters and the equity peak each second)."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._wake.wait()
                self._wake.clear()
                if self.persister is not None:
                    self.persister.flush(self.clock.now_ns())
                while len(self.queue):
                    batch = self.queue.take_batch(_BATCH)
                    self.metrics.queue_size.set(len(self.queue))
                    self._note_settled()
                    result = self.aggregator.aggregate(batch)
                    for strategy, signal in result.orders:
                        await self._place(strategy, signal)
        finally:
            if self.persister is not None:
                self.persister.flush(self.clock.now_ns())
            for task in list(self._tasks):
                task.cancel()

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Until the queue is empty and no cancel or resolution is in flight (bounded)."""
        self._wake.set()  # run may be sitting out its flush interval with signals queued
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                # Looked at again on every signal: a new signal or task may have arrived since.
                while not self._drained():
                    self._settled.clear()
                    await self._settled.wait()

    def _drained(self) -> bool:
        return not len(self.queue) and not self._tasks

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
            if decision.rule in QUOTA_RULES and self.over_quota is not None:
                self.over_quota(strategy, decision.message)
            return
        if self.mode == "observation":
            self.stats.observed += 1
            log.info("order_observed", strategy=strategy, symbol=intent.symbol, side=intent.side.value,
                     quantity=intent.quantity, client_order_id=intent.client_order_id)  # fmt: skip
            return
        try:
            state = self.ledger.journal(intent, now)
        except LedgerError as err:
            self._rejected(strategy, "ledger_unavailable", str(err), risk=False)
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
            return
        self.book.order_changed(sent)
        self.risk.record_sent(intent)
        started = self.clock.monotonic()
        try:
            reply = await self.venue.submit(intent)
        except VenueUnavailable as err:
            self._venue_refused(sent, f"venue unavailable: {err}")
            return
        except VenueTimeout as err:
            self.stats.ambiguous += 1
            log.warning("order_ambiguous", client_order_id=cid, strategy=intent.strategy, reason=str(err))
            self._spawn(self._resolve_loop(cid))
            return
        self.metrics.order_latency_us.observe((self.clock.monotonic() - started) * 1e6)
        self.stats.submitted += 1
        self.stats.orders_by_strategy[intent.strategy] = self.stats.orders_by_strategy.get(intent.strategy, 0) + 1
        self.metrics.orders_submitted.labels(strategy=self.metrics.labels.strategy(intent.strategy)).inc()
        self._apply(reply)
        self._cancel_if_requested(cid, reply)

    def _venue_refused(self, state: OrderState, reason: str) -> None:
        self.stats.rejected_by_venue += 1
        self._transition(state.intent.client_order_id, OrderStatus.REJECTED, reason=reason)
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
        self._transition(
            reply.client_order_id, reply.status, venue_order_id=reply.venue_order_id or None,
            filled_quantity=reply.filled_quantity, average_price=reply.average_price, reason=reply.message,
        )  # fmt: skip

    def _transition(self, cid: str, status: OrderStatus, **fields: object) -> None:
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
        self._forget_if_terminal(state)

    def _forget_if_terminal(self, state: OrderState) -> None:
        """A terminal order leaves this engine's maps (the ledger keeps it, by client and venue id):
        memory follows working orders, not history."""
        if state.status in TERMINAL:
            self._venue_ids.pop(state.venue_order_id, None)
            self._cancel_requested.discard(state.intent.client_order_id)

    async def _resolve(self, cid: str) -> bool:
        """Ask the venue about an order of unknown outcome; True once it is settled."""
        assert self.venue is not None
        try:
            reply = await self.venue.status(cid)
        except (VenueUnavailable, VenueTimeout) as err:
            log.warning("order_status_unavailable", client_order_id=cid, reason=str(err))
            return False
        if reply.known:
            self._apply(reply)
            self._cancel_if_requested(cid, reply)
            return True
        order = self.ledger.order(cid)
        if order is None or not order.working:
            return True
        if order.status is OrderStatus.CANCEL_PENDING:
            # Cancelled while its fate was unknown, and it never arrived: sending it now would
            # place an order the host (kill switch, cancel-on-disconnect) already took back.
            self._transition(cid, OrderStatus.CANCELLED, reason="cancelled before it reached the venue")
            return True
        log.info("order_resent_same_id", client_order_id=cid, reason="the venue never saw it")
        await self._send(order)
        return True

    async def _resolve_loop(self, cid: str) -> None:
        """Ask again every ``resolve_interval_s`` until the venue settles the order.

        The sleep paces requests to the venue, it does not wait on state here: what the venue
        knows reaches this process only as the answer to a request, so there is no event to wait on.
        """
        while not await self._resolve(cid):  # noqa: ASYNC110  (pacing requests: see above)
            await asyncio.sleep(self.resolve_interval_s)

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

    async def _cancel_at_venue(self, cid: str) -> bool:
        """One cancel request; True once the venue answered it (the reply is applied)."""
        assert self.venue is not None
        try:
            reply = await self.venue.cancel(cid)
        except (VenueUnavailable, VenueTimeout) as err:
            log.warning("cancel_failed", client_order_id=cid, reason=str(err))
            return False
        self.stats.cancels += 1
        self._apply(reply)
        return True

    async def _cancel_loop(self, cid: str) -> None:
        """Ask again until the venue answers (a cancel is idempotent); the order stays CANCEL_PENDING.

        Asking for its status instead would only learn that it still works, and drop the cancel.
        """
        while True:
            await asyncio.sleep(self.resolve_interval_s)
            if await self._cancel_at_venue(cid):
                return

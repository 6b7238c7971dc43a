"""The order path end to end: signal -> aggregation -> risk -> ledger journal -> venue -> fill -> ledger -> strategy.

Real parts only: a real SQLite ledger in the test's temp dir, the engine wired as the app wires it
(``tests.execution_harness``), an in-process ``PaperVenue`` whose fill sink is the engine, and for
the ambiguous and lost-reply cases a real ``PaperVenueServer`` on a free loopback port reached by a
real ``GrpcVenue``. The server's fill sink plays NATS ``trading.fills``: it hands each fill to the
engine's ``record_fill``. Paper tests run on a ``ManualClocks`` (P&L days, stale prices); gRPC tests
on the system clocks. Metrics are read from the exposition text of the engine's own registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from host.clock import SystemClock
from host.execution.book import Book
from host.execution.engine import utc_day
from host.execution.grpc_venue import GrpcVenue
from host.execution.matching import MatchingEngine
from host.execution.paper import PaperVenueServer, paper_id_prefix
from host.execution.venue import VenueTimeout, VenueUnavailable
from host.ledger import Ledger, LedgerError
from host.orders import OrderIntent, OrderState, OrderStatus
from host.supervisor.policy import BreakerState
from sdk.events import Cancel, Fill, OrderType, OrderUpdate, OrderUpdateStatus, Position, Side, Signal
from tests.execution_harness import (
    SYM,
    FillFeed,
    Host,
    assemble,
    grpc_config,
    journaled,
    paper_host,
    risk_config,
    running_paper_host,
)
from tests.helpers import ManualClocks, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

BUY, SELL = Side.BUY, Side.SELL
LIMIT = OrderType.LIMIT


def limit(side: Side, quantity: float, price: float, slot: str = "") -> Signal:
    return Signal(symbol=SYM, side=side, quantity=quantity, order_type=LIMIT, price=price, slot=slot)


def market(side: Side, quantity: float) -> Signal:
    return Signal(symbol=SYM, side=side, quantity=quantity)


def status(host: Host, order: OrderState) -> OrderStatus:
    state = host.ledger.order(order.intent.client_order_id)
    assert state is not None
    return state.status


def venue_status(host: Host, order: OrderState) -> OrderStatus:
    assert host.paper is not None
    state = host.paper.engine.status(order.intent.client_order_id)
    assert state is not None
    return state.status


async def settled(host: Host, count: int) -> list[OrderState]:
    """Wait until the ledger holds ``count`` orders, none of them still on its way (PENDING_NEW/SENT)."""
    path = host.ledger.path

    def done() -> bool:
        orders = journaled(path)
        return len(orders) == count and all(o.status not in (OrderStatus.PENDING_NEW, OrderStatus.SENT) for o in orders)

    await wait_until(done, timeout=5)
    return journaled(path)


@pytest.fixture
def clock() -> ManualClocks:
    return ManualClocks()


@pytest.fixture
async def host(tmp_path: Path, clock: ManualClocks) -> AsyncIterator[Host]:
    """An engine over a PaperVenue (no fees), running, with BTCUSDT quoted 99 / 101 (10 a side)."""
    async with running_paper_host(tmp_path / "ledger.db", clock) as built:
        yield built


class TestOrderPath:
    async def test_market_signal_becomes_one_journaled_order_sent_and_filled_at_the_touch(self, host: Host) -> None:
        """A market buy is journaled once, goes PENDING_NEW -> SENT -> FILLED, and fills 1 @ the ask 101."""
        host.signal("alpha", market(BUY, 1.0))
        [order] = await settled(host, 1)
        assert (order.status, order.filled_quantity, order.average_price) == (OrderStatus.FILLED, 1.0, 101.0)
        trail = [event.status for event in host.ledger.order_events(order.intent.client_order_id)]
        assert trail[:2] == [OrderStatus.PENDING_NEW, OrderStatus.SENT] and trail[-1] is OrderStatus.FILLED
        assert [o.intent.client_order_id for o in host.venue_orders()] == [order.intent.client_order_id]
        assert host.engine.stats.submitted == 1
        assert host.metric("orders_submitted_total", strategy="alpha") == 1.0

    async def test_fill_is_recorded_once_tied_to_its_order_and_delivered_fill_then_position(self, host: Host) -> None:
        """The fill (which reaches the engine before the submit's reply) is stored once, tied to its
        order in the audit trail, and the strategy gets the fill, then its new position, then the
        order's one update (filled; the reply that follows tells nothing more)."""
        host.signal("alpha", market(BUY, 1.0))
        [order] = await settled(host, 1)
        [fill] = host.ledger.fills()
        assert (fill.strategy, fill.quantity, fill.price) == ("alpha", 1.0, 101.0)
        fill_ids = [e.fill_id for e in host.ledger.order_events(order.intent.client_order_id) if e.fill_id]
        assert fill_ids == [fill.fill_id]
        delivered = host.delivered.of("alpha")
        assert [type(event) for event in delivered] == [Fill, Position, OrderUpdate]
        position, update = delivered[1:]
        assert isinstance(position, Position)
        assert (position.quantity, position.avg_entry_price, position.strategy) == (1.0, 101.0, "alpha")
        assert isinstance(update, OrderUpdate)
        assert (update.client_order_id, update.status) == (order.intent.client_order_id, OrderUpdateStatus.FILLED)
        assert (update.filled_quantity, update.remaining_quantity, update.average_price) == (1.0, 0.0, 101.0)

    async def test_duplicate_fill_is_applied_once_and_delivered_once(self, host: Host) -> None:
        """The same fill_id through record_fill again changes nothing and reaches the strategy once."""
        host.signal("alpha", market(BUY, 1.0))
        await settled(host, 1)
        [fill] = host.ledger.fills()
        before = list(host.delivered.events)
        assert host.engine.record_fill(fill) is False
        assert host.engine.stats.duplicate_fills == 1 and host.engine.stats.fills == 1
        assert host.delivered.events == before
        [position] = host.ledger.positions("alpha")
        assert position.quantity == 1.0 and host.book.positions("alpha") == {SYM: 1.0}

    async def test_observation_mode_sends_nothing_and_journals_nothing(
        self, tmp_path: Path, clock: ManualClocks
    ) -> None:
        """Given a venue, an observing engine still only counts what it would have sent."""
        observer = paper_host(tmp_path / "observe.db", clock, mode="observation")
        observer.tick(99.0, 101.0)
        observer.start()
        try:
            observer.signal("alpha", market(BUY, 1.0))
            observer.signal("beta", limit(SELL, 1.0, 102.0))
            await wait_until(lambda: observer.engine.stats.observed == 2, timeout=5)
            await observer.barrier()
            assert observer.venue_orders() == []
            assert journaled(observer.ledger.path) == []
            assert observer.engine.stats.submitted == 0
        finally:
            await observer.stop()
            observer.ledger.close()


class TestProfitAndLoss:
    async def test_positions_and_pnl_match_hand_computed_figures(self, tmp_path: Path, clock: ManualClocks) -> None:
        """Fee 0.1 %. Buy 3 @ limit 100 against 1 shown (partial), rest fills at 100 -> +3 @ 100;
        add 1 @ 102 -> +4 @ 100.5; sell 6 @ 104 flips to -2 @ 104, realizing 4 * 3.5 = 14.
        Fees 0.1 + 0.2 + 0.102 + 0.624 = 1.026, realized 12.974; marked at 100.5: unrealized +7."""
        host = paper_host(tmp_path / "pnl.db", clock, fee_rate=0.001)
        host.start()
        try:
            host.tick(99.0, 100.0, ask_size=1.0)
            host.signal("alpha", limit(BUY, 3.0, 100.0))
            [partial] = await settled(host, 1)
            assert (partial.status, partial.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 1.0)
            host.tick(98.5, 99.5, ask_size=5.0)  # crosses the resting 2 @ 100: filled at the limit
            await wait_until(lambda: status(host, partial) is OrderStatus.FILLED, timeout=5)
            host.tick(101.0, 102.0)
            host.signal("alpha", market(BUY, 1.0))
            await settled(host, 2)
            host.tick(104.0, 105.0)
            host.signal("alpha", market(SELL, 6.0))
            orders = await settled(host, 3)
            host.tick(100.0, 101.0)
        finally:
            await host.stop()
        assert [(o.status, o.filled_quantity, o.average_price) for o in orders] == [
            (OrderStatus.FILLED, 3.0, 100.0), (OrderStatus.FILLED, 1.0, 102.0), (OrderStatus.FILLED, 6.0, 104.0),
        ]  # fmt: skip
        assert [(f.side, f.quantity, f.price) for f in host.ledger.fills("alpha")] == [
            (BUY, 1.0, 100.0), (BUY, 2.0, 100.0), (BUY, 1.0, 102.0), (SELL, 6.0, 104.0),
        ]  # fmt: skip
        [position] = host.ledger.positions("alpha")
        assert position.quantity == -2.0 and position.avg_entry_price == 104.0
        assert position.realized_pnl == pytest.approx(12.974)
        assert host.ledger.daily_pnl(utc_day(clock.now_ns())) == pytest.approx(12.974)
        assert host.book.realized() == pytest.approx(12.974)
        assert host.book.unrealized("alpha") == pytest.approx(7.0)
        assert host.book.equity() == pytest.approx(100_000 + 12.974 + 7.0)
        last = [event for event in host.delivered.of("alpha") if isinstance(event, Position)][-1]
        assert isinstance(last, Position) and (last.quantity, last.avg_entry_price) == (-2.0, 104.0)
        assert last.realized_pnl == pytest.approx(12.974)
        host.ledger.close()


REJECTIONS = [
    # (risk overrides, what happens before the signal, the signal, the rule, the logged detail begins)
    pytest.param({"max_order_value": 500.0}, "", market(BUY, 6.0), "max_order_value",
                 "max_order_value: 600.00 > limit 500.00 (BTCUSDT buy 6 @ ref 100.00)", id="order_value_at_reference"),
    pytest.param({}, "", limit(BUY, 1.0, 110.0), "price_collar",
                 "price_collar: limit price 110.00 is 10.00% from ref 100.00", id="price_collar"),
    pytest.param({}, "stale", market(BUY, 1.0), "stale_reference_price",
                 "stale_reference_price: BTCUSDT reference is 6.000s old > limit 5s", id="stale_reference"),
    pytest.param({}, "", Signal(symbol="ETHUSDT", side=BUY, quantity=1.0), "no_reference_price",
                 "no_reference_price: none for ETHUSDT", id="missing_reference"),
    pytest.param({"max_position_size": 2.0}, "working", limit(BUY, 1.0, 96.0), "max_position_size",
                 "max_position_size: strategy alpha BTCUSDT position would be 2.5 > limit 2 "
                 "(position 0, working buys 1.5, this buy 1)",
                 id="position_counts_working_orders"),
]  # fmt: skip


class TestRiskRejections:
    @pytest.mark.parametrize(("limits", "setup", "signal", "rule", "detail"), REJECTIONS)
    async def test_rejection_is_counted_in_stats_metrics_and_log_and_nothing_is_sent(
        self, tmp_path: Path, clock: ManualClocks, limits: dict[str, float], setup: str, signal: Signal, rule: str,
        detail: str,
    ) -> None:  # fmt: skip
        """Each rule's rejection reaches stats.rejections, orders_rejected_total{reason},
        risk_violations_total{type,strategy} and an order_rejected log with the same reason; the
        order is neither journaled nor sent. A market order is valued at the reference (mid 100, not
        the ask: 6 x 100 > 500); working orders count as filled (1.5 resting + 1 > 2 with no
        position); a reference 6 s old (limit 5 s) or none at all fails closed."""
        host = paper_host(tmp_path / "risk.db", clock, risk=risk_config(**limits))
        host.tick(99.0, 101.0)
        host.start()
        try:
            if setup == "stale":
                clock.advance(6.0)
            if setup == "working":
                host.signal("alpha", limit(BUY, 1.5, 96.0))
                await settled(host, 1)
            before = journaled(host.ledger.path)
            with capture_logs() as logs:
                host.signal("alpha", signal)
                await wait_until(lambda: host.engine.stats.rejections.get("alpha", {}).get(rule) == 1, timeout=5)
            assert host.metric("orders_rejected_total", reason=rule) == 1.0
            assert host.metric("risk_violations_total", type=rule, strategy="alpha") == 1.0
            [logged] = [entry for entry in logs if entry["event"] == "order_rejected"]
            assert (logged["reason"], logged["strategy"]) == (rule, "alpha") and logged["detail"].startswith(detail)
            assert journaled(host.ledger.path) == before
            assert len(host.venue_orders()) == len(before)
        finally:
            await host.stop()
            host.ledger.close()


class TestSlotsAndCancels:
    async def test_a_new_quote_in_a_slot_cancels_the_old_one_at_the_venue_before_it_is_placed(self, host: Host) -> None:
        """The old bid is CANCELLED at the venue and in the ledger before the new one is journaled."""
        host.signal("alpha", limit(BUY, 1.0, 98.0, slot="bid"))
        await settled(host, 1)
        host.signal("alpha", limit(BUY, 1.0, 97.5, slot="bid"))
        old, new = await settled(host, 2)
        assert (venue_status(host, old), venue_status(host, new)) == (OrderStatus.CANCELLED, OrderStatus.ACCEPTED)
        assert (old.status, new.status) == (OrderStatus.CANCELLED, OrderStatus.ACCEPTED)
        cancelled = next(e.seq for e in host.ledger.order_events(old.intent.client_order_id)
                         if e.status is OrderStatus.CANCELLED)  # fmt: skip
        journal_entry = host.ledger.order_events(new.intent.client_order_id)[0].seq
        assert cancelled < journal_entry
        assert [o.intent.client_order_id for o in host.paper.engine.working(SYM)] == [new.intent.client_order_id]  # type: ignore[union-attr]
        assert host.book.slot_order("alpha", SYM, "bid") == host.book.order(new.intent.client_order_id)

    async def test_a_strategy_cancel_of_its_slot_cancels_the_working_order(self, host: Host) -> None:
        """Cancel(symbol, slot) from the strategy cancels that slot's order at the venue and in the ledger."""
        host.signal("alpha", limit(SELL, 1.0, 103.0, slot="ask"))
        [order] = await settled(host, 1)
        host.engine.signals("alpha", [], [Cancel(symbol=SYM, slot="ask")])
        await wait_until(lambda: status(host, order) is OrderStatus.CANCELLED, timeout=5)
        assert venue_status(host, order) is OrderStatus.CANCELLED
        assert host.book.slot_order("alpha", SYM, "ask") is None and host.engine.stats.cancels == 1

    def test_a_late_update_of_the_replaced_order_does_not_take_its_slot_back(self, tmp_path: Path) -> None:
        """While the old quote's cancel is pending its replacement holds the slot; a fill on the
        old one then must not hand the slot back (the next quote would cancel the wrong order)."""
        with Ledger.open(tmp_path / "slots.db") as ledger:
            book = Book.load(ledger, 100_000.0, utc_day(0))
            old, new = (OrderIntent.from_signal("alpha", limit(BUY, 2.0, 98.0, slot="bid"), 0, cid) for cid in "AB")
            book.order_changed(ledger.journal(old, 0))
            book.order_changed(ledger.transition("A", OrderStatus.ACCEPTED, 0, venue_order_id="V-A"))
            book.order_changed(ledger.transition("A", OrderStatus.CANCEL_PENDING, 0))
            book.order_changed(ledger.journal(new, 0))
            position = ledger.record_fill(
                Fill(
                    fill_id="V-A-1",
                    order_id="V-A",
                    symbol=SYM,
                    side=BUY,
                    price=98.0,
                    quantity=1.0,
                    timestamp_ns=1,
                    fee=0.0,
                    strategy="alpha",
                ),
                1,
            )
            assert position is not None
            late = ledger.order("A")
            assert late is not None and late.status is OrderStatus.CANCEL_PENDING and late.filled_quantity == 1.0
            book.order_changed(late)
            holder = book.slot_order("alpha", SYM, "bid")
            assert holder is not None and holder.intent.client_order_id == "B"
            assert Book.load(ledger, 100_000.0, utc_day(0)).slot_order("alpha", SYM, "bid") == holder

    async def test_strategy_down_cancels_its_working_orders_and_keeps_its_position(self, host: Host) -> None:
        """Cancel-on-disconnect: alpha's resting orders are cancelled, alpha's position stays, beta's order lives."""
        host.signal("alpha", market(BUY, 1.0))
        await settled(host, 1)
        host.signal("alpha", limit(BUY, 1.0, 97.0), limit(SELL, 1.0, 103.0, slot="ask"))
        host.signal("beta", limit(BUY, 1.0, 97.0))
        _, alpha_bid, alpha_ask, beta_bid = await settled(host, 4)
        host.engine.strategy_down("alpha", "runner lost")
        await wait_until(lambda: not host.book.strategy_orders("alpha"), timeout=5)
        assert [venue_status(host, o) for o in (alpha_bid, alpha_ask, beta_bid)] == [
            OrderStatus.CANCELLED, OrderStatus.CANCELLED, OrderStatus.ACCEPTED,
        ]  # fmt: skip
        assert [status(host, o) for o in (alpha_bid, alpha_ask)] == [OrderStatus.CANCELLED] * 2
        assert host.book.positions("alpha") == {SYM: 1.0}
        assert [p.quantity for p in host.ledger.positions("alpha")] == [1.0]

    async def test_reduce_only_on_disconnect_keeps_orders_and_allows_only_reducing(self, host: Host) -> None:
        """disconnectAction reduce_only: alpha's working order stays, a new buy is refused, a reducing
        sell passes; once a runner of alpha serves again (strategy_up) buys pass again."""
        host.engine.disconnect_action = "reduce_only"
        host.signal("alpha", market(BUY, 2.0))
        await settled(host, 1)
        host.signal("alpha", limit(BUY, 1.0, 97.0))
        _, resting = await settled(host, 2)
        host.engine.strategy_down("alpha", "runner lost")
        host.signal("alpha", market(BUY, 1.0))
        await wait_until(lambda: host.engine.stats.rejections.get("alpha", {}).get("kill_switch") == 1, timeout=5)
        assert status(host, resting) is OrderStatus.ACCEPTED
        host.signal("alpha", market(SELL, 1.0))
        orders = await settled(host, 3)
        assert (orders[-1].intent.side, orders[-1].status) == (SELL, OrderStatus.FILLED)
        host.engine.strategy_up("alpha")
        host.signal("alpha", market(BUY, 0.5))
        orders = await settled(host, 4)
        assert (orders[-1].intent.side, orders[-1].status) == (BUY, OrderStatus.FILLED)


class TestKillSwitch:
    @pytest.mark.parametrize("scope", [None, "alpha"], ids=["global", "per_strategy"])
    async def test_kill_switch_cancels_working_orders_refuses_new_ones_and_lets_reduce_only_through(
        self, host: Host, scope: str | None
    ) -> None:
        """Engaged (globally or for alpha): the covered working orders are cancelled, alpha's new buy
        is refused (kill_switch), alpha's sell that only shrinks its long passes and fills. A per
        strategy switch leaves beta's order and beta's new orders alone."""
        host.signal("alpha", market(BUY, 1.0))
        await settled(host, 1)
        host.signal("alpha", limit(BUY, 1.0, 97.0))
        host.signal("beta", limit(BUY, 1.0, 97.0))
        _, alpha_bid, beta_bid = await settled(host, 3)
        host.engine.engage_kill_switch(scope)
        expected = OrderStatus.CANCELLED if scope is None else OrderStatus.ACCEPTED
        await wait_until(lambda: venue_status(host, alpha_bid) is OrderStatus.CANCELLED, timeout=5)
        await wait_until(lambda: status(host, alpha_bid) is OrderStatus.CANCELLED, timeout=5)
        assert venue_status(host, beta_bid) is expected and status(host, beta_bid) is expected
        host.signal("alpha", market(BUY, 1.0))
        await wait_until(lambda: host.engine.stats.rejections.get("alpha", {}).get("kill_switch") == 1, timeout=5)
        assert host.metric("risk_violations_total", type="kill_switch", strategy="alpha") == 1.0
        host.signal("alpha", market(SELL, 1.0))
        orders = await settled(host, 4)
        assert (orders[-1].intent.side, orders[-1].status, orders[-1].average_price) == (SELL, OrderStatus.FILLED, 99.0)
        assert host.book.positions("alpha") == {}
        host.signal("beta", market(BUY, 1.0))
        await host.barrier()
        assert len(journaled(host.ledger.path)) == (4 if scope is None else 5)


class TestLedgerFailure:
    async def test_a_full_ledger_rejects_new_orders_but_cancels_still_reach_the_venue(self, host: Host) -> None:
        """With the disk full (max_page_count), a new order is refused as ledger_unavailable, never
        sent (fail closed), and not charged to risk; a Cancel still cancels the working order at the venue."""
        host.signal("alpha", limit(BUY, 1.0, 97.0, slot="bid"))
        [working] = await settled(host, 1)
        fill_the_disk(host.ledger)
        host.signal("alpha", market(BUY, 1.0))
        await wait_until(lambda: host.engine.stats.rejections.get("alpha", {}).get("ledger_unavailable") == 1)
        assert host.metric("orders_rejected_total", reason="ledger_unavailable") == 1.0
        assert host.metric("risk_violations_total", type="ledger_unavailable", strategy="alpha") == 0.0
        assert len(host.venue_orders()) == 1 and not host.ledger.healthy
        host.engine.signals("alpha", [], [Cancel(symbol=SYM, slot="bid")])
        await wait_until(lambda: venue_status(host, working) is OrderStatus.CANCELLED, timeout=5)


def fill_the_disk(ledger: Ledger) -> None:
    """Cap the file at its size, then journal orders shaped like the engine's until one no longer fits."""
    db = ledger._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    for n in range(10_000):
        filler = OrderIntent.from_signal("alpha", Signal(symbol=SYM, side=BUY, quantity=1.0), 0, f"{n:032x}")
        try:
            ledger.journal(filler, 0)
        except LedgerError:
            return
    raise AssertionError("the ledger never filled up")


AGGREGATION = [
    # (mode, batch of (strategy, side, quantity), orders expected at the venue)
    pytest.param("majority", [("alpha", BUY, 1.0), ("beta", SELL, 1.0)], [], id="majority_tie_sends_nothing"),
    pytest.param("unanimous", [("alpha", BUY, 1.0), ("beta", SELL, 1.0)], [], id="unanimous_split_sends_nothing"),
    pytest.param("majority", [("alpha", BUY, 1.0), ("beta", SELL, 1.0), ("gamma", BUY, 2.0)], [("alpha", BUY, 1.0)],
                 id="majority_sends_the_winning_lead_unsummed"),
    pytest.param("unanimous", [("alpha", BUY, 1.0), ("beta", BUY, 2.0)], [("alpha", BUY, 1.0)],
                 id="unanimous_agreement_sends_the_lead"),
    pytest.param("priority", [("alpha", BUY, 1.0), ("beta", SELL, 1.0)], [("alpha", BUY, 1.0), ("beta", SELL, 1.0)],
                 id="priority_sends_both_unnetted"),
]  # fmt: skip


class TestAggregation:
    @pytest.mark.parametrize(("mode", "batch", "expected"), AGGREGATION)
    async def test_one_batch_of_opposite_signals_becomes_what_the_mode_says(
        self, tmp_path: Path, clock: ManualClocks, mode: str, batch: list[tuple[str, Side, float]],
        expected: list[tuple[str, Side, float]],
    ) -> None:  # fmt: skip
        """Signals of several strategies on one symbol in one batch: majority sends the lead of the
        side with more strategies (a tie sends nothing), unanimous sends only on agreement, priority
        sends each strategy's own; every order placed belongs to the strategy that sent it."""
        host = paper_host(tmp_path / "aggregate.db", clock, aggregation=mode)
        host.tick(99.0, 101.0)
        for strategy, side, quantity in batch:  # queued before the run loop takes a batch
            host.signal(strategy, market(side, quantity))
        host.start()
        try:
            await host.barrier()
            orders = await settled(host, len(expected))
        finally:
            await host.stop()
            host.ledger.close()
        placed = [(o.intent.strategy, o.intent.side, o.intent.quantity) for o in host.venue_orders()]
        assert placed == expected
        assert [(o.intent.strategy, o.status) for o in orders] == [(s, OrderStatus.FILLED) for s, _, _ in expected]


# --- over gRPC: GrpcVenue -> PaperVenueServer -----------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[PaperVenueServer, FillFeed]]:
    """A PaperVenueServer (fee 0.1 %) quoting 99 / 101 that loses the first reply to ids starting 'lost'."""
    feed = FillFeed()
    server = PaperVenueServer(
        MatchingEngine(fee_rate=0.001, clock=SystemClock(), id_prefix=paper_id_prefix()),
        fill_sink=feed, drop_reply_for={"lost-market", "lost-limit"},
    )  # fmt: skip
    await server.start()
    try:
        yield server, feed
    finally:
        await server.stop()


@pytest.fixture
async def live(tmp_path: Path, served: tuple[PaperVenueServer, FillFeed]) -> AsyncIterator[Host]:
    server, feed = served
    clock = SystemClock()
    venue = GrpcVenue(grpc_config(server.address), clock)
    built = assemble(Ledger.open(tmp_path / "live.db"), venue, clock=clock, mode="live")
    feed.target = built.engine.record_fill
    server.on_market(built.tick(99.0, 101.0))
    built.start()
    try:
        yield built
    finally:
        await built.stop()
        await venue.close()
        built.ledger.close()


def at_venue(server: PaperVenueServer, client_order_id: str) -> list[OrderState]:
    return [o for o in server.engine.orders() if o.intent.client_order_id == client_order_id]


class TestAmbiguousSubmit:
    @pytest.mark.parametrize(("cid", "order_type", "final"), [
        ("lost-market", OrderType.MARKET, OrderStatus.FILLED), ("lost-limit", LIMIT, OrderStatus.ACCEPTED),
    ], ids=["market_filled", "limit_resting"])  # fmt: skip
    async def test_lost_reply_keeps_the_order_sent_until_status_settles_it_with_one_order_at_the_venue(
        self, live: Host, served: tuple[PaperVenueServer, FillFeed], cid: str, order_type: OrderType,
        final: OrderStatus,
    ) -> None:  # fmt: skip
        """The venue executes the order and its reply is lost (DEADLINE_EXCEEDED): the engine keeps it
        SENT, the resolver learns its state through GetOrderStatus, and the venue holds exactly one
        order for that id, before and after recovery (no resend under any id). The fill feed lags
        here: its fill, delivered after the resolution, lands on the order."""
        server, feed = served
        feed.target = None
        price = 100.0 if order_type is LIMIT else None
        signal = Signal(symbol=SYM, side=BUY, quantity=1.0, order_type=order_type, price=price)
        state = live.ledger.journal(OrderIntent.from_signal("alpha", signal, live.clock.now_ns(), cid), 0)
        live.book.order_changed(state)
        await live.engine._send(state)
        order = live.ledger.order(cid)
        assert order is not None and order.status is OrderStatus.SENT and live.engine.stats.ambiguous == 1
        await wait_until(lambda: status(live, state) is final, timeout=5)
        assert len(at_venue(server, cid)) == 1
        assert (server.stats.submitted, server.stats.duplicates, server.stats.dropped_replies) == (1, 0, 1)
        settled_order = live.ledger.order(cid)
        assert settled_order is not None and settled_order.venue_order_id == at_venue(server, cid)[0].venue_order_id
        for fill in feed.fills:  # within the engine's fill grace: nothing is recovered in their place
            live.engine.record_fill(fill)
        await wait_until(lambda: not live.engine._tasks, timeout=5)
        if final is OrderStatus.FILLED:
            [position] = live.ledger.positions("alpha")
            assert (position.quantity, position.avg_entry_price) == (1.0, 101.0)
            [fill] = live.ledger.fills()
            assert [e.fill_id for e in live.ledger.order_events(cid) if e.fill_id] == [fill.fill_id]


class TestReconcile:
    async def test_an_order_marked_sent_that_never_reached_the_venue_is_resent_under_its_own_id(
        self, live: Host, served: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """Reconcile asks the venue about a SENT order; "unknown" proves it never arrived, so it is
        sent again under the same client order id, and placed once."""
        server, _ = served
        intent = OrderIntent.from_signal("alpha", market(BUY, 1.0), live.clock.now_ns(), "never-arrived")
        live.ledger.journal(intent, 0)
        live.ledger.transition("never-arrived", OrderStatus.SENT, 0)
        assert await live.engine.reconcile() == 1
        order = live.ledger.order("never-arrived")
        assert order is not None and order.status is OrderStatus.FILLED
        assert len(at_venue(server, "never-arrived")) == 1 and server.stats.submitted == 1

    async def test_an_order_cancelled_before_it_ever_reached_the_venue_is_not_sent_by_reconcile(
        self, live: Host, served: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """An order the ledger holds as SENT that the venue never saw is cancelled (strategy down)
        before reconcile: its cancel finds nothing, reconcile learns "unknown", and it is CANCELLED,
        not sent, so the venue never places it."""
        server, _ = served
        intent = OrderIntent.from_signal("alpha", limit(BUY, 1.0, 97.0), live.clock.now_ns(), "never-arrived")
        live.book.order_changed(live.ledger.journal(intent, 0))
        live.book.order_changed(live.ledger.transition("never-arrived", OrderStatus.SENT, 0))
        live.engine.strategy_down("alpha", "runner lost")
        await wait_until(lambda: live.engine.stats.cancels == 1, timeout=5)
        await live.engine.reconcile()
        order = live.ledger.order("never-arrived")
        assert order is not None and order.status is OrderStatus.CANCELLED
        assert at_venue(server, "never-arrived") == [] and server.stats.submitted == 0

    async def test_an_order_reconcile_could_not_ask_about_is_settled_once_the_venue_answers(
        self, live: Host, served: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """Reconcile with the venue down leaves a SENT order SENT and keeps asking; once the venue
        is back, the order it never saw is sent under its own id and fills, once."""
        server, feed = served
        intent = OrderIntent.from_signal("alpha", market(BUY, 1.0), live.clock.now_ns(), "asked-later")
        live.ledger.journal(intent, 0)
        live.ledger.transition("asked-later", OrderStatus.SENT, 0)
        await server.stop()
        assert await live.engine.reconcile() == 1
        assert status(live, OrderState(intent)) is OrderStatus.SENT
        again = PaperVenueServer(server.engine, address=server.address, fill_sink=feed)
        await again.start()
        try:
            await wait_until(lambda: status(live, OrderState(intent)) is OrderStatus.FILLED, timeout=5)
            assert len(at_venue(server, "asked-later")) == 1 and again.stats.submitted == 1
            assert [p.quantity for p in live.ledger.positions("alpha")] == [1.0]
        finally:
            await again.stop()


class TestCancelsOverGrpc:
    async def test_a_cancel_reply_without_quantities_keeps_the_fills_the_ledger_holds(
        self, live: Host, served: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """A partly filled order cancelled over gRPC (CancelOrderResponse carries no quantities) stays
        CANCELLED with the filled quantity and price its fills gave it."""
        server, _ = served
        live.signal("alpha", limit(BUY, 3.0, 100.0, slot="bid"))
        [order] = await settled(live, 1)
        server.on_market(live.tick(99.0, 100.0, ask_size=1.0))
        await wait_until(lambda: status(live, order) is OrderStatus.PARTIALLY_FILLED, timeout=5)
        live.engine.signals("alpha", [], [Cancel(symbol=SYM, slot="bid")])
        await wait_until(lambda: status(live, order) is OrderStatus.CANCELLED, timeout=5)
        final = live.ledger.order(order.intent.client_order_id)
        assert final is not None and (final.filled_quantity, final.average_price) == (1.0, 100.0)

    async def test_a_cancel_the_venue_never_answered_is_sent_again_once_it_is_back(
        self, live: Host, served: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """Kill switch while the venue is unreachable: the cancel fails, the order stays
        CANCEL_PENDING (still working for risk), and once the venue is back the cancel is sent
        again and lands; the order is not taken back to ACCEPTED by a status query."""
        server, feed = served
        live.signal("alpha", limit(BUY, 1.0, 97.0))
        [order] = await settled(live, 1)
        await server.stop()
        live.engine.engage_kill_switch()
        venue = live.engine.venue
        assert isinstance(venue, GrpcVenue)
        await wait_until(lambda: venue.stats.unavailable + venue.stats.breaker_rejections >= 2, timeout=5)
        assert status(live, order) is OrderStatus.CANCEL_PENDING
        again = PaperVenueServer(server.engine, address=server.address, fill_sink=feed)
        await again.start()
        try:
            await wait_until(lambda: status(live, order) is OrderStatus.CANCELLED, timeout=5)
            at = server.engine.status(order.intent.client_order_id)
            assert at is not None and at.status is OrderStatus.CANCELLED
            assert not live.book.strategy_orders("alpha")
        finally:
            await again.stop()


async def answers(venue: Any) -> bool:
    """True once the venue answers a status query (its channel reconnected, its breaker closed)."""
    try:
        await venue.status("anyone-there")
    except (VenueUnavailable, VenueTimeout):
        return False
    return True


class TestVenueComesBack:
    async def test_an_order_counts_as_sent_only_once_the_venue_took_it(
        self, live: Host, served: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """Refused as unreachable: rejected, not in risk's ``sent`` nor ``orders_submitted``; taken: counted once."""
        server, feed = served
        await server.stop()
        live.signal("alpha", limit(BUY, 1.0, 97.0))
        await wait_until(lambda: live.engine.stats.rejected_by_venue == 1, timeout=5)
        assert (live.risk.status().sent, live.engine.stats.submitted) == (0, 0)
        again = PaperVenueServer(server.engine, address=server.address, fill_sink=feed)
        await again.start()
        try:
            await wait_until(lambda: answers(live.engine.venue), timeout=5)
            live.signal("alpha", limit(BUY, 1.0, 97.0))
            await wait_until(lambda: live.engine.stats.submitted == 1, timeout=5)
            assert live.risk.status().sent == 1
        finally:
            await again.stop()

    async def test_a_venue_back_with_its_breaker_open_is_probed_closed_and_reconciled(
        self, tmp_path: Path, served: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """Breaker reset 30 s: the venue restarts empty after the breaker opened; the first probe on the
        reconnected channel closes it (well before 30 s), and the engine reconciles while running: the
        accepted order the new venue never saw is closed as EXPIRED, not revived."""
        server, feed = served
        clock = SystemClock()
        venue = GrpcVenue(replace(grpc_config(server.address), breaker_reset=30.0, breaker_failures=2), clock)
        built = assemble(Ledger.open(tmp_path / "ledger.sqlite"), venue, clock=clock, mode="live")
        feed.target = built.engine.record_fill
        server.on_market(built.tick(99.0, 101.0))
        built.start()
        try:
            built.signal("alpha", limit(BUY, 1.0, 97.0))
            [order] = await settled(built, 1)
            await server.stop()
            for _ in range(2):
                with contextlib.suppress(VenueUnavailable, VenueTimeout):
                    await venue.status("probe-me")
            assert venue.breaker.state is BreakerState.OPEN
            fresh = PaperVenueServer(
                MatchingEngine(clock=SystemClock(), id_prefix=paper_id_prefix()), address=server.address, fill_sink=feed
            )
            started = time.monotonic()
            await fresh.start()
            try:
                await wait_until(lambda: status(built, order) is OrderStatus.EXPIRED, timeout=10)
                assert time.monotonic() - started < 10 and venue.breaker.state is BreakerState.CLOSED
                report = built.engine.last_reconcile
                assert report is not None and (report.trigger, report.closed) == ("venue_reconnected", 1)
                assert fresh.engine.status(order.intent.client_order_id) is None
            finally:
                await fresh.stop()
        finally:
            await built.stop()
            await venue.close()
            built.ledger.close()


class _HeldSubmit:
    """A venue in front of the paper venue whose submits wait for ``release`` before they reach it:
    what a slow network does to an order while its cancel overtakes it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.release = asyncio.Event()

    async def submit(self, intent: Any) -> Any:
        await self.release.wait()
        return await self.inner.submit(intent)

    async def cancel(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> Any:
        return await self.inner.cancel(client_order_id, venue_order_id, symbol)

    async def status(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> Any:
        return await self.inner.status(client_order_id, venue_order_id, symbol)

    async def close(self) -> None:
        await self.inner.close()


class TestCancelOvertakesSubmit:
    async def test_a_cancel_that_reaches_the_venue_first_is_sent_again(self, host: Host) -> None:
        """Cancel-on-disconnect while the order is still on its way: the venue does not know it yet, then
        accepts it; the engine cancels it again under the same id, so nothing is left working."""
        held = _HeldSubmit(host.engine.venue)
        host.engine.venue = held  # type: ignore[assignment]
        host.signal("alpha", limit(BUY, 1.0, 97.0))
        await wait_until(lambda: bool(host.book.strategy_orders("alpha")), timeout=5)
        (order,) = host.book.strategy_orders("alpha")
        await wait_until(lambda: status(host, order) is OrderStatus.SENT, timeout=5)
        host.engine.strategy_down("alpha", "runner lost")
        await wait_until(lambda: status(host, order) is OrderStatus.CANCEL_PENDING, timeout=5)
        held.release.set()
        await wait_until(lambda: status(host, order) is OrderStatus.CANCELLED, timeout=5)
        assert venue_status(host, order) is OrderStatus.CANCELLED


class TestReconcileUnsent:
    @pytest.mark.parametrize(("age_s", "killed", "expected"), [
        (5.0, False, OrderStatus.FILLED),
        (120.0, False, OrderStatus.EXPIRED),
        (5.0, True, OrderStatus.EXPIRED),
    ])  # fmt: skip
    async def test_a_journaled_order_is_sent_after_a_restart_only_while_fresh(
        self, host: Host, clock: ManualClocks, age_s: float, killed: bool, expected: OrderStatus
    ) -> None:
        """An order journaled but never sent is sent (same id) by reconcile when fresh; when older than a
        minute, or its strategy is killed, it expires unsent and the venue never sees it."""

        intent = OrderIntent.from_signal("alpha", market(BUY, 1.0), clock.now_ns() - round(age_s * 1e9), "late-1")
        host.ledger.journal(intent, intent.created_ns)
        if killed:
            host.engine.risk.engage("alpha")
        await host.engine.reconcile()
        await wait_until(lambda: status(host, host.ledger.order("late-1")) is expected, timeout=5)  # type: ignore[arg-type]
        assert (host.paper.engine.status("late-1") is None) == (expected is OrderStatus.EXPIRED)  # type: ignore[union-attr]


class _HeldCancel(_HeldSubmit):
    """A venue whose cancels wait for ``release`` (``reached`` is set once one is waiting)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.reached = asyncio.Event()

    async def submit(self, intent: Any) -> Any:
        return await self.inner.submit(intent)

    async def cancel(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> Any:
        self.reached.set()
        await self.release.wait()
        return await self.inner.cancel(client_order_id, venue_order_id, symbol)


class TestDrain:
    async def test_drain_returns_once_every_queued_signal_is_taken(self, host: Host) -> None:
        """Signals handed in just before drain: it returns with the queue empty and all of them placed."""
        for _ in range(5):
            host.signal("alpha", market(BUY, 0.1))
        await host.engine.drain(timeout_s=5)
        assert len(host.engine.queue) == 0
        await settled(host, 5)

    async def test_drain_waits_for_a_cancel_in_flight_and_returns_when_it_ends(self, host: Host) -> None:
        """A cancel the venue has not answered keeps drain waiting; its answer ends the wait at once."""
        held = _HeldCancel(host.engine.venue)
        host.engine.venue = held  # type: ignore[assignment]
        host.signal("alpha", limit(BUY, 1.0, 97.0))
        [order] = await settled(host, 1)
        host.engine.engage_kill_switch("alpha")
        async with asyncio.timeout(5):
            await held.reached.wait()
        draining = asyncio.ensure_future(host.engine.drain(timeout_s=10))
        done, _ = await asyncio.wait({draining}, timeout=0.2)
        assert not done, "drain returned while a cancel was in flight"
        held.release.set()
        async with asyncio.timeout(5):
            await draining
        assert not host.engine._tasks
        assert status(host, order) is OrderStatus.CANCELLED

    async def test_drain_gives_up_after_its_timeout(self, host: Host) -> None:
        """A cancel that is never answered holds drain only for ``timeout_s``; the cancel stays in flight."""
        held = _HeldCancel(host.engine.venue)
        host.engine.venue = held  # type: ignore[assignment]
        host.signal("alpha", limit(BUY, 1.0, 97.0))
        [order] = await settled(host, 1)
        host.engine.engage_kill_switch("alpha")
        async with asyncio.timeout(5):
            await held.reached.wait()
        async with asyncio.timeout(5):
            await host.engine.drain(timeout_s=0.2)
        assert host.engine._tasks
        assert status(host, order) is OrderStatus.CANCEL_PENDING
        held.release.set()

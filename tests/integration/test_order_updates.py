"""Order updates: what the execution engine tells a strategy about every signal it sent, and when.

Real parts, as in test_execution: the app's order path (``tests.execution_harness``) over a real
SQLite ledger and an in-process ``PaperVenue`` whose fills come back through ``record_fill`` (a
restarted venue is a fresh matching engine in its place; lost fill reports go to a list instead);
for the venue being down, a real ``GrpcVenue`` pointed at a loopback port nobody listens on. What the
engine hands each strategy is recorded in order (``Delivered``), so the tests read the exact
sequence a runner would get: which updates, with what, and where they fall among fills and
positions.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.clock import SystemClock
from host.execution.grpc_venue import GrpcVenue
from host.execution.matching import MatchingEngine
from host.execution.paper import paper_id_prefix
from host.ledger import Ledger
from host.orders import OrderIntent, OrderStatus
from sdk.events import (
    Cancel,
    Fill,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    Side,
    Signal,
    TimeInForce,
)
from tests.execution_harness import (
    SYM,
    Host,
    assemble,
    grpc_config,
    journaled,
    paper_host,
    risk_config,
    running_paper_host,
)
from tests.helpers import ManualClocks, wait_until
from tests.integration.test_execution import fill_the_disk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

BUY, SELL = Side.BUY, Side.SELL
ACCEPTED, PARTIAL, FILLED = OrderUpdateStatus.ACCEPTED, OrderUpdateStatus.PARTIALLY_FILLED, OrderUpdateStatus.FILLED
CANCELLED, EXPIRED, REJECTED = OrderUpdateStatus.CANCELLED, OrderUpdateStatus.EXPIRED, OrderUpdateStatus.REJECTED


def limit(
    side: Side, quantity: float, price: float, cid: str, slot: str = "", tif: TimeInForce = TimeInForce.GTC
) -> Signal:
    return Signal(
        symbol=SYM,
        side=side,
        quantity=quantity,
        order_type=OrderType.LIMIT,
        price=price,
        time_in_force=tif,
        slot=slot,
        client_order_id=cid,
    )


def market(side: Side, quantity: float, cid: str = "") -> Signal:
    return Signal(symbol=SYM, side=side, quantity=quantity, client_order_id=cid)


def told(host: Host, strategy: str = "alpha") -> list[tuple[str, OrderUpdateStatus, float, float, str]]:
    """(client order id, status, filled, remaining, rule) of every update the strategy was handed."""
    return [
        (u.client_order_id, u.status, u.filled_quantity, u.remaining_quantity, u.rule)
        for u in host.delivered.updates(strategy)
    ]


async def hears(host: Host, count: int, strategy: str = "alpha") -> list[OrderUpdate]:
    await wait_until(lambda: len(host.delivered.updates(strategy)) >= count, timeout=5)
    await host.barrier()  # anything that would have followed has been decided
    return host.delivered.updates(strategy)


@pytest.fixture
def clock() -> ManualClocks:
    return ManualClocks()


@pytest.fixture
async def host(tmp_path: Path, clock: ManualClocks) -> AsyncIterator[Host]:
    """An engine over a PaperVenue, running, with BTCUSDT quoted 99 / 101, 10 a side."""
    async with running_paper_host(tmp_path / "ledger.db", clock) as built:
        yield built


class TestAnOrdersLife:
    async def test_the_signals_id_names_the_order_in_the_ledger_at_the_venue_and_in_its_updates(
        self, host: Host
    ) -> None:
        """The id the strategy's emit gave the signal is the order's client order id everywhere."""
        host.signal("alpha", limit(BUY, 1.0, 97.0, "bid-7"))
        await hears(host, 1)
        assert [o.intent.client_order_id for o in journaled(host.ledger.path)] == ["bid-7"]
        assert [o.intent.client_order_id for o in host.venue_orders()] == ["bid-7"]
        assert told(host) == [("bid-7", ACCEPTED, 0.0, 1.0, "")]

    async def test_a_resting_order_is_accepted_then_cancelled_and_nothing_in_between(self, host: Host) -> None:
        """Accepted once the venue acknowledges it, cancelled once the venue confirms the strategy's
        cancel; the host's own steps (pending_new, sent, cancel_pending) are never told."""
        host.signal("alpha", limit(BUY, 1.0, 97.0, "q-1", slot="bid"))
        await hears(host, 1)
        host.engine.signals("alpha", [], [Cancel(symbol=SYM, slot="bid")])
        updates = await hears(host, 2)
        assert told(host) == [("q-1", ACCEPTED, 0.0, 1.0, ""), ("q-1", CANCELLED, 0.0, 0.0, "")]
        assert updates[1].reason == "cancelled by strategy (slot 'bid')"
        assert (updates[1].slot, updates[1].side, updates[1].quantity) == ("bid", BUY, 1.0)

    async def test_each_fill_is_followed_by_exactly_one_update_after_its_fill_and_position(
        self, host: Host, clock: ManualClocks
    ) -> None:
        """Buy 3 @ 100 against 1 shown: the partial fill at arrival, then the rest on the next quote.
        Each fill reaches the strategy as fill, position, update; the venue's replies add nothing."""
        host.tick(99.0, 100.0, ask_size=1.0)
        host.signal("alpha", limit(BUY, 3.0, 100.0, "big-1"))
        await hears(host, 1)
        clock.advance(1.0)
        host.tick(98.5, 99.5, ask_size=5.0)
        await hears(host, 2)
        kinds = [type(event) for event in host.delivered.of("alpha")]
        assert kinds == [Fill, Position, OrderUpdate, Fill, Position, OrderUpdate]
        assert told(host) == [("big-1", PARTIAL, 1.0, 2.0, ""), ("big-1", FILLED, 3.0, 0.0, "")]
        assert host.delivered.updates("alpha")[-1].average_price == 100.0

    async def test_a_market_order_filled_at_once_is_told_filled_only(self, host: Host) -> None:
        """An order that fills on arrival goes straight to filled: no accepted before it."""
        host.signal("alpha", market(BUY, 1.0, "m-1"))
        updates = await hears(host, 1)
        assert told(host) == [("m-1", FILLED, 1.0, 0.0, "")]
        assert updates[0].average_price == 101.0

    async def test_a_replaced_quote_is_told_cancelled_before_its_replacement_is_accepted(self, host: Host) -> None:
        """A new signal in a slot cancels the old order first; the strategy hears it in that order."""
        host.signal("alpha", limit(BUY, 1.0, 98.0, "bid-1", slot="bid"))
        await hears(host, 1)
        host.signal("alpha", limit(BUY, 1.0, 97.5, "bid-2", slot="bid"))
        updates = await hears(host, 3)
        assert [(u.client_order_id, u.status) for u in updates] == [
            ("bid-1", ACCEPTED), ("bid-1", CANCELLED), ("bid-2", ACCEPTED),
        ]  # fmt: skip
        assert updates[1].reason == "replaced in slot 'bid'"

    async def test_an_order_the_venue_ends_unfilled_is_told_with_the_venues_reason(self, host: Host) -> None:
        """An IOC buy below the ask finds nothing: the venue cancels it, and says why."""
        host.signal("alpha", limit(BUY, 1.0, 100.0, "ioc-1", tif=TimeInForce.IOC))
        [update] = await hears(host, 1)
        assert (update.status, update.filled_quantity, update.rule) == (CANCELLED, 0.0, "")
        assert update.reason

    async def test_a_strategy_going_down_hears_of_its_orders_cancelled(self, host: Host) -> None:
        """Cancel-on-disconnect is told like any cancel (a replacement runner gets it)."""
        host.signal("alpha", limit(SELL, 1.0, 103.0, "ask-1", slot="ask"))
        await hears(host, 1)
        host.engine.strategy_down("alpha", "runner lost")
        updates = await hears(host, 2)
        assert (updates[1].status, updates[1].reason) == (CANCELLED, "strategy down: runner lost")

    async def test_an_order_too_old_to_send_after_a_restart_is_told_expired(
        self, host: Host, clock: ManualClocks
    ) -> None:
        """Journaled but never sent, older than a minute at reconcile: expired, with why."""
        intent = OrderIntent.from_signal("alpha", market(BUY, 1.0), clock.now_ns() - 120 * 10**9, "late-1")
        host.ledger.journal(intent, intent.created_ns)
        await host.engine.reconcile()
        [update] = await hears(host, 1)
        assert (update.client_order_id, update.status, update.remaining_quantity) == ("late-1", EXPIRED, 0.0)
        assert update.reason == "not sent before a restart (120 s old)"


class TestRejections:
    async def test_a_risk_rejection_names_the_rule_and_its_message(self, tmp_path: Path, clock: ManualClocks) -> None:
        """Refused by risk: one update, rejected, the rule in ``rule`` and the rule's message in ``reason``."""
        host = paper_host(tmp_path / "risk.db", clock, risk=risk_config(max_order_value=500.0))
        host.tick(99.0, 101.0)
        host.start()
        try:
            host.signal("alpha", market(BUY, 6.0, "too-big"))
            [update] = await hears(host, 1)
        finally:
            await host.stop()
            host.ledger.close()
        assert (update.client_order_id, update.status, update.rule) == ("too-big", REJECTED, "max_order_value")
        assert update.reason == "max_order_value: 600.00 > limit 500.00 (BTCUSDT buy 6 @ ref 100.00)"
        assert (update.quantity, update.filled_quantity, update.remaining_quantity) == (6.0, 0.0, 0.0)
        assert host.delivered.of("alpha") == [update]

    async def test_an_id_used_before_is_rejected_and_the_first_order_is_untouched(self, host: Host) -> None:
        """A strategy that names two orders alike gets the second refused; the first works on."""
        host.signal("alpha", limit(BUY, 1.0, 97.0, "same"))
        await hears(host, 1)
        host.signal("alpha", limit(BUY, 1.0, 96.0, "same"))
        await hears(host, 2)
        assert told(host) == [
            ("same", ACCEPTED, 0.0, 1.0, ""),
            ("same", REJECTED, 0.0, 0.0, "duplicate_client_order_id"),
        ]
        [order] = journaled(host.ledger.path)
        assert (order.intent.price, order.status) == (97.0, OrderStatus.ACCEPTED)

    async def test_a_full_ledger_is_told_as_ledger_unavailable(self, host: Host) -> None:
        """An order that cannot be journaled is never sent, and its strategy hears why."""
        fill_the_disk(host.ledger)
        host.signal("alpha", market(BUY, 1.0, "no-room"))
        [update] = await hears(host, 1)
        assert (update.client_order_id, update.status, update.rule) == ("no-room", REJECTED, "ledger_unavailable")
        assert update.reason

    async def test_observation_mode_answers_each_approved_signal(self, tmp_path: Path, clock: ManualClocks) -> None:
        """Nothing is sent in observation mode, so each order risk approved is told rejected: observation."""
        host = paper_host(tmp_path / "observe.db", clock, mode="observation")
        host.tick(99.0, 101.0)
        host.start()
        try:
            host.signal("alpha", market(BUY, 1.0, "seen"))
            [update] = await hears(host, 1)
        finally:
            await host.stop()
            host.ledger.close()
        assert (update.status, update.rule) == (REJECTED, "observation")

    async def test_a_signal_the_full_queue_drops_is_answered_at_once(self, tmp_path: Path, clock: ManualClocks) -> None:
        """The signal queue holds 256 here; the 257th signal is dropped, and its strategy told so."""
        host = paper_host(tmp_path / "queue.db", clock)  # not started: nothing takes from the queue
        try:
            host.signal("alpha", *(market(BUY, 1.0, f"q-{n}") for n in range(257)))
        finally:
            host.ledger.close()
        assert told(host) == [("q-256", REJECTED, 0.0, 0.0, "queue_full")]

    async def test_the_venue_down_is_told_as_venue_unavailable(self, tmp_path: Path) -> None:
        """Nothing listens at the venue's address: the order is rejected and the strategy hears it."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            address = f"127.0.0.1:{probe.getsockname()[1]}"
        clock = SystemClock()
        venue = GrpcVenue(grpc_config(address, timeout=0.2), clock)
        host = assemble(Ledger.open(tmp_path / "down.db"), venue, clock=clock, mode="live")
        host.tick(99.0, 101.0)
        host.start()
        try:
            host.signal("alpha", market(BUY, 1.0, "nowhere"))
            await wait_until(lambda: len(host.delivered.updates("alpha")) == 1, timeout=10)
        finally:
            await host.stop()
            await venue.close()
            host.ledger.close()
        [update] = host.delivered.updates("alpha")
        assert (update.client_order_id, update.status, update.rule) == ("nowhere", REJECTED, "venue_unavailable")
        assert update.reason.startswith("venue unavailable")


AGGREGATED = [
    # (mode, batch of (strategy, side, quantity, id), what each strategy is told: (id, status, quantity, rule))
    pytest.param(
        "priority", [("alpha", BUY, 2.0, "b"), ("alpha", SELL, 0.5, "s")],
        {"alpha": [("s", REJECTED, 0.5, "netted"), ("b", FILLED, 1.5, "")]},
        id="netting_rejects_the_smaller_side_and_fills_the_reduced_rest_under_its_id",
    ),
    pytest.param(
        "majority", [("alpha", BUY, 1.0, "a"), ("beta", SELL, 1.0, "b")],
        {"alpha": [("a", REJECTED, 1.0, "no_consensus")], "beta": [("b", REJECTED, 1.0, "no_consensus")]},
        id="a_tie_rejects_both",
    ),
    pytest.param(
        "majority", [("alpha", BUY, 1.0, "a"), ("beta", SELL, 1.0, "b"), ("gamma", BUY, 2.0, "g")],
        {"alpha": [("a", FILLED, 1.0, "")], "beta": [("b", REJECTED, 1.0, "outvoted")],
         "gamma": [("g", REJECTED, 2.0, "merged")]},
        id="the_lead_fills_the_loser_is_outvoted_the_other_winner_merged",
    ),
]  # fmt: skip


class TestAggregation:
    @pytest.mark.parametrize(("mode", "batch", "expected"), AGGREGATED)
    async def test_every_signal_of_a_batch_is_answered(
        self, tmp_path: Path, clock: ManualClocks, mode: str, batch: list[tuple[str, Side, float, str]],
        expected: dict[str, list[tuple[str, OrderUpdateStatus, float, str]]],
    ) -> None:  # fmt: skip
        """A signal aggregation absorbs is told rejected with the outcome as its rule; the order that
        is sent carries its lead signal's id and the quantity actually sent."""
        host = paper_host(tmp_path / "aggregate.db", clock, aggregation=mode)
        host.tick(99.0, 101.0)
        for strategy, side, quantity, cid in batch:  # queued before the run loop takes a batch
            host.signal(strategy, market(side, quantity, cid))
        host.start()
        try:
            for strategy, updates in expected.items():
                await hears(host, len(updates), strategy)
        finally:
            await host.stop()
            host.ledger.close()
        for strategy, updates in expected.items():
            got = [(u.client_order_id, u.status, u.quantity, u.rule) for u in host.delivered.updates(strategy)]
            assert got == updates


class TestReconciliation:
    async def test_an_order_the_venue_forgot_is_told_expired_with_why(self, host: Host, clock: ManualClocks) -> None:
        """A venue that restarted forgot a resting order: reconciliation closes it, never revived, and
        its strategy hears it expired, with the reason, nothing left working."""
        host.signal("alpha", limit(BUY, 1.0, 97.0, "forgotten"))
        await hears(host, 1)
        assert host.paper is not None
        host.paper.engine = MatchingEngine(clock=clock, id_prefix=paper_id_prefix())  # a restarted venue
        await host.engine.reconcile("venue_reconnected")
        updates = await hears(host, 2)
        assert told(host) == [("forgotten", ACCEPTED, 0.0, 1.0, ""), ("forgotten", EXPIRED, 0.0, 0.0, "")]
        assert "no longer knows the order" in updates[1].reason

    async def test_a_fill_recovered_by_reconciliation_is_told_after_it_and_the_late_report_adds_nothing(
        self, host: Host, clock: ManualClocks
    ) -> None:
        """1 of 3 fills, the report of the other 2 is lost: reconciliation recovers them as a reconciled
        fill, followed by the order's update (filled); the lost report arriving later is covered: the
        strategy gets the position again and no second update."""
        host.tick(99.0, 100.0, ask_size=1.0)
        host.signal("alpha", limit(BUY, 3.0, 100.0, "lossy"))
        await hears(host, 1)
        assert host.paper is not None
        lost: list[Fill] = []
        host.paper._sink = lost.append  # the fill reports go nowhere, as over core NATS to a dead engine
        clock.advance(1.0)
        host.tick(98.5, 99.5, ask_size=5.0)
        assert [f.quantity for f in lost] == [2.0]
        host.engine.fill_grace_s = 0.05
        await host.engine.reconcile("venue_reconnected")
        await hears(host, 2)
        events = host.delivered.of("alpha")
        assert [type(e) for e in events[-3:]] == [Fill, Position, OrderUpdate]
        recovered = events[-3]
        assert isinstance(recovered, Fill) and (recovered.reconciled, recovered.quantity) == (True, 2.0)
        assert told(host)[-1] == ("lossy", FILLED, 3.0, 0.0, "")
        host.engine.record_fill(lost[0])
        assert [type(e) for e in host.delivered.of("alpha")[len(events) :]] == [Position]

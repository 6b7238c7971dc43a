"""The order path's memory follows working orders, not history: terminal orders leave the engine's maps.

Real parts, as in ``test_execution``: a real SQLite ledger, the engine wired as the app wires it and
an in-process ``PaperVenue`` whose fill sink is the engine, on a ``ManualClocks``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from host.orders import OrderIntent, OrderStatus
from sdk.events import Fill, OrderType, Side, Signal
from tests.execution_harness import SYM, Host, journaled, paper_host
from tests.helpers import ManualClocks, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    """An engine over a PaperVenue, running, with BTCUSDT quoted 99 / 101, deep on both sides."""
    built = paper_host(tmp_path / "ledger.db", ManualClocks())
    built.tick(99.0, 101.0, 1e6, 1e6)
    built.start()
    try:
        yield built
    finally:
        await built.stop()
        built.ledger.close()


async def settled(host: Host, count: int) -> None:
    """Until the ledger holds ``count`` orders, none of them on its way or waiting for a cancel."""
    on_the_way = (OrderStatus.PENDING_NEW, OrderStatus.SENT, OrderStatus.CANCEL_PENDING)

    def done() -> bool:
        orders = journaled(host.ledger.path)
        return len(orders) == count and all(o.status not in on_the_way for o in orders)

    await wait_until(done, timeout=20)


class TestTerminalOrdersAreForgotten:
    async def test_filled_orders_leave_the_venue_id_map_and_only_working_ones_stay(self, host: Host) -> None:
        """300 market orders that fill and one resting limit: the engine keeps the limit's venue id alone."""
        host.signal("alpha", Signal(symbol=SYM, side=Side.BUY, quantity=1.0, order_type=OrderType.LIMIT, price=95.0))
        await settled(host, 1)
        for batch in range(6):  # one side a batch: opposite signals of one batch would net out
            side = Side.BUY if batch % 2 else Side.SELL
            host.signal("alpha", *(Signal(symbol=SYM, side=side, quantity=0.1) for _ in range(50)))
            await settled(host, 1 + 50 * (batch + 1))
        [resting] = host.book.strategy_orders("alpha")
        assert host.engine._venue_ids == {resting.venue_order_id: resting.intent.client_order_id}
        assert host.engine.stats.fills == 300

    async def test_replaced_quotes_leave_the_cancel_requests(self, host: Host) -> None:
        """100 quotes replacing each other in one slot: 99 cancels asked and answered, none remembered."""
        for n in range(100):
            host.signal(
                "alpha",
                Signal(
                    symbol=SYM,
                    side=Side.BUY,
                    quantity=1.0,
                    order_type=OrderType.LIMIT,
                    price=97.0 + n * 0.01,
                    slot="bid",
                ),
            )
            await settled(host, n + 1)
        assert host.engine.stats.cancels == 99
        assert host.engine._cancel_requested == set()
        [working] = host.book.strategy_orders("alpha")
        assert host.engine._venue_ids == {working.venue_order_id: working.intent.client_order_id}

    async def test_a_finished_order_is_still_routed_by_its_venue_id(self, host: Host) -> None:
        """A fill naming only a finished order's venue id (no strategy) still finds its strategy, from the ledger."""
        host.signal("alpha", Signal(symbol=SYM, side=Side.BUY, quantity=1.0))
        await settled(host, 1)
        [order] = journaled(host.ledger.path)
        assert order.status is OrderStatus.FILLED and host.engine._venue_ids == {}
        assert host.engine.strategy_of(order.venue_order_id) == "alpha"
        assert host.engine.strategy_of(order.intent.client_order_id) == "alpha"
        assert host.engine.strategy_of("never-seen") is None

    async def test_a_late_fill_of_a_finished_order_is_its_own_not_a_waiting_orders(self, host: Host) -> None:
        """A late report naming a finished order's venue id (forgotten by the engine) is tied to that order
        through the ledger, even while another order on the same symbol and side waits for its reply."""
        host.signal("alpha", Signal(symbol=SYM, side=Side.BUY, quantity=1.0))
        await settled(host, 1)
        [done] = journaled(host.ledger.path)
        waiting = OrderIntent.from_signal(
            "alpha", Signal(symbol=SYM, side=Side.BUY, quantity=1.0), host.clock.now_ns(), "waiting"
        )
        host.book.order_changed(host.ledger.journal(waiting, host.clock.now_ns()))
        host.book.order_changed(host.ledger.transition("waiting", OrderStatus.SENT, host.clock.now_ns()))
        late = Fill(
            fill_id="late-1",
            order_id=done.venue_order_id,
            symbol=SYM,
            side=Side.BUY,
            price=101.0,
            quantity=0.25,
            timestamp_ns=host.clock.now_ns(),
            fee=0.0,
            strategy="alpha",
        )
        assert host.engine.record_fill(late)
        finished, sent = host.ledger.order(done.intent.client_order_id), host.ledger.order("waiting")
        assert finished is not None and finished.filled_quantity == 1.25
        assert sent is not None and (sent.venue_order_id, sent.filled_quantity) == ("", 0.0)


class TestRejectionLog:
    async def test_a_thousand_rejections_are_counted_each_and_logged_in_a_few_lines(self, host: Host) -> None:
        """1,000 orders refused for want of a price: orders_rejected_total and the stats count 1,000, the
        log has the first one and then summaries (here none yet: the 10 s interval has not ended), and
        at shutdown the pending count is written, so the lines account for all 1,000."""

        def refused() -> int:
            return host.engine.stats.rejections.get("alpha", {}).get("no_reference_price", 0)

        with capture_logs() as logs:
            for batch in range(1, 6):  # 200 at a time: the harness's signal queue holds 256
                host.signal("alpha", *(Signal(symbol="NODATA", side=Side.BUY, quantity=0.1) for _ in range(200)))
                await wait_until(lambda: refused() == 200 * batch, timeout=20)  # noqa: B023  (awaited here)
            host.engine.rejection_log.flush()
        assert host.metric("orders_rejected_total", reason="no_reference_price") == 1000.0
        rejected = [entry for entry in logs if entry["event"] in ("order_rejected", "orders_rejected_summary")]
        assert [entry["event"] for entry in rejected] == ["order_rejected", "orders_rejected_summary"]
        assert rejected[1]["count"] == 999 and rejected[1]["reason"] == "no_reference_price"

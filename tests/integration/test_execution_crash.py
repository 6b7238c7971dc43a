"""A host SIGKILLed mid-order loses nothing and sends nothing twice: a new engine reconciles with the venue.

The venue is a real ``PaperVenueServer`` on a free loopback port in the test process; its fill sink
(``FillFeed``) keeps every fill it publishes, as NATS ``trading.fills`` would. The host is a CHILD
process (``python -m tests.execution_harness``): the engine over a ``GrpcVenue`` and a ledger file
in the test's temp dir. It is killed with SIGKILL at the two points where an order's fate is
easiest to get wrong:

1. after the order is journaled and before it is sent (the child kills itself from inside the
   ledger's ``journal``, on the real signal -> risk -> journal path);
2. after the venue received the order and before its reply (the venue holds the reply with
   ``drop_reply_for``; the test kills the child once the venue has the order and the ledger says SENT).

Then a new engine opens the same ledger, runs ``reconcile``, and gets every fill the venue published
(redelivered, as an unacked JetStream fill would be). The venue must hold exactly one order for the
client order id, the ledger must hold it FILLED, the ledger's position must equal the venue's, and a
second reconcile must change nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.clock import SystemClock
from host.execution.grpc_venue import GrpcVenue
from host.execution.matching import MatchingEngine
from host.execution.paper import PaperVenueServer, paper_id_prefix
from host.ledger import Ledger
from host.orders import OrderStatus
from sdk.events import Tick
from tests.execution_harness import SYM, FillFeed, Host, assemble, grpc_config, journaled
from tests.helpers import ROOT, kill_quietly, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

LOST_REPLY = "crash-after-send"


@pytest.fixture
async def venue() -> AsyncIterator[tuple[PaperVenueServer, FillFeed]]:
    """A paper OMS (fee 0.1 %) quoting BTCUSDT 99 / 101 that loses the first reply to LOST_REPLY."""
    feed = FillFeed()
    server = PaperVenueServer(
        MatchingEngine(fee_rate=0.001, clock=SystemClock(), id_prefix=paper_id_prefix()),
        fill_sink=feed, drop_reply_for={LOST_REPLY},
    )  # fmt: skip
    await server.start()
    server.on_market(
        Tick(symbol=SYM, timestamp_ns=time.time_ns(), bid_price=99.0, bid_size=10.0, ask_price=101.0, ask_size=10.0)
    )
    try:
        yield server, feed
    finally:
        await server.stop()


async def spawn_host(case: str, ledger: Path, address: str, client_order_id: str = "") -> asyncio.subprocess.Process:
    """The child host, its output in ``<ledger>.log`` for when a test fails."""
    with open(ledger.with_suffix(".log"), "wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.execution_harness", case, str(ledger), address, client_order_id,
            cwd=ROOT, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip


async def reaped(child: asyncio.subprocess.Process) -> int:
    try:
        async with asyncio.timeout(10):
            return await child.wait()
    finally:
        kill_quietly(child.pid)


async def recover(path: Path, server: PaperVenueServer, feed: FillFeed) -> tuple[Host, GrpcVenue]:
    """A new engine on the crashed host's ledger: reconcile, then every fill the venue published."""
    clock = SystemClock()
    client = GrpcVenue(grpc_config(server.address), clock)
    host = assemble(Ledger.open(path), client, clock=clock, mode="live")
    feed.target = host.engine.record_fill
    assert await host.engine.reconcile() == 1
    for fill in list(feed.fills):
        host.engine.record_fill(fill)
    return host, client


async def check_recovered(host: Host, server: PaperVenueServer, feed: FillFeed, client_order_id: str) -> None:
    """One order at the venue, FILLED in the ledger, positions as the venue's, and reconcile again is a no-op."""
    [order] = journaled(host.ledger.path)
    assert order.intent.client_order_id == client_order_id
    assert (order.status, order.filled_quantity, order.average_price) == (OrderStatus.FILLED, 1.0, 101.0)
    [at_venue] = [o for o in server.engine.orders() if o.intent.client_order_id == client_order_id]
    assert at_venue.venue_order_id == order.venue_order_id and len(server.engine) == 1
    assert (server.stats.submitted, server.stats.duplicates) == (1, 0)
    [fill] = feed.fills
    assert [f.fill_id for f in host.ledger.fills()] == [fill.fill_id]
    assert [e.fill_id for e in host.ledger.order_events(client_order_id) if e.fill_id] == [fill.fill_id]
    assert host.delivered.fills("alpha") == [fill]
    venue_position = server.positions("alpha").positions()[SYM]
    [position] = host.ledger.positions("alpha")
    assert (position.quantity, position.avg_entry_price) == (venue_position.quantity, venue_position.avg_entry_price)
    assert position.realized_pnl == pytest.approx(venue_position.realized_pnl) == pytest.approx(-0.101)
    await settled_again(host, server, client_order_id)


async def settled_again(host: Host, server: PaperVenueServer, client_order_id: str) -> None:
    trail, stats = host.ledger.order_events(client_order_id), dataclasses.astuple(server.stats)
    assert await host.engine.reconcile() == 0
    assert host.ledger.order_events(client_order_id) == trail and dataclasses.astuple(server.stats) == stats


def statuses(path: Path) -> list[OrderStatus]:
    return [order.status for order in journaled(path)] if path.exists() else []


class TestHostCrash:
    async def test_killed_after_journaling_before_sending_the_order_is_sent_once_by_reconcile(
        self, tmp_path: Path, venue: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """Case 1: the child dies right after the journal commit. The order is PENDING_NEW and the
        venue never saw it; reconcile sends it under its journaled id (not lost), and it fills once."""
        server, feed = venue
        path = tmp_path / "host.db"
        child = await spawn_host("journal", path, server.address)
        assert await reaped(child) == -signal.SIGKILL
        [journaled_order] = journaled(path)
        assert journaled_order.status is OrderStatus.PENDING_NEW and len(server.engine) == 0
        host, client = await recover(path, server, feed)
        try:
            await check_recovered(host, server, feed, journaled_order.intent.client_order_id)
        finally:
            await client.close()
            host.ledger.close()

    async def test_killed_after_sending_before_the_reply_the_order_is_resolved_not_resent(
        self, tmp_path: Path, venue: tuple[PaperVenueServer, FillFeed]
    ) -> None:
        """Case 2: the venue has executed the order and holds its reply when the child is killed.
        The ledger says SENT; reconcile asks GetOrderStatus, learns FILLED and sends nothing (no
        duplicate); the redelivered fill lands on the order."""
        server, feed = venue
        path = tmp_path / "host.db"
        child = await spawn_host("send", path, server.address, LOST_REPLY)
        try:
            await wait_until(lambda: server.stats.submitted == 1 and statuses(path) == [OrderStatus.SENT], timeout=10)
        finally:
            os.kill(child.pid, signal.SIGKILL)
        assert await reaped(child) == -signal.SIGKILL
        assert statuses(path) == [OrderStatus.SENT] and server.stats.dropped_replies == 1
        host, client = await recover(path, server, feed)
        try:
            await check_recovered(host, server, feed, LOST_REPLY)
        finally:
            await client.close()
            host.ledger.close()

"""A running engine with ``engine.ledgerRetentionDays`` compacts its ledger at start (and then once a day)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from host.app import compose
from host.clock import SystemClock
from host.config import parse
from host.ledger import Ledger
from host.orders import OrderIntent, OrderStatus
from sdk.events import Fill, OrderType, Side
from tests.helpers import RUNNERS, wait_until
from tests.integration.http_stack import HandFed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DAY_NS = 86_400 * 1_000_000_000


def history(path: Path) -> None:
    """A filled order of 3 days ago, one filled an hour ago, and an order working for 3 days."""
    now = time.time_ns()
    with Ledger.open(path) as ledger:
        for cid, at in (("old", now - 3 * DAY_NS), ("recent", now - 3_600 * 10**9), ("working", now - 3 * DAY_NS)):
            ledger.journal(OrderIntent(cid, "solo", "BTCUSDT", Side.BUY, OrderType.LIMIT, 1.0, price=100.0), at)
            ledger.transition(cid, OrderStatus.ACCEPTED, at, venue_order_id=f"V-{cid}")
            if cid != "working":
                ledger.record_fill(
                    Fill(
                        fill_id=f"F-{cid}",
                        order_id=f"V-{cid}",
                        symbol="BTCUSDT",
                        side=Side.BUY,
                        price=100.0,
                        quantity=1.0,
                        timestamp_ns=at,
                        fee=0.0,
                        strategy="solo",
                    ),
                    at,
                )


async def test_the_engine_compacts_its_ledger_at_start(tmp_path: Path) -> None:
    """ledgerRetentionDays 1: the 3-day-old filled order goes at start (ledger_compacted says so), the recent
    one and the old working order stay, the position is the same, and /metrics has the ledger's size."""
    path = tmp_path / "ledger.sqlite"
    history(path)
    config = parse(
        {
            "server": {"port": 0},
            "engine": {"mode": "simulation", "pluginsDir": str(RUNNERS), "ledgerPath": str(path),
                       "handshakeTimeout": "5s", "stopGrace": "1s", "ledgerRetentionDays": 1,
                       "hotReload": False, "watchConfig": False},
            "strategies": {"solo": {"plugin": "scripted", "strategy": "scripted"}},
        },
        environ={},
    )  # fmt: skip
    app = compose(config, HandFed(), clock=SystemClock(), venue_kind="paper", ledger_path=path, http=False)
    positions = app.engine.ledger.positions()
    stop = asyncio.Event()
    with capture_logs() as logs:
        running = asyncio.create_task(app.run(stop.wait()))
        await wait_until(lambda: any(e["event"] == "ledger_compacted" for e in logs), 15)
        assert app.engine.ledger.order("old") is None
        assert {o.intent.client_order_id for o in app.engine.ledger.orders()} == {"recent", "working"}
        assert app.engine.ledger.positions() == positions
        exposition = generate_latest(app.engine.metrics.registry).decode()
        stop.set()
        await asyncio.wait_for(running, 20)
    [compacted] = [e for e in logs if e["event"] == "ledger_compacted"]
    assert (compacted["orders"], compacted["fills"]) == (1, 1)
    [size] = [line for line in exposition.splitlines() if line.startswith("strategy_engine_ledger_size_bytes ")]
    assert float(size.split()[1]) >= path.stat().st_size > 0

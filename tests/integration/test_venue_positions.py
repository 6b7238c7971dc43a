"""Venue position messages on the live path: compared with the ledger, reported, never forwarded.

A live engine (``host.live.live_app``) runs in this process against a real redis-server and
nats-server on free ports; the test is the peer that publishes on core NATS, so it decides the
order of fills and positions: a position before the fill that explains it, after two fills, or one
no fill explains (a venue restarted from zero). What the engine made of them is read from
``/status`` and ``/metrics`` over HTTP, and from its log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import orjson
import pytest
from structlog.testing import capture_logs

from host.app import App
from host.config import parse
from host.execution.position_check import PositionCheck
from host.live import live_app
from sdk._codec import encode_fill, encode_position
from sdk.events import Fill, Position, Side
from tests.helpers import RUNNERS, wait_until
from tests.servers import NatsServer, RedisServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SYMBOL = "BTCUSDT"


class Peer:
    """The venue's side of NATS: fills and positions for the strategy ``quiet``, published in the test's order."""

    def __init__(self, client: nats.NATS) -> None:
        self.client = client
        self.fills = 0

    async def fill(self, quantity: float, side: Side = Side.BUY) -> None:
        self.fills += 1
        fill = Fill(
            fill_id=f"f-{self.fills}",
            order_id="",
            symbol=SYMBOL,
            side=side,
            price=100.0,
            quantity=quantity,
            timestamp_ns=time.time_ns(),
            strategy="quiet",
        )
        await self.client.publish("trading.fills", orjson.dumps(encode_fill(fill)))
        await self.client.flush()

    async def position(self, quantity: float) -> None:
        position = Position(
            symbol=SYMBOL, quantity=quantity, avg_entry_price=100.0, timestamp_ns=time.time_ns(), strategy="quiet"
        )
        await self.client.publish("trading.positions", orjson.dumps(encode_position(position)))
        await self.client.flush()


@pytest.fixture
async def live(redis_server: RedisServer, nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[App]:
    """A live engine whose one strategy never trades (its fills and positions come from the test)."""
    config = parse(
        {
            "redis": {"port": redis_server.port, "marketDataChannels": ["market:btcusdt"]},
            "nats": {"url": nats_server.url},
            "grpc": {"orderExecutionAddress": f"127.0.0.1:{free_port()}"},
            "server": {"port": 0},
            "engine": {"mode": "live", "pluginsDir": str(RUNNERS), "ledgerPath": str(tmp_path / "ledger.sqlite"),
                       "hotReload": False},
            "strategies": {"quiet": {"plugin": "scripted", "strategy": "scripted", "symbols": [SYMBOL],
                                     "parameters": {"every": 1_000_000, "echo_fills": False}}},
        },
        environ={},
    )  # fmt: skip
    app = live_app(config, root=tmp_path)
    stop = asyncio.Event()
    running = asyncio.create_task(app.run(stop.wait()))
    try:
        await wait_until(lambda: app.ready, 20)
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)


@pytest.fixture
async def peer(nats_server: NatsServer) -> AsyncIterator[Peer]:
    client = await nats.connect(nats_server.url)
    try:
        yield Peer(client)
    finally:
        await client.drain()


async def _get(app: App, path: str) -> Any:
    assert app.http is not None
    async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{app.http.port}{path}") as reply:
        return await (reply.json() if path == "/status" else reply.text())


def _ledger(app: App) -> float:
    return app.engine.book.positions("quiet").get(SYMBOL, 0.0)


class TestVenuePositions:
    async def test_a_position_ahead_of_its_fill_agrees_once_the_fill_is_recorded(self, live: App, peer: Peer) -> None:
        """The venue's position arrives first and waits; the fill that explains it settles it: no mismatch."""
        check = live.engine.positions.check
        await peer.position(0.5)
        await wait_until(lambda: check.pending == 1, 10)
        await peer.fill(0.5)
        await wait_until(lambda: check.pending == 0, 10)
        assert (check.checked, check.agreed, check.disagreed) == (1, 1, 0)
        await asyncio.sleep(check.settle_s + 0.5)
        assert check.disagreed == 0 and (await _get(live, "/status"))["venue_positions"]["mismatched_now"] == 0

    async def test_positions_behind_two_fills_agree(self, live: App, peer: Peer) -> None:
        """Two fills recorded before the first fill's position arrives: both positions agree."""
        check = live.engine.positions.check
        await peer.fill(0.5)
        await peer.fill(0.25)
        await wait_until(lambda: _ledger(live) == 0.75, 10)
        await peer.position(0.5)
        await peer.position(0.75)
        await wait_until(lambda: check.checked == 2, 10)
        await asyncio.sleep(check.settle_s + 0.5)
        assert (check.agreed, check.disagreed, check.pending) == (2, 0, 0)

    async def test_a_position_no_fill_explains_is_reported_and_the_ledger_keeps_its_own(
        self, live: App, peer: Peer
    ) -> None:
        """A venue restarted from zero: after settle_s it is a mismatch on /status, in the metrics and the log."""
        check: PositionCheck = live.engine.positions.check
        await peer.fill(2.0)
        await wait_until(lambda: _ledger(live) == 2.0, 10)
        with capture_logs() as logs:
            await peer.position(0.5)
            await wait_until(lambda: check.disagreed == 1, 10)
        shown = (await _get(live, "/status"))["venue_positions"]
        assert (shown["checked"], shown["disagreed"], shown["mismatched_now"]) == (1, 1, 1)
        [entry] = shown["disagreements"]
        assert {k: entry[k] for k in ("strategy", "symbol", "ledger", "venue", "current", "count")} == {
            "strategy": "quiet", "symbol": SYMBOL, "ledger": 2.0, "venue": 0.5, "current": True, "count": 1,
        }  # fmt: skip
        metrics = await _get(live, "/metrics")
        assert 'strategy_engine_venue_position_mismatches_total{strategy="quiet",symbol="BTCUSDT"} 1.0' in metrics
        assert "strategy_engine_venue_positions_mismatched 1.0" in metrics
        [line] = [r for r in logs if r["event"] == "venue_position_mismatch"]
        assert (line["strategy"], line["symbol"], line["ledger_quantity"], line["venue_quantity"]) == (
            "quiet", SYMBOL, 2.0, 0.5,
        )  # fmt: skip
        assert line["log_level"] == "warning"
        assert [p.quantity for p in live.engine.execution.positions("quiet")] == [2.0]

        await peer.position(2.0)  # the venue agrees again
        await wait_until(lambda: check.current == 0, 10)
        shown = (await _get(live, "/status"))["venue_positions"]
        assert shown["mismatched_now"] == 0 and shown["disagreements"][0]["current"] is False

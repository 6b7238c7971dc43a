"""Peers' messages as they are, on real parts: the account monitor's fill and a crossed tick.

A paper-venue service and a live engine run in this process against a real redis-server and
nats-server on free ports; a real runner serves the scripted strategy ``loop``, which answers every
fill it receives with a buy naming the fill's id (so ``on_fill`` is seen in the ledger's orders).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import orjson
import pytest
import redis.asyncio as aioredis

from host.app import App
from host.config import parse
from host.live import LiveSource, live_app
from host.paper_service import PaperVenueService
from sdk._codec import format_timestamp
from tests.helpers import RUNNERS, wait_until
from tests.servers import NatsServer, RedisServer, free_port

pytestmark = pytest.mark.integration

CHANNEL = "market:btcusdt"
# Byte for byte what the account monitor publishes on trading.fills, for the strategy "loop".
PEER_FILL = (
    b'{"id":"fill-test-001","symbol":"BTCUSDT","side":"BUY","quantity":"0.001","price":"50000.00",'
    b'"fee":"0.05","fee_currency":"USDT","timestamp":"2025-10-06T10:00:01Z","strategy":"loop"}'
)


def tick(sequence: int, bid: float = 50000.0, ask: float = 50000.5) -> bytes:
    return orjson.dumps({
        "symbol": "BTCUSDT", "timestamp": format_timestamp(time.time_ns()), "sequence": sequence, "type": "tick",
        "bid_price": bid, "ask_price": ask, "bid_size": 5.0, "ask_size": 5.0,
    })  # fmt: skip


@pytest.fixture
async def live(redis_server: RedisServer, nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[App]:
    config = parse(
        {
            "redis": {"port": redis_server.port, "marketDataChannels": [CHANNEL]},
            "nats": {"url": nats_server.url},
            "grpc": {"orderExecutionAddress": f"127.0.0.1:{free_port()}", "timeout": "2s"},
            "server": {"port": 0},
            "engine": {
                "mode": "live", "pluginsDir": str(RUNNERS), "ledgerPath": str(tmp_path / "ledger.sqlite"),
                "hotReload": False,
            },
            "risk": {"maxOrdersPerSecond": 100, "maxPositionSize": 10, "maxOrderValue": 1_000_000},
            "strategies": {"loop": {"plugin": "scripted", "strategy": "scripted", "parameters": {"every": 10**9}}},
        },
        environ={},
    )  # fmt: skip
    venue = PaperVenueService(config)
    app = live_app(config, root=tmp_path)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(venue.run(stop.wait())), asyncio.create_task(app.run(stop.wait()))]
    await wait_until(lambda: app.ready, 20)
    yield app
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)


class TestAccountMonitorFill:
    async def test_reaches_the_ledger_the_book_and_on_fill(
        self, live: App, redis_server: RedisServer, nats_server: NatsServer
    ) -> None:
        """The account monitor's fill on NATS is stored once, moves loop's position and reaches its on_fill."""
        engine = live.engine
        client = aioredis.Redis(port=redis_server.port)
        try:
            for sequence in (1, 2, 3):  # a mark, so the order on_fill answers with can pass risk
                await client.publish(CHANNEL, tick(sequence))
        finally:
            await client.aclose()
        peer = await nats.connect(nats_server.url)
        try:
            await peer.publish("trading.fills", PEER_FILL)
            await peer.publish("trading.fills", PEER_FILL)  # a re-send: stored once
            await peer.flush()
        finally:
            await peer.close()

        def answered() -> bool:
            return any(o.intent.metadata.get("fill") == "fill-test-001" for o in engine.ledger.orders("loop"))

        await wait_until(lambda: any(f.fill_id == "fill-test-001" for f in engine.ledger.fills("loop")), 10)
        await wait_until(answered, 10)  # on_fill ran in the runner and its signal came back
        [stored] = [f for f in engine.ledger.fills("loop") if f.fill_id == "fill-test-001"]
        assert (stored.order_id, stored.strategy, stored.quantity, stored.price, stored.fee) == (
            "", "loop", 0.001, 50000.0, 0.05,
        )  # fmt: skip
        assert engine.execution.stats.fills_by_strategy["loop"] >= 1
        ledger_quantity = sum(f.quantity * (1 if f.side.value == "buy" else -1) for f in engine.ledger.fills("loop"))
        assert engine.execution.book.positions("loop")["BTCUSDT"] == pytest.approx(ledger_quantity)


class TestCrossedTick:
    async def test_is_counted_and_the_engine_goes_on(self, live: App, redis_server: RedisServer) -> None:
        """bid > ask on Redis is counted under bid_price in market_data_errors_total; later ticks still arrive."""
        assert isinstance(live.source, LiveSource) and live.source.market is not None
        feed = live.source.market
        client = aioredis.Redis(port=redis_server.port)
        try:
            await client.publish(CHANNEL, tick(1, bid=50001.0, ask=50000.0))
            await client.publish(CHANNEL, tick(2, bid=50000.0, ask=50000.0))  # locked: accepted
        finally:
            await client.aclose()
        await wait_until(lambda: feed.stats.rejected == 1 and feed.stats.received == 1, 10)
        sample = feed.registry.get_sample_value(
            "strategy_engine_market_data_errors_total", {"channel": CHANNEL, "field": "bid_price"}
        )
        assert sample == 1
        assert live.ready

"""The whole loop on real parts: Redis ticks -> strategy -> risk -> gRPC paper venue -> NATS fills -> strategy.

A paper-venue service and a live engine run side by side in this process against a real
redis-server and nats-server on free ports; a real runner serves the scripted strategy, which buys
on its 5th tick and answers every fill it receives with another buy carrying the fill's id. So an
order placed by the strategy, filled by the venue, published on NATS, stored by the ledger and
delivered back to the runner shows up as a second order whose metadata names the first fill.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from host.app import App
from host.config import Config, parse
from host.live import LiveSource, live_app
from host.orders import OrderIntent
from host.paper_service import PaperVenueService
from host.risk import APPROVED, Rejected, Rule
from sdk._codec import encode_market
from sdk.events import OrderType, Side, Tick
from tests.helpers import RUNNERS, wait_until
from tests.servers import NatsServer, RedisServer, free_port


def _config(
    redis_server: RedisServer, nats_server: NatsServer, tmp_path: Path, stale_after: str = "5s",
    parameters: Mapping[str, Any] | None = None, max_position: float = 10,
) -> Config:  # fmt: skip
    return parse(
        {
            "redis": {"port": redis_server.port, "marketDataChannels": ["market:btcusdt"], "staleAfter": stale_after},
            "nats": {"url": nats_server.url},
            "grpc": {"orderExecutionAddress": f"127.0.0.1:{free_port()}", "timeout": "2s"},
            "server": {"port": 0},
            "engine": {
                "mode": "live", "pluginsDir": str(RUNNERS), "ledgerPath": str(tmp_path / "ledger.sqlite"),
                "hotReload": False,
            },
            "risk": {"maxOrdersPerSecond": 100, "maxPositionSize": max_position, "maxOrderValue": 1e9,
                     "maxPortfolioNotional": 1e12},
            "strategies": {"loop": {"plugin": "scripted", "strategy": "scripted",
                                    "parameters": dict(parameters or {"every": 5})}},
        },
        environ={},
    )  # fmt: skip


class Feeds:
    """The live source's two feeds, both bound."""

    def __init__(self, source: LiveSource) -> None:
        assert source.market is not None and source.fills is not None
        self.market = source.market
        self.fills = source.fills


def feeds(app: App) -> Feeds:
    assert isinstance(app.source, LiveSource)
    return Feeds(app.source)


@pytest.fixture
async def stack(
    redis_server: RedisServer, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[tuple[App, PaperVenueService]]:
    config = _config(redis_server, nats_server, tmp_path)
    venue = PaperVenueService(config)
    live = live_app(config, root=tmp_path)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(venue.run(stop.wait())), asyncio.create_task(live.run(stop.wait()))]
    yield live, venue
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def _publish_ticks(port: int, count: int, clock_ahead_s: float = 0.0) -> None:
    client = aioredis.Redis(port=port)
    try:
        for i in range(1, count + 1):
            tick = Tick(
                symbol="BTCUSDT",
                timestamp_ns=time.time_ns() + round(clock_ahead_s * 1e9),
                bid_price=100.0,
                bid_size=5.0,
                ask_price=100.1,
                ask_size=5.0,
                last_price=100.05,
                sequence=i,
            )
            await client.publish("market:btcusdt", orjson.dumps(encode_market(tick)))
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


class TestFullLoop:
    async def test_fill_reaches_the_strategy_and_its_position(
        self, stack: tuple[App, PaperVenueService], redis_server: RedisServer
    ) -> None:
        """Order -> paper venue fill -> NATS -> ledger -> on_fill in the runner -> a new order naming the fill."""
        live, venue = stack
        engine = live.engine
        await wait_until(lambda: live.ready, 20)
        await _publish_ticks(redis_server.port, 30)
        await wait_until(lambda: venue.published >= 1, 10)
        await wait_until(lambda: engine.execution.stats.fills >= 1, 10)
        first_fill = engine.ledger.fills("loop")[0]

        def answered() -> bool:
            return any(o.intent.metadata.get("fill") == first_fill.fill_id for o in engine.ledger.orders("loop"))

        await wait_until(answered, 10)
        (position,) = [p for p in engine.ledger.positions("loop") if p.symbol == "BTCUSDT"]
        assert position.quantity == pytest.approx(sum(f.quantity for f in engine.ledger.fills("loop")))
        assert venue.server.stats.submitted >= 2

    async def test_positions_from_nats_are_checked_against_the_ledger(
        self, stack: tuple[App, PaperVenueService], redis_server: RedisServer
    ) -> None:
        """The venue's position updates on trading.positions are compared with the ledger's, and agree."""
        live, _ = stack
        await wait_until(lambda: live.ready, 20)
        await _publish_ticks(redis_server.port, 10)
        received = feeds(live).fills.metrics.positions.labels(strategy="loop")
        await wait_until(lambda: received._value.get() >= 1, 10)
        check = live.engine.positions.check
        await wait_until(lambda: check.checked >= 1 and check.pending == 0, 10)
        assert (check.agreed, check.disagreed) == (check.checked, 0)


class TestVenuePositionsAgree:
    @pytest.mark.parametrize(
        "parameters",
        [
            pytest.param({"every": 1, "echo_fills": True}, id="buys-on-every-tick-and-fill"),
            pytest.param({"mode": "flood:4", "every": 100_000, "echo_fills": False}, id="sells-in-bursts-of-4"),
        ],
    )
    async def test_a_normal_live_run_reports_no_mismatch(
        self, redis_server: RedisServer, nats_server: NatsServer, tmp_path: Path, parameters: dict[str, Any]
    ) -> None:
        """Fills and positions race on two core NATS subjects, in bursts: not one position counts as a mismatch.

        One strategy buying on every tick and again on every fill (its position only grows), or
        selling 4 times a tick (fills of one pair a moment apart): every venue position is
        judged, none disagrees, and the mismatch metrics stay at 0.
        """
        config = _config(redis_server, nats_server, tmp_path, parameters=parameters, max_position=1e6)
        venue = PaperVenueService(config)
        live = live_app(config, root=tmp_path)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(venue.run(stop.wait())), asyncio.create_task(live.run(stop.wait()))]
        try:
            await wait_until(lambda: live.ready, 20)
            await _publish_ticks(redis_server.port, 150)
            check = live.engine.positions.check
            await wait_until(lambda: check.checked >= 100, 20)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
        finally:
            stop.set()
        check.expire()  # whatever still waited has had its fills: judge it now
        await asyncio.sleep(check.settle_s)
        check.expire()
        metrics = live.engine.metrics
        assert (check.disagreed, check.current, check.pending) == (0, 0, 0), check.pairs()
        assert check.agreed == check.checked >= 100
        assert metrics.positions_mismatched._value.get() == 0
        assert metrics.position_mismatches.labels(strategy="loop", symbol="BTCUSDT")._value.get() == 0


class TestSilentFeed:
    async def test_a_silent_feed_stops_new_orders_though_the_publisher_clock_runs_ahead(
        self, redis_server: RedisServer, nats_server: NatsServer, tmp_path: Path
    ) -> None:
        """Ticks stamped an hour ahead never age, but the live engine's risk also hears from the feed."""
        live = live_app(_config(redis_server, nats_server, tmp_path, stale_after="1s"), root=tmp_path)
        stop = asyncio.Event()
        running = asyncio.create_task(live.run(stop.wait()))
        try:
            await wait_until(lambda: feeds(live).market.connected, 10)
            risk, book = live.engine.execution.risk, live.engine.book
            order = OrderIntent(
                client_order_id="probe-1", strategy="loop", symbol="BTCUSDT", side=Side.BUY,
                order_type=OrderType.MARKET, quantity=0.01,
            )  # fmt: skip
            await _publish_ticks(redis_server.port, 3, clock_ahead_s=3600)
            await wait_until(lambda: book.reference("BTCUSDT") is not None, 10)
            assert risk.check(order) is APPROVED
            await asyncio.sleep(1.3)
            decision = risk.check(replace(order, client_order_id="probe-2"))
            assert isinstance(decision, Rejected) and decision.rule is Rule.STALE_REFERENCE_PRICE
            assert "the feed has had nothing for BTCUSDT for >= 1s" in decision.message
            await _publish_ticks(redis_server.port, 1, clock_ahead_s=3600)
            await wait_until(lambda: not feeds(live).market.health.is_stale("BTCUSDT"), 10)
            assert risk.check(replace(order, client_order_id="probe-3")) is APPROVED
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)

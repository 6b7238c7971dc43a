"""Fan-out from a real Redis feed: a runner that stops reading gets conflated data, a healthy one every tick."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from host.config import parse
from host.feeds.market import MarketDataFeed
from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, StrategyState, SupervisionSettings
from host.supervisor.process import RunnerLimits
from host.supervisor.supervisor import Supervisor
from sdk._codec import encode_market
from sdk.events import Tick
from tests.helpers import RUNNERS, wait_until
from tests.integration.test_supervisor import RecordingListener
from tests.servers import RedisServer

TICKS = 400


class TestSlowRunner:
    @pytest.mark.parametrize("lane", ["socket", "grpc"])
    async def test_lagging_runner_is_conflated_while_healthy_sees_every_tick(
        self, redis_server: RedisServer, tmp_path: Path, lane: str
    ) -> None:
        """Two symbols in bursts of 20: the healthy runner answers all 400 ticks; the slow one (50 ms a tick)
        falls past its outbox capacity and gets the latest per symbol (conflated, counted), never delays the
        healthy one, and keeps answering to the end."""
        settings = SupervisionSettings(
            plugins_dir=RUNNERS, outbox_capacity=128, transport_allowance_s=10.0, processing_timeout_s=0.5,
            limits=RunnerLimits(memory_mb=768), data_lane=lane,
        )  # fmt: skip
        definitions = [
            StrategyDefinition("healthy", "scripted", "scripted", {"every": 1}),
            StrategyDefinition("slow", "scripted", "scripted", {"mode": "slow:50", "every": 1}),
        ]
        listener = RecordingListener()
        supervisor = Supervisor(settings, definitions, listener, metrics=EngineMetrics())
        config = parse({"redis": {"port": redis_server.port, "marketDataChannels": ["market:*"]}}, environ={})
        feed = MarketDataFeed(config.redis, supervisor.publish)
        tasks = [asyncio.create_task(supervisor.run()), asyncio.create_task(feed.run())]
        try:
            await supervisor.started.wait()
            await wait_until(lambda: supervisor.ready() and feed.connected, 15)
            client = aioredis.Redis(port=redis_server.port)
            for seq in range(1, TICKS + 1):
                symbol = "BTCUSDT" if seq % 2 else "ETHUSDT"
                tick = Tick(
                    symbol=symbol,
                    timestamp_ns=1_700_000_000_000_000_000 + seq,
                    bid_price=100.0,
                    bid_size=1.0,
                    ask_price=100.1,
                    ask_size=1.0,
                    last_price=None,
                    sequence=seq,
                )
                await client.publish(f"market:{symbol.lower()}", orjson.dumps(encode_market(tick)))
                if seq % 20 == 0:  # bursts of 20: within what a healthy runner absorbs, far past a slow one
                    await asyncio.sleep(0.02)
            await client.aclose()
            await wait_until(lambda: supervisor.strategy("healthy").events_sent >= TICKS, 15)
            await wait_until(supervisor.quiescent, 30)
            healthy, slow = supervisor.strategy("healthy"), supervisor.strategy("slow")
            assert healthy.conflated == 0 and len(listener.signals_by["healthy"]) == TICKS
            assert slow.conflated > 0 and slow.events_sent < TICKS
            assert slow.events_sent + slow.conflated + slow.dropped == TICKS
            assert slow.state is StrategyState.RUNNING and slow.restarts == 0
            last = {s.metadata["seen"] for s in listener.signals_by["slow"][-2:]}
            assert str(slow.events_sent) in last  # it kept answering up to the end
        finally:
            feed.close()
            supervisor.close()
            await asyncio.wait_for(tasks[0], 20)
            tasks[1].cancel()

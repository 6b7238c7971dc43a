"""A live run: market data from Redis, fills and positions from NATS, orders to the configured venue.

Model. The same Engine as a replay (host/assembly.py) with the system clocks and live sources:
``MarketDataFeed`` hands each tick to ``Engine.on_market`` (books, paper matching in simulation
mode, then the strategies); ``FillFeed`` hands each fill to the execution engine, which stores it
once in the ledger before the feed acks it, and each position to its strategy. In ``live`` mode
orders go to the gRPC order-execution service; in ``simulation`` to an in-process paper venue;
in ``observation`` nowhere. Before anything trades, orders the ledger holds as working are
reconciled with the venue. The run lasts until SIGINT/SIGTERM (or ``shutdown``); then the feeds
stop, every runner goes down its stop ladder, and the ledger is closed. The HTTP port
(``host.http``, ``LiveEngine.http``) listens from before the strategies start until after they
have stopped, so /ready says why the engine is not ready at both ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path

import structlog

from host.assembly import Engine, build
from host.clock import SystemClock
from host.config import Config
from host.feeds.fills import FillFeed
from host.feeds.health import FeedHealth
from host.feeds.market import MarketDataFeed
from host.http import HttpServer, engine_server, readiness
from host.supervisor.supervisor import UnknownStrategy
from sdk.events import Fill, Position

__all__ = ["LiveEngine", "run_live"]

log = structlog.get_logger("host.live")


class LiveEngine:
    """An Engine with its live feeds, for ``run_live`` and for tests that drive one directly."""

    def __init__(self, config: Config, root: Path) -> None:
        from host.app import definitions, settings

        supervision, policy = settings(config, root=root)
        venue_kind = {"live": "grpc", "simulation": "paper"}.get(config.engine.mode)
        ledger_path = Path(config.engine.ledger_path)
        if not ledger_path.is_absolute():
            ledger_path = root / ledger_path
        health = FeedHealth(config.redis.stale_after, SystemClock())  # the feed's, and risk's on silent symbols
        self.engine: Engine = build(config, definitions(config), supervision, policy, ledger_path=ledger_path,
                                    clock=SystemClock(), venue_kind=venue_kind, feed=health)  # fmt: skip
        namespace = config.metrics.namespace
        registry = self.engine.metrics.registry
        self.market = MarketDataFeed(
            config.redis, self.engine.on_market, health=health, registry=registry, namespace=namespace
        )
        self.fills = FillFeed(
            config.nats, on_fill=self._on_fill, on_position=self._on_position, route=self.engine.execution.strategy_of,
            registry=registry, namespace=namespace,
        )  # fmt: skip
        self.http: HttpServer = engine_server(self.engine, brokers=self._brokers)

    async def _on_fill(self, strategy: str, fill: Fill) -> bool:
        return self.engine.execution.record_fill(fill if fill.strategy else replace(fill, strategy=strategy))

    def _on_position(self, strategy: str, position: Position) -> None:
        try:
            self.engine.supervisor.deliver(strategy, position)
        except UnknownStrategy:
            log.warning("position_for_unknown_strategy", strategy=strategy, symbol=position.symbol)

    def _brokers(self) -> dict[str, bool]:
        return {"redis": self.market.connected, "nats": self.fills.connected}

    @property
    def ready(self) -> bool:
        """Brokers connected and every strategy that should run has a Ready runner (what /ready says)."""
        return not readiness(self.engine.supervisor, self._brokers())

    async def run(self, shutdown: Awaitable[object]) -> None:
        engine = self.engine
        try:
            await self.http.start()
            async with asyncio.TaskGroup() as group:
                serving = group.create_task(engine.supervisor.run())
                await engine.execution.reconcile()
                ordering = group.create_task(engine.execution.run())
                market = group.create_task(self.market.run())
                fills = group.create_task(self.fills.run())
                await shutdown
                log.info("Shutting down strategy engine")
                self.market.close()
                await self.fills.close()
                engine.supervisor.close()
                await serving
                await engine.execution.drain(timeout_s=5.0)
                for task in (ordering, market, fills):
                    task.cancel()
        finally:
            await self.http.stop()  # last, so /ready reports the shutdown while it happens
            await engine.close()


async def run_live(config: Config, *, root: Path, shutdown: Awaitable[object] | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``shutdown``), then shut down gracefully."""
    from host.app import _default_shutdown

    stop: Awaitable[object] = shutdown if shutdown is not None else _default_shutdown().wait()
    live = LiveEngine(config, root)
    with contextlib.suppress(asyncio.CancelledError):
        await live.run(stop)

"""A live run: market data from Redis, fills and positions from NATS, orders to the configured venue.

Model. ``LiveSource`` is the live ``host.app.Source``: ``MarketDataFeed`` hands each tick to
``Engine.on_market`` (books, paper matching in simulation mode, then the strategies); ``FillFeed``
hands each fill to the execution engine, which stores it once in the ledger before the feed acks
it and tells the strategy the fill and the ledger's position after it. Each position the venue
publishes goes to ``Engine.venue_position``: compared with the ledger's, reported when it
disagrees, never handed to the strategy; the source also runs that check's periodic judging
(``VenuePositions.run``), since only a live source receives venue positions. Its ``FeedHealth`` is
given to risk when the engine is built, so a symbol the feed has gone silent on stops new orders
(arrival time on the host's clock). The source runs until it is closed (SIGINT/SIGTERM).

``live_app`` composes a live engine (``host.app.compose``, the same root as a replay) with the
system clocks and the venue ``engine.mode`` names: the gRPC order-execution service in ``live``,
an in-process paper venue in ``simulation``, none in ``observation``. Hot reload, config watching
and the HTTP port are wired there, as for every mode.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from pathlib import Path

from host.app import App, compose, default_shutdown, resolve
from host.assembly import Engine
from host.clock import SystemClock
from host.config import Config
from host.feeds.fills import FillFeed
from host.feeds.health import FeedHealth
from host.feeds.market import MarketDataFeed
from host.risk.seams import FeedView
from sdk.events import Fill, Position

__all__ = ["VENUES", "LiveSource", "live_app", "run_live"]

# What each engine.mode sends orders to in a live run.
VENUES: Mapping[str, str | None] = {"live": "grpc", "simulation": "paper", "observation": None}


class LiveSource:
    """Redis market data and NATS fills and positions, until closed."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.health = FeedHealth(config.redis.stale_after, SystemClock())
        self.market: MarketDataFeed | None = None
        self.fills: FillFeed | None = None
        self._engine: Engine | None = None
        self._closed = asyncio.Event()

    @property
    def feed(self) -> FeedView | None:
        return self.health

    def bind(self, engine: Engine) -> None:
        config, registry, namespace = self.config, engine.metrics.registry, self.config.metrics.namespace
        self._engine = engine
        labels = engine.metrics.labels
        self.market = MarketDataFeed(config.redis, engine.on_market, health=self.health, registry=registry,
                                     namespace=namespace, labels=labels)  # fmt: skip
        self.fills = FillFeed(
            config.nats, on_fill=self._on_fill, on_position=self._on_position, route=engine.execution.strategy_of,
            registry=registry, namespace=namespace, labels=labels, on_subscribed=engine.execution.venue_back,
        )  # fmt: skip

    def brokers(self) -> Mapping[str, bool]:
        if self.market is None or self.fills is None:
            return {"redis": False, "nats": False}
        return {"redis": self.market.connected, "nats": self.fills.connected}

    async def run(self, engine: Engine) -> None:
        assert self.market is not None and self.fills is not None, "bind() first"
        async with asyncio.TaskGroup() as group:
            group.create_task(self.market.run())
            group.create_task(self.fills.run())
            group.create_task(engine.positions.run(self._closed))

    async def close(self) -> None:
        self._closed.set()
        if self.market is not None:
            self.market.close()
        if self.fills is not None:
            await self.fills.close()

    async def _on_fill(self, strategy: str, fill: Fill) -> bool:
        assert self._engine is not None
        return self._engine.execution.record_fill(fill if fill.strategy else replace(fill, strategy=strategy))

    def _on_position(self, strategy: str, position: Position) -> None:
        assert self._engine is not None
        self._engine.venue_position(strategy, position)


def live_app(config: Config, *, root: Path, config_path: Path | None = None, ledger_path: Path | None = None) -> App:
    """A live engine composed from ``config``; ``config_path`` is the file the config watcher follows.

    The ledger is ``ledger_path`` when given (``--ledger``), else ``engine.ledgerPath`` (default
    ``var/ledger.sqlite``) relative to ``root``.
    """
    ledger = ledger_path or resolve(config.engine.ledger_path or "var/ledger.sqlite", root)
    return compose(config, LiveSource(config), clock=SystemClock(), venue_kind=VENUES[config.engine.mode],
                   ledger_path=ledger, root=root, config_path=config_path)  # fmt: skip


async def run_live(
    config: Config, *, root: Path, config_path: Path | None = None, ledger_path: Path | None = None,
    shutdown: Awaitable[object] | None = None,
) -> None:  # fmt: skip
    """Run until SIGINT/SIGTERM (or ``shutdown``), then shut down gracefully."""
    stop: Awaitable[object] = shutdown if shutdown is not None else default_shutdown()
    app = live_app(config, root=root, config_path=config_path, ledger_path=ledger_path)
    with contextlib.suppress(asyncio.CancelledError):
        await app.run(stop)

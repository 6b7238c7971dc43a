"""A real Engine with its HTTP server on a free port, for the HTTP and status-page tests.

The engine is composed the way every run is (``host.app.compose`` with the system clock and the
in-process paper venue, simulation mode) over scripted runners from tests/runners, and run by
``App.run``; its source is ``HandFed``: the test hands market data to ``Engine.on_market`` itself
(the Redis feed has tests of its own). The HTTP server is ``host.http.engine_server`` over that
engine, started by the stack so a test can watch the engine before it runs. Requests go through a
real aiohttp client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from host.app import App, compose
from host.assembly import Engine
from host.clock import SystemClock
from host.config import Config, parse
from host.http import EngineControls, HttpServer, build_status, engine_server, readiness
from host.supervisor.managed import StrategyState
from sdk.events import Tick
from tests.helpers import RUNNERS, wait_until

__all__ = ["DEFAULT_STRATEGIES", "MAX_POSITION", "Reconciled", "Reply", "Stack", "engine_config", "running_stack"]

DEFAULT_STRATEGIES: Mapping[str, Mapping[str, Any]] = {
    "alpha": {"plugin": "scripted", "strategy": "scripted", "symbols": ["BTCUSDT"], "parameters": {"every": 2}},
    "beta": {"plugin": "scripted", "strategy": "scripted", "symbols": ["ETHUSDT"], "parameters": {"every": 1000}},
    "broken": {"plugin": "broken_import", "strategy": "broken"},  # fails to load: breaker held open
}
# The scripted strategy answers every fill with another buy and market orders fill on arrival, so
# without a cap it would trade on its own; at the cap every further buy is rejected by risk.
MAX_POSITION = 3
SETTLED = {"alpha": StrategyState.RUNNING, "beta": StrategyState.RUNNING, "broken": StrategyState.OPEN}


@dataclass(frozen=True)
class Reconciled:
    """What ``ExecutionEngine.last_reconcile`` holds after a reconciliation (its fields, as the engine names them).

    A test sets one on the engine's execution to see /status and the page show it.
    """

    at_ns: int
    trigger: str
    checked: int
    closed: int
    resent: int
    reconciled_fills: int
    unavailable: int


def engine_config(
    tmp_path: Path, *, strategies: Mapping[str, Mapping[str, Any]] = DEFAULT_STRATEGIES, token: str = ""
) -> Config:
    return parse(
        {
            "server": {"port": 0, "authToken": token, "readTimeout": "2s", "writeTimeout": "2s"},
            "engine": {
                "mode": "simulation", "pluginsDir": str(RUNNERS), "ledgerPath": str(tmp_path / "ledger.sqlite"),
                "hotReload": False, "watchConfig": False, "handshakeTimeout": "5s", "stopGrace": "1s",
                "runnerMemoryMb": 768,
            },
            "risk": {
                "maxOrdersPerSecond": 1000, "maxOrdersPerMinute": 100000, "maxPositionSize": MAX_POSITION,
                "maxOrderQuantity": 10, "maxOrderValue": 1_000_000, "maxPortfolioNotional": 1e9,
            },
            "strategies": dict(strategies),
        },
        environ={},
    )  # fmt: skip


class Reply:
    """One HTTP answer: status, headers, body (parsed when JSON)."""

    def __init__(self, status: int, headers: Mapping[str, str], text: str, data: Any) -> None:
        self.status = status
        self.headers = headers
        self.text = text
        self.data = data

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.text[:300]!r}>"


class HandFed:
    """The stack's source: no brokers; the test hands events to the engine; runs until closed."""

    feed = None

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    def bind(self, engine: Engine) -> None:
        pass

    def brokers(self) -> Mapping[str, bool]:
        return {}

    async def run(self, engine: Engine) -> None:
        await self._closed.wait()

    async def close(self) -> None:
        self._closed.set()


class Stack:
    """An engine, its HTTP server and a client."""

    def __init__(self, app: App, server: HttpServer, client: aiohttp.ClientSession) -> None:
        self.app = app
        self.engine = app.engine
        self.server = server
        self.client = client
        self.running: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.seq = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def start(self) -> None:
        """Run the app (the strategies boot in the background)."""
        self.running = asyncio.create_task(self.app.run(self._stop.wait()))
        await asyncio.wait_for(self.engine.supervisor.started.wait(), 10)

    async def settled(self, states: Mapping[str, StrategyState] = SETTLED) -> None:
        supervisor = self.engine.supervisor
        await wait_until(lambda: all(supervisor.strategy(s).state is state for s, state in states.items()), 15)

    async def stop(self) -> None:
        """Stop the app the way SIGTERM does; one never started only closes its engine."""
        if self.running is None:
            await self.engine.close()
            return
        self._stop.set()
        await asyncio.wait_for(self.running, 20)

    async def request(self, method: str, path: str, *, token: str | None = None, body: Any = None,
                      raw: bytes | None = None, headers: Mapping[str, str] | None = None) -> Reply:  # fmt: skip
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": sent}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.client.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            data = await response.json() if response.content_type == "application/json" else None
            return Reply(response.status, dict(response.headers), text, data)

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return await self.request("POST", path, body=body, **kwargs)

    async def status_of(self, strategy: str) -> dict[str, Any]:
        reply = await self.get("/status")
        assert reply.status == 200, reply
        return next(s for s in reply.data["strategies"] if s["id"] == strategy)  # type: ignore[no-any-return]

    def tick(self, symbol: str = "BTCUSDT") -> None:
        """One fresh tick through the engine (books, paper matching, strategies)."""
        self.seq += 1
        self.engine.on_market(
            Tick(
                symbol=symbol,
                timestamp_ns=time.time_ns(),
                bid_price=100.0,
                bid_size=5.0,
                ask_price=100.1,
                ask_size=5.0,
                last_price=100.05,
                sequence=self.seq,
            )
        )

    async def feed_until(self, predicate: Callable[[], bool], timeout: float = 15.0, symbol: str = "BTCUSDT") -> None:
        def step() -> bool:
            self.tick(symbol)
            return predicate()

        await wait_until(step, timeout, interval=0.02)


@asynccontextmanager
async def running_stack(
    config: Config, tmp_path: Path, *, start: bool = True,
    brokers: Callable[[], Mapping[str, bool]] = dict,
    status_filter: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> AsyncIterator[Stack]:  # fmt: skip
    """An engine of ``config`` with its HTTP server listening; with ``start``, strategies settled.

    ``status_filter`` rewrites each /status document before it is served (the page tests use it to
    put hostile text where a strategy's error would be).
    """
    app = compose(config, HandFed(), clock=SystemClock(), venue_kind="paper",
                  ledger_path=Path(config.engine.ledger_path), root=tmp_path, http=False)  # fmt: skip
    engine = app.engine
    if status_filter is None:
        server = engine_server(engine, brokers=brokers, reloader=app.reloader)
    else:
        started = time.monotonic()
        server = HttpServer(
            config.server, config.metrics.path, ready=lambda: readiness(engine.supervisor, brokers(), engine.venue),
            status=lambda: status_filter(build_status(engine, uptime_s=time.monotonic() - started,
                                                       brokers=brokers())),
            controls=EngineControls(engine), registry=engine.metrics.registry,
        )  # fmt: skip
    await server.start()
    stack = Stack(app, server, aiohttp.ClientSession())
    try:
        if start:
            await stack.start()
            await stack.settled({s: SETTLED.get(s, StrategyState.RUNNING) for s in config.strategies})
        yield stack
    finally:
        await stack.stop()
        await stack.client.close()
        await server.stop()

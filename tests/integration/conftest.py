"""Fixtures for tests with real runner processes over a real RunnerLink socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from host.link import Inbound, LinkServer, Registration
from host.session import RunnerSession
from host.supervisor.process import RunnerLaunch, RunnerLimits, RunnerProcess, end_runner, spawn_runner
from tests.helpers import RUNNERS, kill_quietly, pid_alive
from tests.servers import NatsServer, RedisServer


@dataclass
class LiveRunner:
    process: RunnerProcess
    registration: Registration
    inbox: asyncio.Queue[Inbound]
    session: RunnerSession | None = None


class RunnerHarness:
    """Spawns real runners against one LinkServer and makes sure none outlives the test.

    ``data_lane``: each runner gets a data lane for its batches (``host.lane``), or batches ride the stream.
    """

    def __init__(self, link: LinkServer, data_lane: bool = True) -> None:
        self.link = link
        self.data_lane = data_lane
        self.live: list[LiveRunner] = []

    async def spawn(
        self,
        plugin: str | Path,
        strategies: Sequence[Mapping[str, Any]] = ({"id": "s1", "name": "scripted", "params": {}},),
        *,
        limits: RunnerLimits | None = None,
        user: tuple[int, int] | None = None,
    ) -> LiveRunner:
        path = plugin if isinstance(plugin, Path) else RUNNERS / plugin
        inbox: asyncio.Queue[Inbound] = asyncio.Queue()
        launch = RunnerLaunch(
            runner_id=f"r{len(self.live) + 1}", plugin=path,
            strategies=[dict(s) for s in strategies], limits=limits or RunnerLimits(), user=user,
            data_lane=self.data_lane,
        )  # fmt: skip
        process, registration = await spawn_runner(launch, self.link, inbox)
        live = LiveRunner(process, registration, inbox)
        self.live.append(live)
        return live

    async def connect(self, live: LiveRunner, timeout: float = 10.0) -> RunnerSession:
        connection = await asyncio.wait_for(asyncio.shield(live.registration.connected), timeout)
        live.session = RunnerSession(live.registration.runner_id, live.inbox, connection, lane=live.process.lane)
        return live.session

    async def ready(
        self, plugin: str | Path = "scripted", params: Mapping[str, Any] | None = None, *,
        restore: Mapping[str, bytes] | None = None, limits: RunnerLimits | None = None,
    ) -> tuple[LiveRunner, RunnerSession]:  # fmt: skip
        """A runner of one ``scripted`` strategy ``s1`` with ``params``, past its handshake."""
        live = await self.spawn(plugin, [{"id": "s1", "name": "scripted", "params": dict(params or {})}], limits=limits)
        session = await self.connect(live)
        await session.handshake(restore or {}, timeout_s=10.0)
        return live, session

    async def close(self) -> None:
        for live in self.live:
            await end_runner(live.process, live.session, grace_s=2.0)
            await live.process.aclose()
            if pid_alive(live.process.pid):
                kill_quietly(live.process.pid)
                raise AssertionError(f"runner {live.process.pid} survived the test")


@pytest.fixture
async def link(tmp_path: Path) -> AsyncIterator[LinkServer]:
    server = LinkServer(tmp_path / "link")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def data_lane() -> str:
    """Where batches travel: "socket" (the default) or "grpc"; a module overrides it to run both."""
    return "socket"


@pytest.fixture
async def runners(link: LinkServer, data_lane: str) -> AsyncIterator[RunnerHarness]:
    harness = RunnerHarness(link, data_lane == "socket")
    yield harness
    await harness.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free port of its own."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server (core NATS) on a free port of its own."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def publisher(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """A client of ``redis_server`` for a test to publish market data with."""
    client = redis.asyncio.Redis(port=redis_server.port)
    yield client
    await client.aclose()


@pytest.fixture
def jetstream_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream, its store in the test's temp dir."""
    server = NatsServer(tmp_path / "nats-js", jetstream=True)
    server.start()
    yield server
    server.stop()

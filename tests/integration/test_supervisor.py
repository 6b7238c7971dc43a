"""The supervisor keeps healthy strategies trading while another one misbehaves in every way we know.

Each case runs a real Supervisor with two healthy strategies and one scripted misbehaving one
(tests/runners/scripted), feeds ticks at a steady rate, and checks: the misbehaving strategy
ends in the expected breaker state with the expected restart count; the healthy ones never
wait longer than one deadline between answers; the host's memory stays bounded; no runner
process outlives the supervisor.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, StrategyState, SupervisionSettings
from host.supervisor.policy import BreakerPolicy, BreakerState
from host.supervisor.process import RunnerLimits
from host.supervisor.supervisor import Supervisor
from sdk.events import Cancel, Position, Signal
from tests.helpers import RUNNERS, runner_pids, tick_events, wait_until

SECRET = "STRATEGY_ENGINE_TEST_SECRET"
HEALTHY = ("healthy_a", "healthy_b")


@dataclass
class RecordingListener:
    """Records what the supervisor reports, with arrival times per strategy."""

    signals_by: dict[str, list[Signal]] = field(default_factory=dict)
    answered_at: dict[str, list[float]] = field(default_factory=dict)
    down: list[tuple[str, str]] = field(default_factory=list)
    held: dict[str, list[Position]] = field(default_factory=dict)

    def signals(self, strategy_id: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        self.signals_by.setdefault(strategy_id, []).extend(signals)
        self.answered_at.setdefault(strategy_id, []).append(time.monotonic())

    def strategy_down(self, strategy_id: str, reason: str) -> None:
        self.down.append((strategy_id, reason))

    def strategy_up(self, strategy_id: str) -> None:
        pass

    def positions(self, strategy_id: str) -> list[Position]:
        return self.held.get(strategy_id, [])

    def max_gap(self, strategy_id: str) -> float:
        times = self.answered_at.get(strategy_id, [])
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


POLICY = BreakerPolicy(consecutive_failures=5, backoff_initial_s=0.05, backoff_max_s=0.2, jitter=0.0, restart_budget=2)


def _settings(tmp_path: Path, **overrides: Any) -> SupervisionSettings:
    base: dict[str, Any] = {
        "plugins_dir": RUNNERS,
        "transport_allowance_s": 0.3,
        "processing_timeout_s": 0.005,
        "handshake_timeout_s": 3.0,
        "stop_grace_s": 1.0,
        "heartbeat_interval_s": 1.0,
        "limits": RunnerLimits(memory_mb=768),
    }
    base.update(overrides)
    return SupervisionSettings(**base)


@pytest.fixture
async def loopback_listener() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A TCP listener on 127.0.0.1 owned by the test; records anything that connects."""
    received: list[bytes] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(100) or b"<connected>")
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, received
    server.close()
    await server.wait_closed()


@dataclass(frozen=True)
class Case:
    mode: str
    state: BreakerState
    restarts: int
    check: Callable[[Supervisor, RecordingListener, dict[str, Any]], None] | None = None


def _exit_seen(text: str) -> Callable[[Supervisor, RecordingListener, dict[str, Any]], None]:
    def check(sup: Supervisor, listener: RecordingListener, ctx: dict[str, Any]) -> None:
        status = sup.strategy("bad")
        assert text in status.last_exit + status.last_error, (status.last_exit, status.last_error)

    return check


def _error_seen(text: str) -> Callable[[Supervisor, RecordingListener, dict[str, Any]], None]:
    def check(sup: Supervisor, listener: RecordingListener, ctx: dict[str, Any]) -> None:
        assert text in sup.strategy("bad").last_error, sup.strategy("bad").last_error

    return check


def _no_connection(sup: Supervisor, listener: RecordingListener, ctx: dict[str, Any]) -> None:
    assert ctx["received"] == [], "a runner reached the loopback listener"
    assert "Error" in sup.strategy("bad").last_error


def _no_secret(sup: Supervisor, listener: RecordingListener, ctx: dict[str, Any]) -> None:
    found = [json.loads(s.metadata["found"]) for s in listener.signals_by.get("bad", []) if "found" in s.metadata]
    assert found, "the strategy reported nothing"
    assert all(not f["environ"] for f in found), found
    assert all(not f.get("proc") for f in found), found


def _flood_bounded(sup: Supervisor, listener: RecordingListener, ctx: dict[str, Any]) -> None:
    status = sup.strategy("bad")
    assert status.signals_dropped > 0, status
    assert len(listener.signals_by.get("bad", [])) <= status.events_sent * 1000


CASES = [
    Case("raise", BreakerState.OPEN, 2, _error_seen("scripted failure")),
    Case("raise_once", BreakerState.CLOSED, 0, _error_seen("scripted failure, once")),
    Case("hang", BreakerState.OPEN, 2, _error_seen("deadline")),
    Case("busy", BreakerState.OPEN, 2, _error_seen("deadline")),
    Case("exit:3", BreakerState.OPEN, 2, _exit_seen("exited with code 3")),
    Case("segv", BreakerState.OPEN, 2, _exit_seen("SIGSEGV")),
    Case("eat_memory", BreakerState.OPEN, 2, None),
    Case("ignore_sigterm", BreakerState.OPEN, 2, _error_seen("deadline")),
    Case("never_ready", BreakerState.OPEN, 2, None),
    Case("flood:2000", BreakerState.OPEN, 2, _flood_bounded),
    Case("connect_tcp", BreakerState.OPEN, 2, _no_connection),
    Case("read_secrets", BreakerState.CLOSED, 0, _no_secret),
    Case("kill_parent", BreakerState.OPEN, 2, _error_seen("Error")),
]


class TestMisbehaviour:
    @pytest.mark.parametrize("lane", ["socket", "grpc"])
    @pytest.mark.parametrize("case", CASES, ids=[c.mode for c in CASES])
    async def test_bad_strategy_is_contained(
        self, case: Case, lane: str, tmp_path: Path, loopback_listener: tuple[int, list[bytes]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:  # fmt: skip
        """The misbehaving strategy ends as expected; the healthy ones answer within a deadline (either lane)."""
        port, received = loopback_listener
        monkeypatch.setenv(SECRET, "hunter2")
        params = {"mode": case.mode, "port": port, "host_pid": os.getpid(), "secret_name": SECRET}
        definitions = [StrategyDefinition(sid, "scripted", "scripted", {}) for sid in HEALTHY]
        definitions.append(StrategyDefinition("bad", "scripted", "scripted", params))
        listener = RecordingListener()
        settings = _settings(tmp_path, handshake_timeout_s=1.0 if case.mode == "never_ready" else 3.0, data_lane=lane)
        supervisor = Supervisor(settings, definitions, listener, metrics=EngineMetrics(), breaker_policy=POLICY)
        rss_before = _rss_mb()
        task = asyncio.create_task(supervisor.run())
        await supervisor.started.wait()
        await wait_until(lambda: all(supervisor.strategy(s).state is StrategyState.RUNNING for s in HEALTHY), 10)
        listener.answered_at.clear()

        def settled() -> bool:
            status = supervisor.strategy("bad")
            if case.state is BreakerState.OPEN:
                return status.breaker.state is BreakerState.OPEN and status.state is StrategyState.OPEN
            return status.events_sent >= 50

        feed = tick_events(5000)
        deadline = time.monotonic() + 30
        i = 0
        while not settled():
            assert time.monotonic() < deadline, f"{case.mode}: never settled: {supervisor.strategy('bad')}"
            supervisor.publish(feed[i % len(feed)])
            i += 1
            await asyncio.sleep(0.005)
        for _ in range(40):  # the healthy keep going after the bad one settled
            supervisor.publish(feed[i % len(feed)])
            i += 1
            await asyncio.sleep(0.005)

        status = supervisor.strategy("bad")
        assert status.breaker.state is case.state, status
        assert status.restarts == case.restarts, status
        if case.check is not None:
            case.check(supervisor, listener, {"received": received})
        limit = settings.deadline(1) + 0.3
        for sid in HEALTHY:
            healthy = supervisor.strategy(sid)
            assert healthy.state is StrategyState.RUNNING and healthy.restarts == 0 and healthy.errors == 0
            assert listener.max_gap(sid) < limit, f"{sid} waited {listener.max_gap(sid):.3f} s (limit {limit:.3f})"
        assert _rss_mb() - rss_before < 200, "host memory grew by more than 200 MB"

        supervisor.close()
        await asyncio.wait_for(task, 20)
        assert runner_pids(supervisor.link.socket_path) == []


class TestBootErrors:
    async def test_missing_plugin_folder_is_a_boot_error(self, tmp_path: Path) -> None:
        """A strategy whose package folder does not exist is held open as a boot error; others run."""
        definitions = [
            StrategyDefinition("healthy", "scripted", "scripted", {}),
            StrategyDefinition("ghost", "no_such_package", "ghost", {}),
        ]
        listener = RecordingListener()
        supervisor = Supervisor(
            _settings(tmp_path), definitions, listener, metrics=EngineMetrics(), breaker_policy=POLICY
        )
        task = asyncio.create_task(supervisor.run())
        await supervisor.started.wait()
        await wait_until(lambda: supervisor.strategy("ghost").state is StrategyState.OPEN, 10)
        await wait_until(lambda: supervisor.strategy("healthy").state is StrategyState.RUNNING, 10)
        ghost = supervisor.strategy("ghost")
        assert ghost.restarts == 0
        assert "no_such_package" in ghost.breaker.last_reason
        supervisor.close()
        await asyncio.wait_for(task, 20)


class _MemoryStore:
    def __init__(self) -> None:
        self.states: dict[str, bytes] = {}

    def load_state(self, strategy_id: str) -> bytes | None:
        return self.states.get(strategy_id)

    def save_state(self, strategy_id: str, state: bytes) -> None:
        self.states[strategy_id] = state


class TestStateAcrossRestarts:
    async def test_state_saved_at_shutdown_is_restored_at_the_next_start(self, tmp_path: Path) -> None:
        """A host that shuts down keeps each strategy's on_save state; the next host's first runner resumes it."""
        store = _MemoryStore()
        assert await _run_five_ticks(tmp_path, store) == "1"
        assert await _run_five_ticks(tmp_path, store) == "6"
        assert json.loads(store.states["s"]) == {"seen": 10}


async def _run_five_ticks(tmp_path: Path, store: _MemoryStore) -> str:
    """One host lifetime: start, five ticks, shut down; the first signal's ``seen``."""
    listener = RecordingListener()
    definitions = [StrategyDefinition("s", "scripted", "scripted", {})]
    supervisor = Supervisor(
        _settings(tmp_path), definitions, listener, metrics=EngineMetrics(), breaker_policy=POLICY, state_store=store
    )
    task = asyncio.create_task(supervisor.run())
    await wait_until(lambda: supervisor.ready() and bool(supervisor.status()), 10)
    for event in tick_events(5):
        supervisor.publish(event)
    await wait_until(lambda: len(listener.signals_by.get("s", [])) == 5, 10)
    supervisor.close()
    await asyncio.wait_for(task, 20)
    return listener.signals_by["s"][0].metadata["seen"]

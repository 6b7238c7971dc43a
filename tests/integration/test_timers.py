"""Timers through real runners: scheduled in on_start and in handlers, fired live and in a replay.

The test plugin ``clocked`` schedules ``beat`` every ``seconds`` in ``on_start`` (and, with
``at_offset_s``, ``once`` on its first tick) and answers every firing with a signal whose metadata
names the timer, its time and the strategy's clock then, so what fired and when is read off the
signals (in-process: the supervisor's listener; as a subprocess: the ledger's orders). With
``greedy`` it asks for that many timers on its first tick; its ``on_start`` also names a timer
after its process id, so a replacement runner's schedule can be told from its predecessor's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, StrategyState, SupervisionSettings
from host.supervisor.policy import BreakerPolicy
from host.supervisor.process import RunnerLimits
from host.supervisor.supervisor import Supervisor
from tests.helpers import tick_events, wait_until
from tests.integration.operator_stack import OperatorStack, poll_until
from tests.integration.test_cli import _env, write_ticks
from tests.integration.test_supervisor import RecordingListener
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

S = 1_000_000_000

CLOCKED = '''"""Test plugin: timers scheduled in on_start and on the first tick, each firing answered with a signal."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sdk import Signal, Strategy, StrategyConfig, Tick, Timer, hookimpl


@dataclass(frozen=True)
class ClockedConfig(StrategyConfig):
    seconds: float = 1.0
    at_offset_s: float = 0.0
    greedy: int = 0


class Clocked(Strategy[ClockedConfig]):
    name = "clocked"
    Config = ClockedConfig

    def __init__(self, config: ClockedConfig) -> None:
        super().__init__(config)
        self.ticks = 0

    def on_start(self) -> None:
        self.every("beat", self.config.seconds)
        self.at(f"pid-{os.getpid()}", 2**62)  # never fires: names this runner's schedule

    def on_tick(self, tick: Tick) -> None:
        self.ticks += 1
        if self.ticks == 1 and self.config.at_offset_s:
            self.at("once", tick.timestamp_ns + round(self.config.at_offset_s * 1e9))
        if self.ticks == 1 and self.config.greedy:
            for i in range(self.config.greedy):
                self.at(f"g{i}", 2**62)

    def on_timer(self, timer: Timer) -> None:
        self.emit(Signal(symbol="BTCUSDT", side="buy", quantity=0.001, metadata={
            "timer": timer.name, "at": str(timer.timestamp_ns), "now": str(self.now_ns), "pid": str(os.getpid()),
        }))


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[ClockedConfig]]]:
    return [Clocked]
'''


def write_plugin(plugins: Path) -> None:
    (plugins / "clocked").mkdir(parents=True)
    (plugins / "clocked" / "__init__.py").write_text(CLOCKED)


def settings(plugins: Path) -> SupervisionSettings:
    return SupervisionSettings(
        plugins_dir=plugins, handshake_timeout_s=5.0, stop_grace_s=1.0, heartbeat_interval_s=1.0,
        limits=RunnerLimits(memory_mb=768), timer_limit=10,
    )  # fmt: skip


async def running(tmp_path: Path, **params: Any) -> tuple[Supervisor, RecordingListener, asyncio.Task[None]]:
    write_plugin(tmp_path / "plugins")
    listener = RecordingListener()
    definition = StrategyDefinition("t", "clocked", "clocked", {"symbols": ["BTCUSDT"], **params})
    policy = BreakerPolicy(backoff_initial_s=0.05, jitter=0.0)
    supervisor = Supervisor(settings(tmp_path / "plugins"), [definition], listener, metrics=EngineMetrics(),
                            breaker_policy=policy)  # fmt: skip
    task = asyncio.create_task(supervisor.run())
    await wait_until(lambda: supervisor.knows("t") and supervisor.strategy("t").state is StrategyState.RUNNING, 10)
    return supervisor, listener, task


async def closed(supervisor: Supervisor, task: asyncio.Task[None]) -> None:
    supervisor.close()
    async with asyncio.timeout(15):
        await task


def fired(listener: RecordingListener, name: str = "beat") -> list[dict[str, str]]:
    return [dict(s.metadata) for s in listener.signals_by.get("t", []) if s.metadata.get("timer") == name]


class TestLiveSupervisor:
    async def test_a_timer_asked_for_in_on_start_fires_with_no_market_data(self, tmp_path: Path) -> None:
        """on_start's every() reaches the host with no event ever sent, and fires on the wall clock, no drift."""
        supervisor, listener, task = await running(tmp_path, seconds=0.1)
        try:
            await wait_until(lambda: len(fired(listener)) >= 5, 10)
            times = [int(f["at"]) for f in fired(listener)]
            assert all(b - a == S // 10 for a, b in itertools.pairwise(times))
            assert all(f["now"] == f["at"] for f in fired(listener))  # the strategy's clock is the timer's time
            assert supervisor.strategy("t").events_sent >= 5
        finally:
            await closed(supervisor, task)

    async def test_a_new_runner_starts_with_only_its_own_timers(self, tmp_path: Path) -> None:
        """A restart drops the old runner's schedule; the new on_start asks again and only that is kept."""
        supervisor, listener, task = await running(tmp_path, seconds=0.1)
        try:
            await wait_until(lambda: any(n.startswith("pid-") for n in supervisor.timers.names("t")), 10)
            [old] = [n for n in supervisor.timers.names("t") if n.startswith("pid-")]
            pid = supervisor.strategy("t").pid
            supervisor.restart("t")
            await wait_until(lambda: supervisor.strategy("t").pid not in (None, pid), 10)
            new = f"pid-{supervisor.strategy('t').pid}"
            await wait_until(lambda: new in supervisor.timers.names("t"), 10)
            assert supervisor.timers.names("t") == ["beat", new] and old != new
            await wait_until(lambda: any(f["pid"] == new[4:] for f in fired(listener)), 10)
        finally:
            await closed(supervisor, task)

    async def test_a_paused_strategys_timers_are_dropped_when_they_fall_due(self, tmp_path: Path) -> None:
        """No firing reaches a strategy that is not running: its schedule goes (resume starts a new runner)."""
        supervisor, listener, task = await running(tmp_path, seconds=0.1)
        try:
            await wait_until(lambda: len(fired(listener)) >= 1, 10)
            supervisor.pause("t")
            await wait_until(lambda: supervisor.timers.names("t") == [], 10)
            assert supervisor.strategy("t").state is StrategyState.PAUSED
        finally:
            await closed(supervisor, task)

    async def test_more_timers_than_the_limit_is_a_bad_signal_error(self, tmp_path: Path) -> None:
        """Past timer_limit (10 here, with beat and pid-) the request is refused and charged as bad_signal."""
        supervisor, _, task = await running(tmp_path, seconds=60.0, greedy=9)
        try:
            for event in tick_events(1):
                supervisor.publish(event)
            await wait_until(lambda: supervisor.strategy("t").errors >= 1, 10)
            status = supervisor.strategy("t")
            assert "timer 'g8': more than 10 timers for one strategy" in status.last_error
            assert len(supervisor.timers.names("t")) == 10
        finally:
            await closed(supervisor, task)


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "host.cli", *map(str, args)], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=90)  # fmt: skip


def test_replay_fires_timers_on_the_replay_clock(tmp_path: Path) -> None:
    """strategy-engine run --replay: every period of on_start's timer from the first event fires at its own
    time (the strategy's clock there), and the at() asked on the first tick fires once, stamped with its time
    (its request reached the host with a batch result, behind the feed: it is not asserted when it was handled)."""
    write_plugin(tmp_path / "plugins")
    config = {
        "engine": {"pluginsDir": "plugins", "handshakeTimeout": "5s", "stopGrace": "1s"},
        "risk": {"maxOrdersPerSecond": 100000, "maxOrdersPerMinute": 1000000, "maxPositionSize": 1000},
        "strategies": {"t": {"plugin": "clocked", "strategy": "clocked", "symbols": ["BTCUSDT"],
                             "parameters": {"seconds": 1.0, "at_offset_s": 2.5}}},
    }  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    ticks = write_ticks(tmp_path / "ticks.jsonl", 600)  # 250 ms apart: 149.75 s of data
    ledger = tmp_path / "ledger.sqlite"
    result = cli("run", "--config", tmp_path / "config.yaml", "--replay", ticks, "--ledger", ledger, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    first = json.loads(ticks.read_text().splitlines()[0])
    db = sqlite3.connect(ledger)
    metadata = [json.loads(m) for (m,) in db.execute("SELECT metadata FROM orders ORDER BY created_ns")]
    db.close()
    from sdk._codec import parse_timestamp

    t0 = parse_timestamp("tick", first["timestamp"])
    beats = [m for m in metadata if m["timer"] == "beat"]
    assert [int(m["at"]) for m in beats] == [t0 + k * S for k in range(1, 150)]
    assert all(m["now"] == m["at"] for m in beats)
    assert [int(m["at"]) for m in metadata if m["timer"] == "once"] == [t0 + 2 * S + S // 2]


def test_live_engine_fires_on_start_timers_without_market_data(
    tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer
) -> None:
    """strategy-engine run live with no tick published: on_start's timer fires on the engine's clock."""
    stack = OperatorStack(tmp_path / "project", redis_server, nats_server)
    stack.publisher = SimpleNamespace(stop=lambda: None, sent=0)  # type: ignore[assignment]  # no market data
    write_plugin(stack.plugins)
    stack.config["strategies"] = {
        "t": {"plugin": "clocked", "strategy": "clocked", "symbols": ["BTCUSDT"], "parameters": {"seconds": 0.2}},
    }
    try:
        stack.write_config()
        stack.start_venue()
        stack.start_engine(ready=("t",))
        # Each firing answers with a signal (risk refuses the orders: no market price to check them against).
        poll_until(lambda: (stack.strategy("t") or {}).get("signals", 0) >= 3, 20, f"timer signals ({stack.tail()})")
    finally:
        stack.stop()

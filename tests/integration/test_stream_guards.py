"""Hostile runners under a real Supervisor: what they send, print and raise stays bounded and named.

Each test runs real runner processes (tests/runners/scripted) beside a healthy one and checks the
host's side: a runner flooding its stream is charged and ended with the host log bounded; a line
of output far over any buffer does not stop the host reading; forged symbols land in the metric
label ``other``; ``sys.exit`` in a plugin's hook is one boot error whose cause ``/status`` names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import generate_latest

from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, StrategyState
from host.supervisor.policy import BreakerPolicy
from host.supervisor.supervisor import Supervisor
from tests.helpers import runner_pids, tick_events, wait_until
from tests.integration.test_supervisor import POLICY, RecordingListener, _settings


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start a Supervisor over ``healthy`` plus the given definitions; closed (no runner left) after the test."""
    started: list[tuple[Supervisor, asyncio.Task[None]]] = []

    async def start(
        *definitions: StrategyDefinition,
        metrics: EngineMetrics | None = None,
        policy: BreakerPolicy = POLICY,
        **settings: Any,
    ) -> Supervisor:
        all_definitions = [StrategyDefinition("healthy", "scripted", "scripted", {}), *definitions]
        supervisor = Supervisor(
            _settings(tmp_path, **settings), all_definitions, RecordingListener(), metrics=metrics or EngineMetrics(),
            breaker_policy=policy,
        )  # fmt: skip
        task = asyncio.create_task(supervisor.run())
        started.append((supervisor, task))
        await supervisor.started.wait()
        return supervisor

    yield start
    for supervisor, task in started:
        supervisor.close()
        await asyncio.wait_for(task, 20)
        assert runner_pids(supervisor.link.socket_path) == []


async def _feed_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Publish ticks at a steady rate until ``done``."""
    feed = tick_events(5000)
    deadline = time.monotonic() + timeout
    i = 0
    while not done():
        assert time.monotonic() < deadline, f"never settled: {supervisor.status()}"
        supervisor.publish(feed[i % len(feed)])
        i += 1
        await asyncio.sleep(0.005)


def _listener(supervisor: Supervisor) -> RecordingListener:
    listener = supervisor.listener
    assert isinstance(listener, RecordingListener)
    return listener


class TestStreamFlood:
    async def test_flood_is_charged_and_ended_with_the_log_bounded(self, host: Callable[..., Any]) -> None:
        """A runner writing 60 KB junk results in a loop is charged as ``protocol``, ended, and its
        breaker opens after the restart budget; the host logs a bounded number of lines about it."""
        with structlog.testing.capture_logs() as logs:
            supervisor = await host(StrategyDefinition("bad", "scripted", "scripted", {"mode": "flood_results"}))

            def opened() -> bool:
                return supervisor.strategy("bad").state is StrategyState.OPEN

            await _feed_until(supervisor, opened)
            bad = supervisor.strategy("bad")
        assert bad.state is StrategyState.OPEN, bad
        assert bad.breaker.failures_by_kind["protocol"] == 3, bad.breaker.failures_by_kind
        assert "flooded its stream" in bad.last_error, bad.last_error
        strays = [e for e in logs if e["event"] in ("runner_late_reply_dropped", "runner_unexpected_message")]
        assert 0 < len(strays) <= 3 * 2, len(strays)  # at most one line per window per runner, +1 at the charge
        assert len(logs) < 200, len(logs)
        healthy = supervisor.strategy("healthy")
        assert healthy.state is StrategyState.RUNNING and healthy.errors == 0 and healthy.restarts == 0
        print(
            f"\nflood: {bad.last_error}; {dict(bad.breaker.failures_by_kind)}; host log lines {len(logs)}, "
            f"stray lines {len(strays)}"
        )


class TestLaneFlood:
    @pytest.mark.parametrize(
        ("how", "said"),
        [
            ("frames", ("flooded its stream", "frames beyond the")),
            ("huge", ("broke its data lane: a frame of 4294967295 bytes announced, over the 4194304 byte limit",)),
            ("junk", ("broke its data lane: a frame that is not a RunnerMessage",)),
        ],
    )
    async def test_a_runner_abusing_its_lane_is_charged_and_ended(
        self, host: Callable[..., Any], how: str, said: tuple[str, ...]
    ) -> None:
        """A runner writing unasked frames on its data lane as fast as it can, a frame header announcing
        4 GB, or a frame of junk: charged as ``protocol`` and ended each time (the breaker opens after the
        restart budget), the host's log stays bounded, and the healthy runner on its own lane is untouched."""
        with structlog.testing.capture_logs() as logs:
            supervisor = await host(StrategyDefinition("bad", "scripted", "scripted", {"mode": f"flood_lane:{how}"}))
            await _feed_until(supervisor, lambda: supervisor.strategy("bad").state is StrategyState.OPEN)
            bad = supervisor.strategy("bad")
        assert bad.breaker.failures_by_kind["protocol"] == 3, bad.breaker.failures_by_kind
        assert any(text in bad.last_error for text in said), bad.last_error
        assert len(logs) < 200, len(logs)
        if how != "frames":
            violations = [e for e in logs if e["event"] == "runner_lane_violation"]
            assert len(violations) == 3 and all(e["runner"] for e in violations), violations
        healthy = supervisor.strategy("healthy")
        assert healthy.state is StrategyState.RUNNING and healthy.errors == 0 and healthy.restarts == 0, healthy
        assert supervisor._managed["healthy"]._runner.session.on_lane  # type: ignore[union-attr]


class TestLongOutputLine:
    async def test_a_1mb_line_does_not_stop_the_pump(self, host: Callable[..., Any]) -> None:
        """A runner printing a 1 MB line on every tick keeps answering; the host keeps reading its
        output (the line after each long one reaches the tail) and counts every cut line."""
        metrics = EngineMetrics()
        supervisor = await host(
            StrategyDefinition("long", "scripted", "scripted", {"mode": "long_line:1000000"}), metrics=metrics
        )
        manager = supervisor._managed["long"]

        def answered_many() -> bool:
            return supervisor.strategy("long").batches >= 20

        await _feed_until(supervisor, answered_many)
        status = supervisor.strategy("long")
        assert status.state is StrategyState.RUNNING and status.errors == 0 and status.restarts == 0, status
        runner = manager._runner
        assert runner is not None
        await wait_until(lambda: any(line.startswith("long_line_done") for line in runner.process.tail), 5)
        cut = [line for line in runner.process.tail if line.endswith("...[truncated]")]
        assert cut and all(len(line) <= 8192 + len(" ...[truncated]") for line in cut)
        truncated = metrics.registry.get_sample_value(
            "strategy_engine_runner_output_truncated_total", {"strategy": "long"}
        )
        assert truncated is not None and truncated >= 20


class TestExitInPluginCode:
    @pytest.mark.parametrize(
        ("mode", "said"),
        [
            ("sys_exit_in_hook", "called sys.exit(None)"),
            ("keyboard_interrupt_in_hook", "raised KeyboardInterrupt"),
            ("sys_exit_in_start:3", "called sys.exit(3)"),
        ],
    )
    async def test_exit_while_loading_or_starting_is_one_boot_error(
        self, host: Callable[..., Any], mode: str, said: str
    ) -> None:
        """Plugin code leaving the process while it loads or starts is reported once as a boot error:
        the breaker is held open (no restart) and ``last_error`` says what the code did."""
        supervisor = await host(StrategyDefinition("bad", "scripted", "scripted", {"mode": mode}))
        await wait_until(lambda: supervisor.strategy("bad").state is StrategyState.OPEN, 15)
        await wait_until(lambda: supervisor.strategy("healthy").state is StrategyState.RUNNING, 10)
        await asyncio.sleep(0.5)  # time for a restart the breaker must not decide
        bad = supervisor.strategy("bad")
        assert bad.restarts == 0, bad
        assert dict(bad.breaker.failures_by_kind) == {
            "error": 0, "timeout": 0, "crash": 0, "boot": 1, "cpu": 0, "order_flood": 0, "protocol": 0,
        }  # fmt: skip
        assert said in bad.last_error, bad.last_error
        assert "closed the stream" not in bad.last_error


class TestCrashCause:
    @pytest.mark.parametrize(("mode", "said"), [("segv", "SIGSEGV"), ("exit:3", "exited with code 3")])
    async def test_last_error_names_how_the_runner_ended(self, host: Callable[..., Any], mode: str, said: str) -> None:
        """A runner that dies while serving: ``last_error`` names the signal or exit code, not the stream."""
        supervisor = await host(StrategyDefinition("bad", "scripted", "scripted", {"mode": mode}))
        await _feed_until(supervisor, lambda: supervisor.strategy("bad").restarts >= 1)
        bad = supervisor.strategy("bad")
        assert said in bad.last_error and "closed the stream" not in bad.last_error, bad.last_error


class TestForgedLabels:
    async def test_forged_symbols_land_in_other_and_metrics_stay_bounded(self, host: Callable[..., Any]) -> None:
        """A strategy emitting signals on a new symbol in every batch (past the per-batch limit, so they
        are dropped and counted by symbol) adds no series per symbol: they are counted as ``other``."""
        metrics = EngineMetrics()
        forging = StrategyDefinition("forger", "scripted", "scripted", {"mode": "forge_symbols:20", "every": 10**9})
        tolerant = BreakerPolicy(consecutive_failures=10**6, window_failures=10**6)
        supervisor = await host(forging, metrics=metrics, policy=tolerant, max_signals_per_batch=5)
        await wait_until(lambda: supervisor.strategy("forger").state is StrategyState.RUNNING, 10)
        await _feed_until(supervisor, lambda: supervisor.strategy("forger").batches >= 5)
        before = len(generate_latest(metrics.registry))
        await _feed_until(supervisor, lambda: supervisor.strategy("forger").batches >= 200)
        after = generate_latest(metrics.registry)
        forger = supervisor.strategy("forger")
        assert forger.signals_dropped >= 200 * 15, forger
        assert b"FORGED" not in after
        dropped = metrics.registry.get_sample_value(
            "strategy_engine_signals_dropped_total", {"strategy": "forger", "symbol": "other", "reason": "flood"}
        )
        assert dropped is not None and dropped >= 200
        assert len(after) - before < 2_000, (before, len(after))
        print(f"\nforged symbols: /metrics {before} -> {len(after)} bytes over {forger.batches} batches")

"""Strategy logs and errors as the host logs them, with real runner subprocesses under a Supervisor.

The scripted plugin's ``log`` mode logs at every level (with a forged ``strategy`` key and a host
event's name among them), ``log_flood:N`` logs N records per tick, ``raise_once`` raises once. The
host's log is read as data with ``structlog.testing.capture_logs()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, StrategyState, SupervisionSettings
from host.supervisor.policy import BreakerPolicy, BreakerState
from host.supervisor.process import RunnerLimits
from host.supervisor.supervisor import Supervisor
from tests.helpers import RUNNERS, tick_events, wait_until
from tests.integration.test_supervisor import RecordingListener

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

POLICY = BreakerPolicy(consecutive_failures=5, backoff_initial_s=0.05, backoff_max_s=0.2, jitter=0.0)


def _settings() -> SupervisionSettings:
    return SupervisionSettings(
        plugins_dir=RUNNERS, transport_allowance_s=0.5, handshake_timeout_s=5.0, stop_grace_s=1.0,
        heartbeat_interval_s=1.0, limits=RunnerLimits(memory_mb=768),
    )  # fmt: skip


@asynccontextmanager
async def supervised(modes: Mapping[str, str]) -> AsyncIterator[tuple[Supervisor, EngineMetrics]]:
    """A Supervisor running one scripted strategy per (id, mode), all running; closed on the way out."""
    definitions = [StrategyDefinition(sid, "scripted", "scripted", {"mode": mode}) for sid, mode in modes.items()]
    metrics = EngineMetrics()
    supervisor = Supervisor(_settings(), definitions, RecordingListener(), metrics=metrics, breaker_policy=POLICY)
    task = asyncio.create_task(supervisor.run())
    try:
        await supervisor.started.wait()
        await wait_until(lambda: all(supervisor.strategy(s).state is StrategyState.RUNNING for s in modes), 15)
        yield supervisor, metrics
    finally:
        supervisor.close()
        await asyncio.wait_for(task, 20)


async def _feed_until(supervisor: Supervisor, done: Any, timeout: float = 15, pause: float = 0.01) -> None:
    feed = tick_events(10_000)
    deadline = time.monotonic() + timeout
    i = 0
    while not done():
        assert time.monotonic() < deadline, "not within the timeout"
        supervisor.publish(feed[i % len(feed)])
        i += 1
        await asyncio.sleep(pause)


def _strategy_logs(logs: list[dict[str, Any]], message: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "strategy_log" and e.get("message") == message]


def _line_of(text: str) -> int:
    source = (RUNNERS / "scripted" / "__init__.py").read_text().splitlines()
    return next(n for n, line in enumerate(source, 1) if text in line)


class TestStrategyLogs:
    async def test_records_arrive_at_their_own_level_with_the_strategy_id(self) -> None:
        """Each level reaches the host's log as strategy_log at that level, with strategy, plugin and runner pid."""
        with structlog.testing.capture_logs() as logs:
            async with supervised({"talker": "log", "quiet": "ok"}) as (supervisor, _):
                pid = supervisor.strategy("talker").pid
                await _feed_until(supervisor, lambda: _strategy_logs(logs, "runner_restarted"))
        levels = {
            message: {e["log_level"] for e in _strategy_logs(logs, message)}
            for message in ("scripted_started", "tick_seen", "tick_priced", "spread_wide", "runner_restarted")
        }
        assert levels == {
            "scripted_started": {"info"}, "tick_seen": {"debug"}, "tick_priced": {"info"},
            "spread_wide": {"warning"}, "runner_restarted": {"error"},
        }  # fmt: skip
        priced = _strategy_logs(logs, "tick_priced")[0]
        assert (priced["strategy"], priced["plugin"], priced["runner_pid"]) == ("talker", "scripted", pid)
        assert priced["fields"] == {"sequence": 1, "price": None, "bid": 100.01, "symbol": "BTCUSDT", "strategy": "x"}
        assert _strategy_logs(logs, "spread_wide")[0]["fields"] == {"sequence": 1, "wide": True, "book": "[1, 2]"}
        assert [e["fields"] for e in _strategy_logs(logs, "scripted_started")] == [{"mode": "log"}]
        stopped = _strategy_logs(logs, "scripted_stopped")
        assert [e["strategy"] for e in stopped] == ["talker"], "on_stop's record rides on Stopped"
        assert {e["strategy"] for e in logs if e["event"] == "strategy_log"} == {"talker"}
        assert not [e for e in logs if e["event"] == "runner_restarted"], "a strategy cannot log a host event"

    async def test_raise_is_logged_with_file_line_and_traceback(self) -> None:
        """A handler's exception: strategy_error names file:line in the plugin, the full traceback, and last_error."""
        where = f"scripted/__init__.py:{_line_of('scripted failure, once')}"
        with structlog.testing.capture_logs() as logs:
            async with supervised({"oops": "raise_once"}) as (supervisor, _):
                await _feed_until(supervisor, lambda: supervisor.strategy("oops").errors >= 1)
                status = supervisor.strategy("oops")
        (error,) = [e for e in logs if e["event"] == "strategy_error"]
        assert (error["strategy"], error["handler"], error["location"]) == ("oops", "on_tick", where)
        assert f'{where.split(":")[0]}", line {where.split(":")[1]}, in _do_raise_once' in error["traceback"]
        assert error["traceback"].rstrip().endswith("RuntimeError: scripted failure, once")
        assert status.last_error == f"on_tick at {where}: RuntimeError: scripted failure, once"
        assert status.breaker.state is BreakerState.CLOSED

    async def test_flood_is_cut_and_counted_and_the_neighbour_keeps_serving(self) -> None:
        """A strategy logging in a tight loop gets at most its burst plus its rate; the rest is counted."""
        policy = _settings().log_rate
        with structlog.testing.capture_logs() as logs:
            async with supervised({"flood": "log_flood:20000", "quiet": "ok"}) as (supervisor, metrics):
                started = time.monotonic()
                before = supervisor.strategy("quiet").batches
                await _feed_until(supervisor, lambda: supervisor.strategy("flood").events_sent >= 30, pause=0.02)
                elapsed = time.monotonic() - started
                dropped = {
                    reason: metrics.registry.get_sample_value(
                        "strategy_engine_strategy_log_dropped_total", {"strategy": "flood", "reason": reason}
                    )
                    for reason in ("runner_cap", "rate")
                }
                flood, quiet = supervisor.strategy("flood"), supervisor.strategy("quiet")
        spam = _strategy_logs(logs, "spam")
        assert 0 < len(spam) <= policy.burst + policy.rate_per_s * elapsed + 1, (len(spam), elapsed)
        assert dropped["runner_cap"] is not None and dropped["runner_cap"] >= 30 * (20_000 - 100)
        summaries = [e for e in logs if e["event"] == "strategy_log_dropped"]
        assert summaries and {e["strategy"] for e in summaries} == {"flood"}
        assert summaries[0]["dropped"] >= 20_000 - 100 and summaries[0]["log_level"] == "warning"
        assert len(summaries) <= 1 + elapsed / policy.report_every_s + 1  # one per window, one when it ended
        assert flood.errors == 0 and flood.breaker.state is BreakerState.CLOSED, "logging is not an error"
        assert quiet.batches > before and quiet.errors == 0


@pytest.fixture(autouse=True)
def _plugins_exist() -> None:
    assert (RUNNERS / "scripted" / "__init__.py").exists(), Path(RUNNERS)

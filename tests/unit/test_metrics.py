"""Metric names, labels and the exposition text of EngineMetrics."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from host.ledger import Ledger
from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyState, StrategyStatus
from host.supervisor.policy import BreakerPolicy, CircuitBreaker, FailureKind


class _Clock:
    def monotonic(self) -> float:
        return 100.0


def _status(sid: str, state: StrategyState, breaker: CircuitBreaker) -> StrategyStatus:
    return StrategyStatus(
        id=sid, plugin="p", name="n", state=state, breaker=breaker.status(), pid=None, sandbox=(), events_sent=42,
        batches=6,
        signals=3, errors=1, restarts=0, reloads=0, reload_failures=0, last_reload=None, conflated=7, dropped=2,
        signals_dropped=0,
        late_replies=1, impersonations=0, last_error="", last_exit="", latency_p50_us=None, latency_p99_us=None,
        outbox=5,
    )  # fmt: skip


@pytest.fixture
def exposition() -> str:
    metrics = EngineMetrics()
    open_breaker = CircuitBreaker(BreakerPolicy(), _Clock())
    open_breaker.record_failure(FailureKind.BOOT, "bad import")
    statuses = [
        _status("a", StrategyState.RUNNING, CircuitBreaker(BreakerPolicy(), _Clock())),
        _status("b", StrategyState.OPEN, open_breaker),
    ]
    metrics.watch(lambda: statuses)
    metrics.allow_strategies(["a", "b"], ["BTCUSDT"])  # what the supervisor does with its configuration
    strategy = metrics.for_strategy("a")
    strategy.signals.inc(3)
    strategy.error("exception")
    strategy.latency_us.observe(420.0)
    strategy.processing_us.observe(35.0)
    strategy.signals_dropped("BTCUSDT", "flood", 5)
    strategy.stopped("sigkill")
    strategy.restarts.inc()
    metrics.reloads.labels(plugin="p", result="ok").inc()
    return generate_latest(metrics.registry).decode()


class TestEngineMetrics:
    @pytest.mark.parametrize(
        "line",
        [
            'strategy_engine_strategy_signals_total{strategy="a"} 3.0',
            'strategy_engine_strategy_errors_total{kind="exception",strategy="a"} 1.0',
            'strategy_engine_strategy_latency_microseconds_count{strategy="a"} 1.0',
            'strategy_engine_processing_time_microseconds_count{strategy="a"} 1.0',
            'strategy_engine_signals_dropped_total{reason="flood",strategy="a",symbol="BTCUSDT"} 5.0',
            'strategy_engine_runner_stops_total{rung="sigkill"} 1.0',
            'strategy_engine_runner_restarts_total{strategy="a"} 1.0',
            'strategy_engine_plugin_reloads_total{plugin="p",result="ok"} 1.0',
            "strategy_engine_active_strategies 1.0",
            'strategy_engine_breaker_state{strategy="a"} 0.0',
            'strategy_engine_breaker_state{strategy="b"} 2.0',
            'strategy_engine_strategy_state{state="open",strategy="b"} 1.0',
            'strategy_engine_conflated_events_total{strategy="a"} 7.0',
            'strategy_engine_market_data_dropped_total{strategy="a"} 2.0',
            'strategy_engine_late_replies_total{strategy="a"} 1.0',
            'strategy_engine_outbox_size{strategy="a"} 5.0',
        ],
    )
    def test_exposition_has_the_seed_names(self, exposition: str, line: str) -> None:
        """Each metric is exposed under the strategy_engine namespace with its labels."""
        assert line in exposition.splitlines()

    def test_two_engines_do_not_share_a_registry(self) -> None:
        """Each EngineMetrics has its own registry, so two in one process do not collide."""
        EngineMetrics().for_strategy("x").signals.inc()
        assert "strategy_signals_total{" not in generate_latest(EngineMetrics().registry).decode()

    @pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed on this machine")
    def test_promtool_accepts_the_exposition(self, exposition: str) -> None:
        """promtool finds no problem but the unit of the seed's *_microseconds names, kept for its dashboards."""
        checked = subprocess.run(["promtool", "check", "metrics"], input=exposition, text=True, capture_output=True)
        problems = [line for line in (checked.stdout + checked.stderr).splitlines() if line.strip()]
        seed_units = [p for p in problems if p.endswith('use base unit "seconds" instead of "microseconds"')]
        assert seed_units and all(
            p.split()[0].split("_microseconds")[0].endswith(("_latency", "_time")) for p in seed_units
        )
        assert [p for p in problems if p not in seed_units] == []


class TestLedgerSize:
    def test_the_gauge_is_the_ledger_file_plus_its_write_ahead_log(self, tmp_path: Path) -> None:
        """ledger_size_bytes reads the sqlite file and its -wal at scrape time, so it follows the ledger as it grows."""
        path = tmp_path / "ledger.sqlite"
        metrics = EngineMetrics()
        metrics.watch_ledger(path)
        assert "strategy_engine_ledger_size_bytes 0.0" in generate_latest(metrics.registry).decode()
        with Ledger.open(path) as ledger:
            ledger.set_values({f"k{n}": "v" * 200 for n in range(500)})
            size = path.stat().st_size + (tmp_path / "ledger.sqlite-wal").stat().st_size
            assert f"strategy_engine_ledger_size_bytes {float(size)}" in generate_latest(metrics.registry).decode()
            assert size > 100_000

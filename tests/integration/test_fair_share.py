"""Fair share on real runners: a CPU hog and an order hog are charged; the well-behaved strategy is not.

The CPU case runs a real Supervisor with a healthy scripted strategy and one started with
``spin_threads:2`` (two background threads hashing without the GIL, ~2 cores): the host's sampler
reads the hog's /proc CPU time, its budget charges ``cpu`` once a (short, for the test) window is
over its share, the breaker restarts it and holds it open past the restart budget, while the healthy
one keeps answering within its deadline. The order case runs the engine's own assembly (supervisor,
risk, aggregation, paper venue, ledger) with an ``order_hog:3`` strategy beside a normal one on the
same symbol: the hog's orders past its fair-share quota are rejected under
``strategy_orders_per_second``, the repeated rejections charge it ``order_flood``, and the normal
strategy gets every order it asked for.

Both are short and bounded (the machine has 2 cores and other tests run beside these): one hog
at a time, loose timing bounds, and waits on conditions rather than sleeps.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from host.assembly import build
from host.clock import SystemClock
from host.config import Config, EngineConfig, StrategySpec
from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, StrategyState, SupervisionSettings
from host.supervisor.policy import BreakerPolicy, BreakerState
from host.supervisor.process import RunnerLimits
from host.supervisor.supervisor import Supervisor
from sdk.events import Tick
from tests.execution_harness import metric, risk_config
from tests.helpers import RUNNERS, runner_pids, tick_events, wait_until
from tests.integration.test_supervisor import RecordingListener

POLICY = BreakerPolicy(backoff_initial_s=0.05, backoff_max_s=0.2, jitter=0.0, restart_budget=2)


def _settings(**overrides: Any) -> SupervisionSettings:
    base: dict[str, Any] = {
        "plugins_dir": RUNNERS, "transport_allowance_s": 0.3, "processing_timeout_s": 0.005,
        "handshake_timeout_s": 5.0, "stop_grace_s": 1.0, "heartbeat_interval_s": 1.0,
        "limits": RunnerLimits(memory_mb=768),
    }  # fmt: skip
    base.update(overrides)
    return SupervisionSettings(**base)


class TestCpuBudget:
    async def test_spinning_threads_are_charged_and_the_healthy_keep_their_deadline(self) -> None:
        """spin_threads:2 is charged cpu, restarted twice, then held open; the healthy one never waits long."""
        definitions = [
            StrategyDefinition("healthy", "scripted", "scripted", {}),
            StrategyDefinition("hog", "scripted", "scripted", {"mode": "spin_threads:2", "every": 1000}),
        ]
        listener = RecordingListener()
        settings = _settings(cpu_share=0.3, cpu_window_s=1.0, cpu_sample_interval_s=0.25)
        metrics = EngineMetrics()
        supervisor = Supervisor(settings, definitions, listener, metrics=metrics, breaker_policy=POLICY)
        with capture_logs() as logs:
            task = asyncio.create_task(supervisor.run())
            await supervisor.started.wait()
            await wait_until(lambda: supervisor.strategy("healthy").state is StrategyState.RUNNING, 10)
            listener.answered_at.clear()
            feed, i, deadline = tick_events(5000), 0, time.monotonic() + 60
            while supervisor.strategy("hog").state is not StrategyState.OPEN:
                assert time.monotonic() < deadline, f"the hog was never held open: {supervisor.strategy('hog')}"
                supervisor.publish(feed[i % len(feed)])
                i += 1
                await asyncio.sleep(0.02)
            healthy_share = supervisor.strategy("healthy").cpu_share
            supervisor.close()
            await asyncio.wait_for(task, 20)

        hog = supervisor.strategy("hog")
        assert hog.breaker.state is BreakerState.OPEN and hog.restarts == 2, hog
        assert hog.breaker.failures_by_kind["cpu"] == 3, hog.breaker
        assert "cpu:" in hog.breaker.last_reason and "restart budget exhausted" in hog.breaker.last_reason
        assert metric(metrics, "strategy_errors_total", strategy="hog", kind="cpu") == 3
        exceeded = [e for e in logs if e["event"] == "strategy_cpu_exceeded"]
        assert len(exceeded) == 3 and all(e["strategy"] == "hog" and e["kind"] == "cpu" for e in exceeded)
        shares = [e["share"] for e in exceeded]
        assert all(share > 0.3 for share in shares), shares
        assert healthy_share is not None and healthy_share < 0.3, healthy_share
        print(f"\nCPU share measured for spin_threads:2: {shares}; healthy: {healthy_share}")
        healthy = supervisor.strategy("healthy")
        assert healthy.restarts == 0 and healthy.errors == 0 and healthy.breaker.failures_by_kind["cpu"] == 0
        limit = settings.deadline(1) + 0.3
        assert listener.max_gap("healthy") < limit, f"healthy waited {listener.max_gap('healthy'):.3f} s"
        assert len(listener.answered_at["healthy"]) > 50
        assert runner_pids(supervisor.link.socket_path) == []


def _tick(sequence: int) -> Tick:
    return Tick(
        symbol="BTCUSDT",
        timestamp_ns=time.time_ns(),
        bid_price=100.0,
        bid_size=5.0,
        ask_price=100.1,
        ask_size=5.0,
        last_price=100.05,
        sequence=sequence,
    )


class TestOrderQuota:
    async def test_order_hog_is_rejected_past_its_quota_and_charged(self, tmp_path: Path) -> None:
        """order_hog:3 beside a normal strategy: quota rejections for the hog only, an order_flood charge,
        and every order the normal strategy asked for."""
        risk = risk_config(
            max_orders_per_second=10, max_orders_per_minute=600, max_position_size=1e6, max_order_quantity=10.0,
            max_portfolio_notional=1e12,
        )  # fmt: skip
        hog_params = {"mode": "order_hog:3", "every": 10**6, "echo_fills": False}
        config = Config(
            engine=EngineConfig(mode="simulation"), risk=risk,
            strategies={
                "normal": StrategySpec(id="normal", plugin="scripted", parameters={"every": 10, "echo_fills": False}),
                "hog": StrategySpec(id="hog", plugin="scripted", parameters=hog_params),
            },
        )  # fmt: skip
        definitions = [StrategyDefinition(s.id, s.plugin, s.strategy, s.params()) for s in config.enabled_strategies()]
        settings = _settings(cpu_share=0.0, flood_strikes=20, flood_window_s=10.0)
        engine = build(config, definitions, settings, POLICY, ledger_path=tmp_path / "ledger.sqlite",
                       clock=SystemClock(), venue_kind="paper")  # fmt: skip
        assert engine.execution.risk.quotas() == (5, 300)
        supervisor = engine.supervisor
        with capture_logs() as logs:
            tasks = [asyncio.create_task(supervisor.run()), asyncio.create_task(engine.execution.run())]
            await supervisor.started.wait()
            await wait_until(lambda: all(s.state is StrategyState.RUNNING for s in supervisor.status()), 10)
            sequence, deadline = 0, time.monotonic() + 60
            while supervisor.strategy("hog").state is not StrategyState.OPEN:
                assert time.monotonic() < deadline, f"the hog was never held open: {supervisor.strategy('hog')}"
                sequence += 1
                engine.on_market(_tick(sequence))
                await asyncio.sleep(0.05)
            for _ in range(40):  # the normal one keeps trading after the hog is held open
                sequence += 1
                engine.on_market(_tick(sequence))
                await asyncio.sleep(0.05)
            await wait_until(lambda: supervisor.quiescent() and not len(engine.execution.queue), 10)
            await engine.execution.drain(10)
            supervisor.close()
            await asyncio.wait_for(tasks[0], 20)
            tasks[1].cancel()
            await asyncio.gather(tasks[1], return_exceptions=True)
        await engine.close()

        stats = engine.execution.stats
        normal, hog = supervisor.strategy("normal"), supervisor.strategy("hog")
        assert stats.rejections.get("normal", {}) == {}, stats.rejections["normal"]
        normal_orders = stats.orders_by_strategy.get("normal", 0)
        assert normal_orders == normal.signals, (normal_orders, normal.signals)
        assert normal.signals >= sequence // 10 - 2, (normal.signals, sequence)
        hog_rejections = stats.rejections["hog"]
        assert hog_rejections.get("strategy_orders_per_second", 0) >= 40, hog_rejections
        assert set(hog_rejections) <= {"strategy_orders_per_second", "strategy_orders_per_minute"}, hog_rejections
        assert hog.breaker.state is BreakerState.OPEN and hog.breaker.failures_by_kind["order_flood"] == 3, hog
        assert metric(engine.metrics, "strategy_errors_total", strategy="hog", kind="order_flood") == 3
        floods = [e for e in logs if e["event"] == "strategy_order_flood"]
        assert len(floods) == 3 and all(e["strategy"] == "hog" for e in floods)
        print(
            f"\norders sent: normal {normal_orders} (signals {normal.signals}, ticks {sequence}), "
            f"hog {stats.orders_by_strategy.get('hog', 0)}; hog rejections {dict(hog_rejections)}"
        )

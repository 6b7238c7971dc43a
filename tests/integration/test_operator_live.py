"""Hot reload and config watching, live, the way an operator meets them.

Every test runs ``strategy-engine run --config config.yaml`` and ``strategy-engine paper-venue`` as
subprocesses against a real redis-server and nats-server on free ports, publishes ticks to Redis
while it edits, breaks, deletes and adds files under the project's ``plugins/`` or edits
``config.yaml``, and reads the outcome as an operator does: /status, /metrics, the log, and the
ledger's orders journal (each order names the code version, parameters and tick count that sent
it; see ``operator_stack``).

Save -> new-code-serving times (file written -> first order of the new code in the ledger, the
watcher's 0.5 s quiet period included) are printed at the end of the session (pytest -s).
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.operator_stack import (
    OperatorStack,
    Order,
    live_stack,
    poll_until,
    runner_pid_alive,
    write_counter,
)
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SAVE_TO_SERVING: list[float] = []


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> Iterator[None]:
    yield
    if SAVE_TO_SERVING:
        ms = sorted(round(s * 1000) for s in SAVE_TO_SERVING)
        print(f"\nlive save -> new code serving: median {statistics.median(ms)} ms, all {ms}")


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    yield from live_stack(tmp_path / "project", redis_server, nats_server)


def _seen_continues(stack: OperatorStack, strategy: str) -> None:
    """The strategy's tick count never went back: its state rode along every swap."""
    seen = [o.seen for o in stack.orders(strategy)]
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen[:50]


class TestHotReloadLive:
    def test_changed_plugin_serves_new_code_with_its_state(self, stack: OperatorStack) -> None:
        """A save swaps the runner: new pid, orders from the new code, tick count carried; the other untouched."""
        stack.start()
        poll_until(lambda: stack.orders("edited"), 10, "a first order of edited v1")
        before = stack.strategy("edited")
        steady_pid = stack.strategy("steady")["pid"]  # type: ignore[index]
        assert before is not None

        saved = stack.write(stack.plugins / "edited" / "__init__.py", (stack.plugins / "edited" / "__init__.py")
                            .read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))  # fmt: skip
        first = poll_until(lambda: stack.first_order_after("edited", saved, version="v2"), 10, "an order of v2")
        SAVE_TO_SERVING.append(first.created_ns / 1e9 - saved)

        after = stack.strategy("edited")
        assert after is not None and after["pid"] != before["pid"] and after["state"] == "running"
        assert after["last_reload"]["result"] == "ok" and after["reloads"] == 1
        assert stack.strategy("steady")["pid"] == steady_pid  # type: ignore[index]
        poll_until(lambda: not runner_pid_alive(before["pid"]), 5, "the old runner gone")
        _seen_continues(stack, "edited")
        assert not [o for o in stack.orders("edited") if o.version == "v1" and o.created_ns > first.created_ns]
        assert stack.metric("plugin_reloads_total", plugin="edited", result="ok") == 1
        status = stack.status()
        assert status is not None and status["reloads"]["packages"]["edited"]["ok"] is True

    def test_broken_save_keeps_the_old_runner_and_is_reported(self, stack: OperatorStack) -> None:
        """A syntax error on save: the old runner keeps trading, /status and /metrics say why; a fix serves."""
        stack.start()
        source = stack.plugins / "edited" / "__init__.py"
        pid = stack.strategy("edited")["pid"]  # type: ignore[index]
        broken_at = stack.write(source, source.read_text() + "\ndef broken(:\n")

        def reported() -> dict[str, object] | None:
            record = stack.strategy("edited")
            return record if record and record["last_reload"] and record["last_reload"]["result"] == "failed" else None

        record = poll_until(reported, 15, "the failed reload on /status")
        assert "SyntaxError" in record["last_reload"]["error"], record  # type: ignore[index]
        assert record["pid"] == pid and record["state"] == "running"
        assert stack.metric("plugin_reloads_total", plugin="edited", result="failed") == 1
        status = stack.status()
        assert status is not None and "SyntaxError" in status["reloads"]["packages"]["edited"]["error"]
        assert [r for r in stack.logs("plugin_reload_failed") if "SyntaxError" in r.get("reason", "")]
        reported_at = time.time()
        poll_until(lambda: stack.first_order_after("edited", reported_at, version="v1"), 10, "v1 still trading")
        assert stack.first_order_after("edited", broken_at, version="v1") is not None

        fixed = stack.write(source, source.read_text().replace("\ndef broken(:\n", "").replace('"v1"', '"v3"'))
        poll_until(lambda: stack.first_order_after("edited", fixed, version="v3"), 10, "the fixed code serving")
        _seen_continues(stack, "edited")

    def test_deleted_folder_stops_its_strategy(self, stack: OperatorStack) -> None:
        """rm -r plugins/edited: its working order is cancelled, its runner ends, it sends nothing more."""
        stack.config["strategies"]["edited"]["parameters"]["rest"] = True
        stack.start()
        pid = stack.strategy("edited")["pid"]  # type: ignore[index]

        def working() -> list[Order]:
            return [o for o in stack.orders("edited") if o.label == "rest" and o.status == "accepted"]

        resting = poll_until(working, 10, "edited's limit order working at the venue")
        shutil.rmtree(stack.plugins / "edited")
        poll_until(lambda: stack.strategy("edited") is None, 10, "edited gone from /status")
        gone_at = time.time()
        poll_until(lambda: not runner_pid_alive(pid), 5, "edited's runner ended")
        poll_until(lambda: stack.first_order_after("steady", gone_at + 0.3), 10, "steady still trading")
        assert stack.first_order_after("edited", gone_at) is None
        [cancelled] = [o for o in stack.orders("edited") if o.created_ns == resting[0].created_ns]
        assert cancelled.status == "cancelled", cancelled
        assert [r for r in stack.logs("cancel_on_disconnect") if r["strategy"] == "edited"]
        status = stack.status()
        assert status is not None and status["reloads"]["packages"]["edited"]["kind"] == "removed"

    def test_new_enabled_package_starts_when_dropped_in(self, stack: OperatorStack) -> None:
        """A strategy the config enables before its package exists starts once the package is dropped in."""
        stack.config["strategies"]["late"] = {"plugin": "late", "strategy": "counter", "symbols": ["SOLUSDT"]}
        stack.start(ready=("edited", "steady"))
        poll_until(lambda: stack.strategy("late")["state"] == "open", 10, "late held open")  # type: ignore[index]
        assert stack.logs("plugin_missing")[0]["strategy"] == "late"
        dropped = time.time()
        write_counter(stack.plugins, "late", "l1")
        order = poll_until(lambda: stack.first_order_after("late", dropped, version="l1"), 15, "late trading")
        SAVE_TO_SERVING.append(order.created_ns / 1e9 - dropped)
        assert stack.strategy("late")["state"] == "running"  # type: ignore[index]
        assert order.symbol == "SOLUSDT"


class TestConfigWatchingLive:
    def test_strategy_parameter_and_risk_limit_take_effect(self, stack: OperatorStack) -> None:
        """label a -> b swaps edited's runner (state carried); maxOrderQuantity below the order size stops orders."""
        stack.start()
        steady_pid = stack.strategy("steady")["pid"]  # type: ignore[index]
        stack.config["strategies"]["edited"]["parameters"] = {"label": "b"}
        saved = stack.write_config()
        poll_until(lambda: stack.first_order_after("edited", saved, label="b"), 10, "an order with label b")
        _seen_continues(stack, "edited")
        assert stack.strategy("steady")["pid"] == steady_pid  # type: ignore[index]

        stack.config["risk"]["maxOrderQuantity"] = 0.0001  # COUNTER's orders are 0.001
        stack.write_config()
        poll_until(lambda: stack.metric("risk_violations_total", type="max_quantity", strategy="edited") > 0, 10,
                   "orders rejected by the new maxOrderQuantity")  # fmt: skip
        rejected_from = time.time()
        poll_until(lambda: stack.metric("risk_violations_total", type="max_quantity", strategy="steady") > 0, 10,
                   "steady's orders rejected too")  # fmt: skip
        assert stack.first_order_after("edited", rejected_from + 0.2) is None
        applied = [r for r in stack.logs("config_reload") if "risk" in r["applied"]]
        assert applied and applied[-1]["restart_required"] == []
        assert stack.metric("config_reloads_total", result="ok") == 2

    def test_strategies_are_disabled_and_enabled_by_editing_the_file(self, stack: OperatorStack) -> None:
        """enabled: false stops steady (its runner ends); a strategy added to the file starts trading."""
        write_counter(stack.plugins, "late", "l1")
        stack.start()
        steady_pid = stack.strategy("steady")["pid"]  # type: ignore[index]
        stack.config["strategies"]["steady"]["enabled"] = False
        stack.config["strategies"]["late"] = {"plugin": "late", "strategy": "counter", "symbols": ["SOLUSDT"]}
        saved = stack.write_config()
        poll_until(lambda: stack.first_order_after("late", saved, version="l1"), 15, "late trading")
        poll_until(lambda: stack.strategy("steady") is None, 10, "steady gone from /status")
        poll_until(lambda: not runner_pid_alive(steady_pid), 5, "steady's runner ended")
        stopped = time.time()
        poll_until(lambda: stack.first_order_after("edited", stopped + 0.3), 10, "edited still trading")
        assert stack.first_order_after("steady", stopped) is None

    def test_restart_only_keys_are_named_and_not_applied(self, stack: OperatorStack) -> None:
        """A changed server.port and redis.port are logged as needing a restart; the engine keeps its port."""
        stack.start()
        stack.config["server"]["port"] = stack.http_port + 1
        stack.config["redis"]["port"] = stack.redis_server.port + 1
        stack.config["logging"]["level"] = "warning"
        stack.write_config()
        [record] = poll_until(lambda: stack.logs("config_restart_required"), 10, "config_restart_required logged")
        assert record["keys"] == ["server.port", "redis.port", "metrics.port"]  # metrics.port follows server.port
        assert stack.status() is not None  # still on the old port
        status = stack.status()
        assert status is not None and status["reloads"]["config"]["applied"] == ["logging.level"]
        saved = time.time()
        poll_until(lambda: stack.first_order_after("edited", saved), 10, "still trading on the old Redis")
        # At warning level the info-level reload lines stop: a parameter change is applied but not logged.
        before = len(stack.logs("config_reload"))
        stack.config["strategies"]["edited"]["parameters"] = {"label": "quiet"}
        saved = stack.write_config()
        poll_until(lambda: stack.first_order_after("edited", saved, label="quiet"), 10, "label quiet serving")
        assert len(stack.logs("config_reload")) == before

    def test_bad_edit_is_refused_and_the_running_config_kept(self, stack: OperatorStack) -> None:
        """A misspelt key: refused, named in the log and on /status, counted; trading goes on unchanged."""
        stack.start()
        pid = stack.strategy("edited")["pid"]  # type: ignore[index]
        text = stack.config_path.read_text()
        saved = stack.write(stack.config_path, text.replace("maxOrderQuantity: 1", "maxOrderQuantitty: 0.0001"))
        poll_until(lambda: stack.metric("config_reloads_total", result="failed") == 1, 10, "the refusal counted")
        [failed] = stack.logs("config_reload_failed")
        assert "risk.maxOrderQuantitty: unknown key" in failed["reason"], failed
        status = stack.status()
        assert status is not None and status["reloads"]["config"]["ok"] is False
        assert "maxOrderQuantitty" in status["reloads"]["config"]["error"]
        poll_until(lambda: stack.first_order_after("edited", saved + 0.5, label="a"), 10, "orders still going out")
        assert stack.strategy("edited")["pid"] == pid  # type: ignore[index]
        assert stack.metric("risk_violations_total", type="max_quantity", strategy="edited") == 0


class TestLiveRun:
    def test_banner_says_what_the_mode_does_and_sigterm_exits_0(self, stack: OperatorStack) -> None:
        """The live banner names the venue of engine.mode and the watchers; SIGTERM ends the run with 0."""
        stack.start()
        assert stack.stop() == 0
        [banner] = [line for line in stack.log_path.read_text().splitlines() if line.startswith("strategy-engine:")]
        assert "in live mode (orders to the order-execution service at 127.0.0.1:" in banner, banner
        assert "hot reload on, config watched" in banner
        assert stack.logs("watcher_started")

    def test_parameters_the_strategy_rejects_keep_its_old_runner(self, stack: OperatorStack) -> None:
        """A misspelt strategy parameter loads as YAML but the strategy's config refuses it: old runner serves."""
        stack.start()
        pid = stack.strategy("edited")["pid"]  # type: ignore[index]
        stack.config["strategies"]["edited"]["parameters"] = {"lable": "b"}
        stack.config["risk"]["maxOrderValue"] = 999_999  # the rest of the file still applies
        saved = stack.write_config()
        poll_until(lambda: stack.metric("config_reloads_total", result="failed") == 1, 15, "the refusal counted")
        status = stack.status()
        assert status is not None
        config = status["reloads"]["config"]
        assert config["ok"] is False and config["error"].startswith("edited: ") and "lable" in config["error"]
        assert "risk" in config["applied"]
        record = stack.strategy("edited")
        assert record is not None and record["pid"] == pid and record["last_reload"]["result"] == "failed"
        poll_until(lambda: stack.first_order_after("edited", saved + 0.5, label="a"), 10, "label a still trading")


class TestBrokerOutage:
    def test_nats_outage_past_max_reconnects_is_not_fatal(self, stack: OperatorStack, nats_server: NatsServer) -> None:
        """NATS down longer than maxReconnects x reconnectWait: /ready says so, the engine lives, then recovers."""
        stack.config["nats"].update({"maxReconnects": 2, "reconnectWait": 0.2})
        stack.start()
        poll_until(lambda: stack.get("/ready")[0] == 200, 10, "ready")
        nats_server.stop()
        poll_until(lambda: "nats disconnected" in stack.get("/ready")[1], 10, "/ready naming nats")
        poll_until(lambda: stack.metric("nats_connect_retries_total") >= 2, 20, "new clients tried after giving up")
        assert stack.engine is not None and stack.engine.poll() is None, stack.tail()
        nats_server.start()
        poll_until(lambda: stack.get("/ready")[0] == 200, 30, "ready again once NATS is back")
        saved = time.time()
        poll_until(lambda: stack.first_order_after("edited", saved), 10, "trading after the outage")

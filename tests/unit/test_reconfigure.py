"""Config watching: sorting a changed file's keys into applied-live and restart-required, and applying them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from host.config import Config, ConfigError, RiskConfig, load, parse
from host.logs import configure_logging, set_level
from host.reconfigure import Reconfigurer, applied, delta
from host.supervisor.status import StrategyDefinition

BASE: dict[str, Any] = {
    "server": {"port": 9100},
    "risk": {"maxOrderQuantity": 1, "initialBalance": 100000},
    "strategies": {"a": {"plugin": "pkg", "strategy": "s", "parameters": {"x": 1}}},
}


def config(**sections: Any) -> Config:
    data = json.loads(json.dumps(BASE))
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse(data, environ={})


class TestDelta:
    def test_same_file_changes_nothing(self) -> None:
        """Two equal configs: nothing to apply, nothing needing a restart."""
        change = delta(config(), config())
        assert (change.strategies, change.risk, change.log_level, change.restart_required) == (False, None, None, ())
        assert change.applied_keys == ()

    def test_strategy_parameters_are_applied_live(self) -> None:
        """A changed strategy parameter is a strategies change, nothing else."""
        change = delta(config(), config(strategies={"a": {"plugin": "pkg", "strategy": "s", "parameters": {"x": 2}}}))
        assert change.strategies and change.applied_keys == ("strategies",) and change.restart_required == ()

    def test_risk_limits_are_applied_live_but_initial_balance_needs_a_restart(self) -> None:
        """maxOrderQuantity applies live; initialBalance is named for a restart and kept as it runs."""
        new = config(risk={"maxOrderQuantity": 0.5, "initialBalance": 50000})
        change = delta(config(), new)
        assert change.risk is not None and change.risk.max_order_quantity == 0.5
        assert change.risk.initial_balance == 100000
        assert change.restart_required == ("risk.initialBalance",)

    def test_order_quotas_apply_live(self) -> None:
        """The per-strategy order-rate quotas are risk limits: applied live, nothing to restart."""
        new = config(risk={"maxOrdersPerSecondPerStrategy": 2, "maxOrdersPerMinutePerStrategy": 50})
        change = delta(config(), new)
        assert change.risk is not None and change.restart_required == ()
        assert (change.risk.max_orders_per_second_per_strategy, change.risk.max_orders_per_minute_per_strategy) == (
            2,
            50,
        )

    def test_log_level_applies_live_and_the_destination_does_not(self) -> None:
        """logging.level is applied; logging.file needs a restart."""
        change = delta(config(), config(logging={"level": "debug", "file": "/tmp/engine.log"}))
        assert change.log_level == "debug" and change.restart_required == ("logging.file",)

    @pytest.mark.parametrize(
        ("section", "values", "keys"),
        [
            ("server", {"port": 9101}, ("server.port", "metrics.port")),
            ("redis", {"host": "10.0.0.1"}, ("redis.host",)),
            ("nats", {"url": "nats://other:4222"}, ("nats.url",)),
            ("grpc", {"orderExecutionAddress": "other:50051"}, ("grpc.orderExecutionAddress",)),
            ("engine", {"mode": "live", "hotReload": False}, ("engine.mode", "engine.hotReload")),
            (
                "engine",
                {"runnerCpuShare": 1.0, "orderFloodRejections": 5},
                ("engine.runnerCpuShare", "engine.orderFloodRejections"),
            ),
        ],
    )
    def test_addresses_ports_and_engine_settings_need_a_restart(
        self, section: str, values: dict[str, Any], keys: tuple[str, ...]
    ) -> None:
        """Every key outside strategies, risk limits and logging.level is named, camelCase, for a restart."""
        change = delta(config(), config(**{section: values}))
        assert change.restart_required == keys and change.applied_keys == ()

    def test_applied_config_keeps_what_needs_a_restart(self) -> None:
        """The running config takes the applied sections only, so restart keys are reported again next time."""
        running = config()
        new = config(server={"port": 9101}, risk={"maxOrderQuantity": 0.5})
        after = applied(running, new, delta(running, new))
        assert after.server.port == 9100 and after.risk.max_order_quantity == 0.5
        assert delta(after, new).restart_required == ("server.port", "metrics.port")

    def test_go_service_file_edited_live(self) -> None:
        """The Go service's config (new fields, a key report that differs) compares key by key: an edit of
        its strategies.configs is applied live, its new logging keys need a restart, the report is no key."""
        go_config = Path(__file__).resolve().parents[1] / "compat" / "go-service-config.yaml"
        data = yaml.safe_load(go_config.read_text())
        running = parse(data, environ={})
        assert delta(running, load(go_config, environ={})).restart_required == ()
        data["strategies"]["configs"]["momentum"]["threshold"] = 0.03
        data["logging"].update(maxAge=7, compress=False, output="stderr")
        data["server"]["mode"] = "development"  # ignored: not a difference
        change = delta(running, parse(data, environ={}))
        assert change.strategies and change.applied_keys == ("strategies",)
        assert change.restart_required == ("logging.output", "logging.maxAge", "logging.compress")


class RecordingStrategies:
    def __init__(self, refuse: Mapping[str, str] | None = None) -> None:
        self.calls: list[list[StrategyDefinition]] = []
        self.refuse = dict(refuse or {})

    async def set_definitions(self, definitions: Iterable[StrategyDefinition]) -> Mapping[str, str]:
        self.calls.append(list(definitions))
        return self.refuse


def definitions(cfg: Config) -> list[StrategyDefinition]:
    return [StrategyDefinition(s.id, s.plugin, s.strategy, dict(s.params())) for s in cfg.enabled_strategies()]


class TestReconfigurer:
    def _reconfigurer(self, strategies: RecordingStrategies) -> tuple[Reconfigurer, list[object]]:
        applied_calls: list[object] = []
        reconfigurer = Reconfigurer(
            config(), strategies=strategies, definitions=definitions, set_risk=applied_calls.append,
            set_log_level=applied_calls.append, loader=load,
        )  # fmt: skip
        return reconfigurer, applied_calls

    async def test_a_bad_file_raises_before_anything_is_applied(self, tmp_path: Path) -> None:
        """An unknown key: ConfigError naming it; no strategy, risk or log call; the running config stays."""
        strategies = RecordingStrategies()
        reconfigurer, calls = self._reconfigurer(strategies)
        path = tmp_path / "config.yaml"
        path.write_text("risk: {maxOrderQuantitty: 2}\n")
        with pytest.raises(ConfigError, match=r"risk\.maxOrderQuantitty: unknown key"):
            await reconfigurer.apply(path)
        assert strategies.calls == [] and calls == [] and reconfigurer.running == config()

    async def test_a_good_file_applies_each_part_once(self, tmp_path: Path) -> None:
        """Strategies, risk and level are each handed on; a refused strategy is named in the outcome."""
        strategies = RecordingStrategies(refuse={"a": "bad parameter x"})
        reconfigurer, calls = self._reconfigurer(strategies)
        path = tmp_path / "config.yaml"
        path.write_text(
            "server: {port: 9100}\nrisk: {maxOrderQuantity: 0.5}\nlogging: {level: error}\n"
            "strategies: {a: {plugin: pkg, strategy: s, parameters: {x: 3}}}\n"
        )
        outcome = await reconfigurer.apply(path)
        assert [d.params["x"] for d in strategies.calls[0]] == [3]
        assert isinstance(calls[0], RiskConfig) and calls[0].max_order_quantity == 0.5 and calls[1] == "error"
        assert outcome.applied == ("strategies", "risk", "logging.level") and not outcome.ok
        assert outcome.refused == {"a": "bad parameter x"} and outcome.restart_required == ()


class TestLogLevel:
    def teardown_method(self) -> None:
        structlog.reset_defaults()
        logging.getLogger().handlers[:] = []

    def test_set_level_reaches_loggers_already_in_use(self, tmp_path: Path) -> None:
        """A logger bound and used before the change follows the new level at once."""
        path = tmp_path / "engine.log"
        configure_logging(replace(Config().logging, level="info", format="json", file=str(path)))
        log = structlog.get_logger("test")
        log.info("before")
        set_level("error")
        log.warning("dropped")
        log.error("kept")
        set_level("debug")
        log.debug("verbose")
        events = [json.loads(line)["event"] for line in path.read_text().splitlines()]
        assert events == ["before", "kept", "verbose"]

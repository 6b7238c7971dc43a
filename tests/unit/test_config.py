"""host.config: the Go service's camelCase config.yaml, checked once, every problem named by its key path."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.config import (
    ENV_OVERRIDES,
    Config,
    ConfigError,
    EngineConfig,
    GrpcConfig,
    LoggingConfig,
    MetricsConfig,
    NatsConfig,
    RedisConfig,
    RiskConfig,
    ServerConfig,
    StrategySpec,
    load,
    parse,
    parse_duration,
)
from host.errors import EngineError
from host.supervisor.policy import BreakerPolicy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"
PLUGINS = ROOT / "plugins"
NO_ENV: dict[str, str] = {}

SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "redis": RedisConfig,
    "nats": NatsConfig,
    "grpc": GrpcConfig,
    "engine": EngineConfig,
    "risk": RiskConfig,
    "logging": LoggingConfig,
    "metrics": MetricsConfig,
}


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def yaml_keys(cls: type[Any]) -> set[str]:
    return {camel(f.name) for f in dataclasses.fields(cls) if f.name != "id"}


def example_data() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def failure(data: Mapping[str, Any], environ: Mapping[str, str] = NO_ENV) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data, environ=environ)
    return info.value


@pytest.fixture
def plugins_on_path() -> Iterator[None]:
    """Plugin packages importable by folder name, the way the runner imports them."""
    added = str(PLUGINS) not in sys.path
    if added:
        sys.path.insert(0, str(PLUGINS))
    yield
    if added:
        sys.path.remove(str(PLUGINS))


def build_strategy_config(spec: StrategySpec) -> Any:
    """What the runner does: the plugin's strategy class named ``spec.strategy``, its Config from params."""
    package = importlib.import_module(spec.plugin)
    classes = {cls.name: cls for cls in package.strategy_engine_strategies()}
    assert spec.strategy in classes, f"plugin {spec.plugin!r} has no strategy {spec.strategy!r}"
    return classes[spec.strategy].Config.from_mapping(spec.params(), path=f"strategies.{spec.id}")


class TestExample:
    def test_example_is_the_defaults_plus_its_parameters(self) -> None:
        """config.example.yaml loads to the defaults, except the strategy parameters it spells out."""
        raw = example_data()["strategies"]
        defaults = Config()
        expected_strategies = {
            sid: dataclasses.replace(spec, parameters=raw[sid]["parameters"])
            for sid, spec in defaults.strategies.items()
        }
        assert load(EXAMPLE, environ=NO_ENV) == dataclasses.replace(defaults, strategies=expected_strategies)

    def test_example_loads_without_warnings(self) -> None:
        """The example is a configuration to copy, so nothing in it is flagged."""
        assert load(EXAMPLE, environ=NO_ENV).warnings == ()

    @pytest.mark.parametrize("section", sorted(SECTIONS))
    def test_example_documents_every_key(self, section: str) -> None:
        """Every key of every section appears in the example (which the defaults test pins to its default)."""
        assert set(example_data()[section]) == yaml_keys(SECTIONS[section])

    def test_example_strategy_entries_document_every_key(self) -> None:
        """Each strategy entry spells out every key of a strategy entry."""
        for entry in example_data()["strategies"].values():
            assert set(entry) == yaml_keys(StrategySpec)

    def test_example_has_the_three_builtin_strategies(self) -> None:
        """The example configures momentum, market_making and scalping, all enabled."""
        ids = [spec.id for spec in load(EXAMPLE, environ=NO_ENV).enabled_strategies()]
        assert ids == ["momentum", "market_making", "scalping"]

    @pytest.mark.parametrize("sid", ["momentum", "market_making", "scalping"])
    @pytest.mark.usefixtures("plugins_on_path")
    def test_example_builds_the_plugin_config(self, sid: str) -> None:
        """The plugin's own Config accepts the example's parameters and symbols, so the two cannot drift."""
        spec = load(EXAMPLE, environ=NO_ENV).strategies[sid]
        config = build_strategy_config(spec)
        assert config.symbols == spec.symbols
        assert {k: getattr(config, k) for k in spec.parameters} == dict(spec.parameters)

    @pytest.mark.parametrize("sid", ["momentum", "market_making", "scalping"])
    @pytest.mark.usefixtures("plugins_on_path")
    def test_example_parameters_are_every_plugin_default(self, sid: str) -> None:
        """The example lists every plugin parameter at the plugin's default, as its comments claim."""
        spec = load(EXAMPLE, environ=NO_ENV).strategies[sid]
        plugin_defaults = build_strategy_config(dataclasses.replace(spec, parameters={})).to_mapping()
        plugin_defaults.pop("symbols")
        assert dict(spec.parameters) == plugin_defaults


class TestDefaults:
    def test_no_path_gives_the_defaults(self) -> None:
        """load(None) is the embedded default, Config()."""
        assert load(None, environ=NO_ENV) == Config()

    def test_empty_mapping_gives_the_defaults(self) -> None:
        """parse({}) is Config(): every key has a default."""
        assert parse({}, environ=NO_ENV) == Config()

    def test_empty_file_gives_the_defaults(self, tmp_path: Path) -> None:
        """An empty YAML file is an empty mapping, not an error."""
        path = tmp_path / "config.yaml"
        path.write_text("# nothing set\n", encoding="utf-8")
        assert load(path, environ=NO_ENV) == Config()

    def test_empty_sections_take_their_defaults(self) -> None:
        """A section left empty (null), as when all its keys are commented out, is all defaults."""
        assert parse(dict.fromkeys([*SECTIONS, "strategies"]), environ=NO_ENV) == Config()

    def test_defaults_are_safe(self) -> None:
        """Out of the box: simulation, localhost only, the seed's port and metric namespace."""
        config = Config()
        assert (config.engine.mode, config.server.host, config.server.port) == ("simulation", "127.0.0.1", 9092)
        assert (config.metrics.port, config.metrics.namespace) == (9092, "strategy_engine")
        assert config.warnings == ()

    def test_defaults_run_the_builtin_strategies(self) -> None:
        """With no config the three built-in strategies run on BTCUSDT and ETHUSDT."""
        specs = Config().enabled_strategies()
        assert [(s.id, s.plugin, s.strategy) for s in specs] == [
            ("momentum", "momentum", "momentum"),
            ("market_making", "market_making", "market_making"),
            ("scalping", "scalping", "scalping"),
        ]
        assert all(s.symbols == ("BTCUSDT", "ETHUSDT") for s in specs)

    @pytest.mark.usefixtures("plugins_on_path")
    def test_default_strategies_build_their_plugin_configs(self) -> None:
        """The embedded default is runnable: each plugin accepts its entry."""
        for spec in Config().enabled_strategies():
            build_strategy_config(spec)

    def test_data_lane_default_is_socket_and_reaches_supervision(self) -> None:
        """engine.dataLane defaults to the socket lane; grpc keeps batches on the stream; both reach the settings."""
        from host.app import settings

        assert parse({}, environ={}).engine.data_lane == "socket"
        assert settings(parse({}, environ={}))[0].data_lane == "socket"
        assert settings(parse({"engine": {"dataLane": "grpc"}}, environ={}))[0].data_lane == "grpc"

    def test_processing_timeout_default_is_5ms(self) -> None:
        """The per-event budget suits an out-of-process runner (the seed's 500us does not)."""
        assert Config().engine.processing_timeout == pytest.approx(0.005)

    def test_config_is_frozen(self) -> None:
        """Sections cannot be changed after loading."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            Config().server.port = 1  # type: ignore[misc]

    def test_breaker_policy_carries_the_engine_fields(self) -> None:
        """engine.breaker*/backoff*/restartBudget*/stableAfter become the supervisor's BreakerPolicy."""
        engine = parse({"engine": {"breakerWindow": "2m", "backoffJitter": 0.1}}, environ=NO_ENV).engine
        assert engine.breaker_policy() == BreakerPolicy(window_s=120.0, jitter=0.1)

    def test_channels_split_into_exact_and_patterns(self) -> None:
        """Channels with * ? [ are patterns (PSUBSCRIBE); the rest are exact (SUBSCRIBE)."""
        redis = parse({"redis": {"marketDataChannels": ["market:btcusdt", "market:*", "m?", "m[ab]"]}}).redis
        assert redis.exact_channels == ("market:btcusdt",)
        assert redis.channel_patterns == ("market:*", "m?", "m[ab]")

    def test_market_data_formats_name_b25_channels_and_the_rest_stay_seed(self) -> None:
        """marketDataFormats names a format per channel or pattern; one it does not name is the seed's."""
        formats = {"market_data:*": "b25-ticker", "orderbook:*": "b25-book", "trades:BTCUSDT": "b25-trade"}
        data = {"redis": {"marketDataChannels": [*formats, "market:btcusdt"], "marketDataFormats": formats}}
        config = parse(data, environ=NO_ENV)
        assert {c: config.redis.format_of(c) for c in config.redis.market_data_channels} == {
            **formats, "market:btcusdt": "seed"
        }  # fmt: skip
        assert config.warnings == ()

    def test_market_data_formats_default_to_none_named(self) -> None:
        """Without the key every channel is read in the seed's format, as before the key existed."""
        redis = Config().redis
        assert dict(redis.market_data_formats) == {}
        assert [redis.format_of(c) for c in redis.market_data_channels] == ["seed", "seed"]

    def test_a_b25_channel_left_in_the_seed_format_is_a_warning(self) -> None:
        """orderbook:* without a format loads, with a warning saying which format to name."""
        config = parse({"redis": {"marketDataChannels": ["orderbook:*", "market:*"]}}, environ=NO_ENV)
        (warning,) = config.warnings
        assert warning == (
            "redis.marketDataChannels: 'orderbook:*' looks like a b25 channel (b25-book) but is read as seed, which "
            "rejects b25's b25-book messages; set redis.marketDataFormats: {'orderbook:*': b25-book}"
        )

    def test_a_b25_channel_read_as_another_b25_family_is_a_warning(self) -> None:
        """trades:* read as b25-book (a copy-paste slip) is flagged the same way."""
        formats = {"trades:*": "b25-book"}
        config = parse({"redis": {"marketDataChannels": ["trades:*"], "marketDataFormats": formats}}, environ=NO_ENV)
        (warning,) = config.warnings
        assert "'trades:*' looks like a b25 channel (b25-trade) but is read as b25-book" in warning


class TestStrategies:
    def test_plugin_defaults_to_the_id_and_strategy_to_the_plugin(self) -> None:
        """An entry without plugin or strategy runs the plugin named like its id."""
        spec = parse({"strategies": {"momentum": {"symbols": ["BTCUSDT"]}}}, environ=NO_ENV).strategies["momentum"]
        assert (spec.plugin, spec.strategy, spec.enabled, spec.weight) == ("momentum", "momentum", True, 1.0)

    def test_one_plugin_can_run_under_several_ids(self) -> None:
        """Two instances of one plugin, on different symbols, with different parameters."""
        data = {
            "strategies": {
                "mom-btc": {"plugin": "momentum", "symbols": ["BTCUSDT"], "parameters": {"threshold": 0.01}},
                "mom-eth": {"plugin": "momentum", "symbols": ["ETHUSDT"]},
            }
        }
        specs = parse(data, environ=NO_ENV).strategies
        assert [(s.id, s.strategy, s.symbols) for s in specs.values()] == [
            ("mom-btc", "momentum", ("BTCUSDT",)),
            ("mom-eth", "momentum", ("ETHUSDT",)),
        ]

    def test_empty_entry_takes_the_defaults(self) -> None:
        """``momentum:`` with nothing under it is the momentum plugin with its own defaults."""
        spec = parse({"strategies": {"momentum": None}}, environ=NO_ENV).strategies["momentum"]
        assert spec == StrategySpec(id="momentum")

    def test_enabled_strategies_skips_disabled_and_keeps_file_order(self) -> None:
        """enabled_strategies() is the entries with enabled: true, in the order of the file."""
        data = {"strategies": {"scalping": {}, "momentum": {"enabled": False}, "market_making": {}}}
        ids = [s.id for s in parse(data, environ=NO_ENV).enabled_strategies()]
        assert ids == ["scalping", "market_making"]

    def test_explicit_empty_strategies_runs_none(self) -> None:
        """``strategies: {}`` means no strategy (and a warning), unlike a missing section."""
        config = parse({"strategies": {}}, environ=NO_ENV)
        assert config.enabled_strategies() == ()
        assert any("no strategy is enabled" in w for w in config.warnings)

    def test_parameters_are_passed_through_unchecked(self) -> None:
        """Parameters are the strategy's business: any mapping loads, nested values included."""
        params = {"anything": [1, 2], "nested": {"a": "b"}}
        spec = parse({"strategies": {"momentum": {"parameters": params}}}, environ=NO_ENV).strategies["momentum"]
        assert spec.parameters == params

    def test_params_merge_symbols_into_parameters(self) -> None:
        """params() is what the plugin's Config.from_mapping receives."""
        data = {"strategies": {"momentum": {"symbols": ["BTCUSDT"], "parameters": {"threshold": 0.03}}}}
        spec = parse(data, environ=NO_ENV).strategies["momentum"]
        assert spec.params() == {"threshold": 0.03, "symbols": ["BTCUSDT"]}

    def test_parameters_are_copied_and_read_only(self) -> None:
        """Changing the input after parse, or the loaded mapping, cannot change the config."""
        params: dict[str, Any] = {"levels": [1, 2]}
        spec = parse({"strategies": {"momentum": {"parameters": params}}}, environ=NO_ENV).strategies["momentum"]
        params["levels"].append(3)
        assert spec.parameters == {"levels": [1, 2]}
        with pytest.raises(TypeError):
            spec.parameters["levels"] = []  # type: ignore[index]


DURATIONS = [
    ("500us", 0.0005),
    ("500µs", 0.0005),  # micro sign U+00B5, as Go writes it
    ("500μs", 0.0005),  # Greek mu U+03BC, also accepted by Go
    ("250ns", 250e-9),
    ("10ms", 0.01),
    ("1.5s", 1.5),
    ("30s", 30.0),
    ("5m", 300.0),
    ("1h", 3600.0),
    ("1h30m", 5400.0),
    ("2h45m30.5s", 9930.5),
    ("1m0.5s", 60.5),
    (".5s", 0.5),
    ("0", 0.0),
    (" 2s ", 2.0),
    ("-1s", -1.0),
    (30, 30.0),
    (1.5, 1.5),
    (0, 0.0),
]


class TestDurations:
    @pytest.mark.parametrize(("text", "seconds"), DURATIONS)
    def test_parses_go_durations_and_plain_seconds(self, text: object, seconds: float) -> None:
        """Go duration strings and plain numbers become float seconds."""
        assert parse_duration(text, "x") == pytest.approx(seconds)

    @pytest.mark.parametrize(("text", "seconds"), [d for d in DURATIONS if d[1] > 0])
    def test_duration_keys_accept_every_format(self, text: object, seconds: float) -> None:
        """A duration key in the config takes any of the formats."""
        engine = parse({"engine": {"processingTimeout": text}}, environ=NO_ENV).engine
        assert engine.processing_timeout == pytest.approx(seconds)

    @pytest.mark.parametrize(
        "bad", ["abc", "5 s", "1x", "", "ms", "1.5.2s", "5S", "1h-30m", "--1s", True, None, [1], float("nan"), "inf"]
    )
    def test_bad_duration_names_the_key(self, bad: object) -> None:
        """A value that is no duration is an error naming the key and the accepted formats."""
        err = failure({"server": {"readTimeout": bad}})
        assert err.path == "server.readTimeout"
        assert "expected a duration such as 500us, 10ms, 1.5s, 5m, 1h30m or a number of seconds" in str(err)

    def test_number_as_string_asks_for_a_unit(self) -> None:
        """'10' as a string is not taken as seconds (Go rejects it too); the message suggests '10s'."""
        err = failure({"server": {"readTimeout": "10"}})
        assert "add a unit: '10s'" in err.reason

    @pytest.mark.parametrize("bad", ["-1s", 0, "0s"])
    def test_durations_that_must_be_positive(self, bad: object) -> None:
        """Durations are checked like numbers once parsed: a deadline must be > 0."""
        err = failure({"engine": {"processingTimeout": bad}})
        assert (err.path, err.reason) == ("engine.processingTimeout", f"must be > 0, got {bad!r}")


UNKNOWN_KEYS = [
    ({"srever": {}}, "srever", "server"),
    ({"stratgies": {}}, "stratgies", "strategies"),
    ({"server": {"readTimout": "1s"}}, "server.readTimout", "readTimeout"),
    ({"server": {"read_timeout": "1s"}}, "server.read_timeout", "readTimeout"),
    ({"redis": {"marketdatachannels": []}}, "redis.marketdatachannels", "marketDataChannels"),
    ({"engine": {"processingTimout": "5ms"}}, "engine.processingTimout", "processingTimeout"),
    ({"risk": {"maxDailyLos": 1}}, "risk.maxDailyLos", "maxDailyLoss"),
    ({"strategies": {"momentum": {"paramters": {}}}}, "strategies.momentum.paramters", "parameters"),
    ({"strategies": {"momentum": {"symbol": ["BTCUSDT"]}}}, "strategies.momentum.symbol", "symbols"),
    ({"strategies": {"momentum": {"plugn": "x"}}}, "strategies.momentum.plugn", "plugin"),
]


class TestUnknownKeys:
    @pytest.mark.parametrize(("data", "path", "suggestion"), UNKNOWN_KEYS)
    def test_unknown_key_names_its_path_and_a_suggestion(
        self, data: dict[str, Any], path: str, suggestion: str
    ) -> None:
        """An unknown key at any level is an error with its full path and the closest known key."""
        err = failure(data)
        assert err.path == path
        assert str(err) == f"{path}: unknown key; did you mean '{suggestion}'?"

    def test_unknown_key_without_a_close_match_lists_the_known_keys(self) -> None:
        """With nothing close, the message lists the keys the section has."""
        err = failure({"metrics": {"zzz": 1}})
        assert str(err) == "metrics.zzz: unknown key (known: enabled, port, path, namespace)"

    def test_config_error_is_an_engine_error(self) -> None:
        """ConfigError derives from the host's EngineError and carries path and reason."""
        err = failure({"srever": {}})
        assert isinstance(err, EngineError)
        assert (err.path, err.reason) == ("srever", "unknown key; did you mean 'server'?")


BAD_VALUES = [
    ({"server": {"port": "abc"}}, "server.port", "expected an integer, got 'abc'"),
    ({"server": {"port": 70000}}, "server.port", "must be a port number in 0..65535 (0: any free port), got 70000"),
    ({"server": {"port": None}}, "server.port", "expected an integer, got null"),
    ({"server": {"host": ""}}, "server.host", "must not be empty, got ''"),
    ({"server": []}, "server", "expected a mapping of keys, got a list []"),
    ({"redis": {"port": 0}}, "redis.port", "must be a port number in 1..65535, got 0"),
    ({"redis": {"db": -1}}, "redis.db", "must be >= 0, got -1"),
    ({"redis": {"poolSize": "10"}}, "redis.poolSize", "expected an integer, got '10'"),
    ({"redis": {"marketDataChannels": "market:btcusdt"}}, "redis.marketDataChannels", "expected a list of strings"),
    ({"redis": {"marketDataChannels": ["a", 3]}}, "redis.marketDataChannels[1]", "expected a string, got 3"),
    ({"redis": {"marketDataChannels": ["a", "a"]}}, "redis.marketDataChannels", "must be non-empty and distinct"),
    ({"redis": {"reconnectMaxDelay": "100ms"}}, "redis.reconnectMaxDelay", "must be >= reconnectMinDelay (0.5s)"),
    ({"redis": {"marketDataFormats": ["b25-book"]}}, "redis.marketDataFormats", "expected a mapping of strings to"),
    (
        {"redis": {"marketDataFormats": {"market:*": "b25-book"}}},
        "redis.marketDataFormats.market:*",
        "'market:*' is not in redis.marketDataChannels; a format is named for a channel or pattern subscribed there",
    ),
    (
        {"redis": {"marketDataFormats": {"market:btcusdt": "b25-books"}}},
        "redis.marketDataFormats.market:btcusdt",
        "must be one of seed, b25-ticker, b25-book, b25-trade, got 'b25-books'; did you mean 'b25-book'?",
    ),
    (
        {"redis": {"marketDataFormats": {"market:btcusdt": 1}}},
        "redis.marketDataFormats.market:btcusdt",
        "expected a string, got 1",
    ),
    (
        {"redis": {"marketDataFormats": {"market:btcusdt": None}}},
        "redis.marketDataFormats.market:btcusdt",
        "expected a string, got null",
    ),
    ({"redis": {"marketDataFormats": {5: "seed"}}}, "redis.marketDataFormats.5", "expected a string, got 5"),
    ({"nats": {"url": "localhost:4222"}}, "nats.url", "must be a nats://host:port URL"),
    ({"nats": {"maxReconnects": -2}}, "nats.maxReconnects", "must be >= -1, got -2"),
    ({"nats": {"jetstream": "yes"}}, "nats.jetstream", "expected true or false, got 'yes'"),
    ({"nats": {"durableName": 5}}, "nats.durableName", "expected a string, got 5 (quote it if it is meant as text"),
    ({"grpc": {"orderExecutionAddress": ""}}, "grpc.orderExecutionAddress", "must not be empty"),
    ({"grpc": {"maxRetries": -1}}, "grpc.maxRetries", "must be >= 0, got -1"),
    ({"grpc": {"breakerFailures": 0}}, "grpc.breakerFailures", "must be >= 1, got 0"),
    ({"engine": {"mode": "paper"}}, "engine.mode", "must be one of simulation, live, observation, got 'paper'"),
    ({"engine": {"mode": "Live"}}, "engine.mode", "got 'Live'; did you mean 'live'?"),
    ({"engine": {"aggregationMode": "avg"}}, "engine.aggregationMode", "must be one of priority, majority, weighted"),
    ({"engine": {"dataLane": "shm"}}, "engine.dataLane", "must be one of socket, grpc, got 'shm'"),
    ({"engine": {"hotReload": 1}}, "engine.hotReload", "expected true or false, got 1"),
    ({"engine": {"outboxCapacity": 0}}, "engine.outboxCapacity", "must be > 0, got 0"),
    ({"engine": {"runnerMemoryMb": -1}}, "engine.runnerMemoryMb", "must be >= 0, got -1"),
    ({"engine": {"ledgerRetentionDays": -1}}, "engine.ledgerRetentionDays", "must be >= 0, got -1"),
    ({"engine": {"ledgerRetentionDays": "30d"}}, "engine.ledgerRetentionDays", "expected an integer, got '30d'"),
    ({"engine": {"transportAllowance": "-1ms"}}, "engine.transportAllowance", "must be >= 0, got '-1ms'"),
    ({"engine": {"breakerConsecutiveFailures": 0}}, "engine.breakerConsecutiveFailures", "must be an integer >= 1"),
    ({"engine": {"backoffMax": "100ms"}}, "engine.backoffMax", "must be finite and >= backoffInitial"),
    ({"engine": {"backoffJitter": 1.5}}, "engine.backoffJitter", "must be in [0, 1)"),
    ({"engine": {"backoffMultiplier": 0.5}}, "engine.backoffMultiplier", "must be a finite number >= 1"),
    ({"engine": {"restartBudgetWindow": 0}}, "engine.restartBudgetWindow", "must be a finite number > 0"),
    ({"risk": {"maxOrderValue": -5}}, "risk.maxOrderValue", "must be > 0, got -5"),
    ({"risk": {"maxOrderValue": "10k"}}, "risk.maxOrderValue", "expected a finite number, got '10k'"),
    ({"risk": {"maxOrderValue": float("inf")}}, "risk.maxOrderValue", "expected a finite number, got inf"),
    ({"risk": {"maxOrdersPerSecond": 2.5}}, "risk.maxOrdersPerSecond", "expected an integer, got 2.5"),
    ({"risk": {"maxDrawdown": 1.5}}, "risk.maxDrawdown", "must be a fraction in (0, 1] such as 0.2, got 1.5"),
    ({"risk": {"priceCollar": 0}}, "risk.priceCollar", "must be a fraction in (0, 1) such as 0.05, got 0"),
    ({"risk": {"minAccountBalance": -1}}, "risk.minAccountBalance", "must be >= 0, got -1"),
    ({"risk": {"minAccountBalance": 200000}}, "risk.minAccountBalance", "must be < initialBalance (100000)"),
    ({"risk": {"allowedSymbols": ["A"], "blockedSymbols": ["A"]}}, "risk.blockedSymbols", "A also in allowedSymbols"),
    ({"risk": {"killSwitch": "false"}}, "risk.killSwitch", "expected true or false, got 'false'"),
    ({"logging": {"level": "verbose"}}, "logging.level", "must be one of debug, info, warning, error, got 'verbose'"),
    ({"logging": {"format": "text"}}, "logging.format", "must be one of auto, json, console, got 'text'"),
    ({"logging": {"maxBytes": -1}}, "logging.maxBytes", "must be >= 0, got -1"),
    ({"metrics": {"path": "metrics"}}, "metrics.path", "must start with '/', got 'metrics'"),
    ({"metrics": {"namespace": "strategy-engine"}}, "metrics.namespace", "must be a Prometheus name"),
    ({"strategies": ["momentum"]}, "strategies", "expected a mapping of keys, got a list"),
    ({"strategies": {"a b": {}}}, "strategies.a b", "a strategy id must be letters, digits"),
    ({"strategies": {"mom-btc": {}}}, "strategies.mom-btc.plugin", "(it defaults to the strategy id; set plugin)"),
    ({"strategies": {"m": {"plugin": "my/plugin"}}}, "strategies.m.plugin", "must be a package folder name"),
    ({"strategies": {"m": {"strategy": " "}}}, "strategies.m.strategy", "must not be empty"),
    ({"strategies": {"m": {"weight": 0}}}, "strategies.m.weight", "must be > 0, got 0"),
    ({"strategies": {"m": {"enabled": "no"}}}, "strategies.m.enabled", "expected true or false, got 'no'"),
    ({"strategies": {"m": {"symbols": [""]}}}, "strategies.m.symbols", "must be non-empty and distinct"),
    ({"strategies": {"m": {"parameters": [1]}}}, "strategies.m.parameters", "expected a mapping, got [1]"),
    ({"strategies": {"m": {"parameters": {1: 2}}}}, "strategies.m.parameters.1", "parameter names must be strings"),
    ({"strategies": {"m": {"parameters": {"symbols": []}}}}, "strategies.m.parameters.symbols", "set symbols on"),
]


class TestBadValues:
    @pytest.mark.parametrize(("data", "path", "expected"), BAD_VALUES)
    def test_bad_value_names_its_path_and_what_was_expected(
        self, data: dict[str, Any], path: str, expected: str
    ) -> None:
        """A value of the wrong type or outside its range is an error: key path, rule, what was given."""
        err = failure(data)
        assert err.path == path
        assert str(err).startswith(f"{path}: ")
        assert expected in err.reason

    def test_top_level_must_be_a_mapping(self) -> None:
        """parse() of something that is not a mapping says so."""
        err = failure(["server"])  # type: ignore[arg-type]
        assert str(err) == "expected a mapping of sections at the top level, got a list"

    @pytest.mark.parametrize(("level", "normalized"), [("DEBUG", "debug"), ("Info", "info"), ("WARN", "warning")])
    def test_log_level_is_case_insensitive(self, level: str, normalized: str) -> None:
        """logging.level takes any case and the seed's 'warn'."""
        assert parse({"logging": {"level": level}}, environ=NO_ENV).logging.level == normalized


ENV_VALUES = [
    ("STRATEGY_ENGINE_REDIS_HOST", "redis.internal", ("redis", "host"), "redis.internal"),
    ("STRATEGY_ENGINE_REDIS_PORT", "6380", ("redis", "port"), 6380),
    ("STRATEGY_ENGINE_REDIS_PASSWORD", "s3cret", ("redis", "password"), "s3cret"),
    ("STRATEGY_ENGINE_NATS_URL", "nats://nats:4222", ("nats", "url"), "nats://nats:4222"),
    ("STRATEGY_ENGINE_GRPC_ORDER_EXECUTION_ADDRESS", "oms:50051", ("grpc", "order_execution_address"), "oms:50051"),
    ("STRATEGY_ENGINE_SERVER_PORT", "8080", ("server", "port"), 8080),
    ("STRATEGY_ENGINE_SERVER_AUTH_TOKEN", "t0ken", ("server", "auth_token"), "t0ken"),
    ("STRATEGY_ENGINE_ENGINE_MODE", "live", ("engine", "mode"), "live"),
    ("STRATEGY_ENGINE_LOG_LEVEL", "DEBUG", ("logging", "level"), "debug"),
]

ENV_ERRORS = [
    ("STRATEGY_ENGINE_REDIS_PORT", "abc", "expected an integer, got 'abc'"),
    ("STRATEGY_ENGINE_REDIS_PORT", "", "expected an integer, got ''"),
    ("STRATEGY_ENGINE_SERVER_PORT", "99999", "must be a port number in 0..65535 (0: any free port), got 99999"),
    ("STRATEGY_ENGINE_ENGINE_MODE", "paper", "must be one of simulation, live, observation, got 'paper'"),
    ("STRATEGY_ENGINE_LOG_LEVEL", "loud", "must be one of debug, info, warning, error, got 'loud'"),
    ("STRATEGY_ENGINE_NATS_URL", "localhost:4222", "must be a nats://host:port URL"),
    ("STRATEGY_ENGINE_REDIS_HOST", " ", "must not be empty"),
]


class TestEnvironment:
    def test_every_override_is_tested(self) -> None:
        """The table below covers every variable the engine reads."""
        assert {row[0] for row in ENV_VALUES} == set(ENV_OVERRIDES)

    @pytest.mark.parametrize(("var", "text", "where", "expected"), ENV_VALUES)
    def test_override_applies(self, var: str, text: str, where: tuple[str, str], expected: object) -> None:
        """Each STRATEGY_ENGINE_* variable sets its key, converted and checked like the file's value."""
        config = parse({}, environ={var: text})
        assert getattr(getattr(config, where[0]), where[1]) == expected

    def test_override_wins_over_the_file(self, tmp_path: Path) -> None:
        """Overrides are applied after the file."""
        path = tmp_path / "config.yaml"
        path.write_text("redis:\n  port: 6379\n  host: file-host\n", encoding="utf-8")
        redis = load(path, environ={"STRATEGY_ENGINE_REDIS_PORT": "7000"}).redis
        assert (redis.host, redis.port) == ("file-host", 7000)

    @pytest.mark.parametrize(("var", "text", "expected"), ENV_ERRORS)
    def test_bad_override_names_the_variable(self, var: str, text: str, expected: str) -> None:
        """A bad value from the environment is an error naming the variable, not a key of the file."""
        err = failure({}, environ={var: text})
        assert err.path == f"env {var}"
        assert expected in err.reason

    def test_bad_port_message_is_exact(self) -> None:
        """The message reads: env NAME: what was expected, what was given."""
        err = failure({}, environ={"STRATEGY_ENGINE_REDIS_PORT": "abc"})
        assert str(err) == "env STRATEGY_ENGINE_REDIS_PORT: expected an integer, got 'abc'"

    def test_process_environment_is_the_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without environ=, load reads os.environ."""
        monkeypatch.setenv("STRATEGY_ENGINE_ENGINE_MODE", "observation")
        assert load(None).engine.mode == "observation"

    def test_other_variables_are_ignored(self) -> None:
        """Only the listed variables override anything."""
        assert parse({}, environ={"STRATEGY_ENGINE_RISK_KILL_SWITCH": "true", "REDIS_PORT": "1"}) == Config()


class TestWarnings:
    def test_metrics_port_mismatch_loads_with_a_warning(self) -> None:
        """metrics.port other than server.port still loads, and says metrics stay on server.port."""
        config = parse({"metrics": {"port": 9100}}, environ=NO_ENV)
        assert config.metrics.port == 9100
        (warning,) = config.warnings
        assert "metrics.port (9100) differs from server.port (9092)" in warning
        assert "served on server.port only" in warning

    def test_unset_metrics_port_follows_server_port(self) -> None:
        """Moving server.port (in the file or the environment) moves metrics.port: no warning."""
        assert parse({"server": {"port": 8080}}, environ=NO_ENV).metrics.port == 8080
        config = parse({}, environ={"STRATEGY_ENGINE_SERVER_PORT": "8081"})
        assert (config.metrics.port, config.warnings) == (8081, ())

    def test_disabled_metrics_do_not_warn(self) -> None:
        """With metrics off their port does not matter."""
        assert parse({"metrics": {"enabled": False, "port": 9100}}, environ=NO_ENV).warnings == ()

    def test_open_operator_controls_warn(self) -> None:
        """Binding beyond localhost without an auth token is flagged; with a token it is not."""
        open_ = parse({"server": {"host": "0.0.0.0"}}, environ=NO_ENV)
        assert any("server.authToken is empty" in w for w in open_.warnings)
        guarded = parse({"server": {"host": "0.0.0.0", "authToken": "t"}}, environ=NO_ENV)
        assert guarded.warnings == ()


class TestSecrets:
    def test_secrets_are_not_in_repr(self) -> None:
        """The Redis password and the auth token never appear in repr or str of the config."""
        data = {"redis": {"password": "hunter2-redis"}, "server": {"authToken": "hunter2-token"}}
        config = parse(data, environ=NO_ENV)
        assert (config.redis.password, config.server.auth_token) == ("hunter2-redis", "hunter2-token")
        for text in (repr(config), str(config), repr(config.redis), repr(config.server)):
            assert "hunter2" not in text

    def test_secrets_from_the_environment_are_not_in_repr(self) -> None:
        """Overridden secrets are just as hidden."""
        env = {"STRATEGY_ENGINE_REDIS_PASSWORD": "hunter2-env", "STRATEGY_ENGINE_SERVER_AUTH_TOKEN": "hunter2-tok"}
        assert "hunter2" not in repr(parse({}, environ=env))

    def test_bad_secret_value_is_not_in_the_message(self) -> None:
        """A secret of the wrong type is reported without echoing it."""
        err = failure({"redis": {"password": 8675309}})
        assert err.path == "redis.password"
        assert "8675309" not in str(err)
        assert err.reason == "expected a string, got an integer (value hidden; quote it)"


class TestFiles:
    def test_missing_file_names_the_path(self, tmp_path: Path) -> None:
        """A path that does not exist is a ConfigError naming it."""
        path = tmp_path / "nope.yaml"
        with pytest.raises(ConfigError) as info:
            load(path, environ=NO_ENV)
        assert info.value.path == str(path)
        assert str(info.value) == f"{path}: no such config file"

    def test_directory_is_not_a_config_file(self, tmp_path: Path) -> None:
        """A directory given as the config is a ConfigError naming it, not an OSError."""
        with pytest.raises(ConfigError) as info:
            load(tmp_path, environ=NO_ENV)
        assert info.value.path == str(tmp_path)
        assert "cannot read the config file" in info.value.reason

    def test_str_path_is_accepted(self) -> None:
        """load() takes a str as well as a Path."""
        assert load(str(EXAMPLE), environ=NO_ENV) == load(EXAMPLE, environ=NO_ENV)

    @pytest.mark.parametrize(
        ("text", "kind"),
        [("- server\n- redis\n", "a list"), ("just some text\n", "a string"), ("42\n", "an integer")],
    )
    def test_yaml_that_is_not_a_mapping(self, tmp_path: Path, text: str, kind: str) -> None:
        """A file whose top level is not a mapping of sections says what it is instead."""
        path = tmp_path / "config.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load(path, environ=NO_ENV)
        assert str(info.value) == f"{path}: expected a mapping of sections at the top level, got {kind}"

    @pytest.mark.parametrize(
        ("text", "line"),
        [
            ("server:\n  port: 9092\n bad: indent\n", 3),
            ("server:\n  host: [unclosed\nredis:\n  port: 1\n", 3),
            ("redis:\n  host: a\n\n\n  port: 'x\n", 5),
            ("\tserver: {}\n", 1),
        ],
    )
    def test_malformed_yaml_names_the_line(self, tmp_path: Path, text: str, line: int) -> None:
        """A YAML syntax error is a ConfigError naming the file and the line."""
        path = tmp_path / "config.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load(path, environ=NO_ENV)
        assert info.value.path == str(path)
        assert info.value.reason.startswith("invalid YAML: ")
        assert f" at line {line}, column " in info.value.reason

    def test_duplicate_key_is_an_error(self, tmp_path: Path) -> None:
        """A key written twice is reported (PyYAML would silently keep the last one)."""
        path = tmp_path / "config.yaml"
        path.write_text("server:\n  port: 9092\n  host: x\n  port: 9093\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load(path, environ=NO_ENV)
        assert info.value.reason == "invalid YAML: duplicate key 'port' at line 4, column 3"

    def test_merge_keys_may_be_overridden(self, tmp_path: Path) -> None:
        """YAML anchors and << merges work, and a merged key may be overridden (that is not a duplicate)."""
        path = tmp_path / "config.yaml"
        path.write_text(
            "strategies:\n"
            "  mom-btc: &mom {plugin: momentum, symbols: [BTCUSDT], weight: 1.0}\n"
            "  mom-eth:\n    <<: *mom\n    symbols: [ETHUSDT]\n",
            encoding="utf-8",
        )
        specs = load(path, environ=NO_ENV).strategies
        assert [(s.id, s.plugin, s.symbols) for s in specs.values()] == [
            ("mom-btc", "momentum", ("BTCUSDT",)),
            ("mom-eth", "momentum", ("ETHUSDT",)),
        ]

    def test_file_values_are_checked_like_parsed_ones(self, tmp_path: Path) -> None:
        """A bad value in a file reports the key path, as parse() does."""
        path = tmp_path / "config.yaml"
        path.write_text("risk:\n  maxOrderValue: -5\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load(path, environ=NO_ENV)
        assert str(info.value) == "risk.maxOrderValue: must be > 0, got -5"

    def test_go_service_style_file_loads(self, tmp_path: Path) -> None:
        """A config in the seed's style (camelCase, durations as strings, some sections missing) loads."""
        path = tmp_path / "config.yaml"
        path.write_text(
            "server:\n  port: 9092\n  readTimeout: 30s\n"
            "redis:\n  host: redis\n  marketDataChannels: ['market:*']\n"
            "engine:\n  mode: live\n  processingTimeout: 500us\n  aggregationMode: weighted\n"
            "strategies:\n  momentum:\n    symbols: [BTCUSDT]\n    weight: 2\n"
            "    parameters: {lookback_period: 10, threshold: 0.01}\n",
            encoding="utf-8",
        )
        config = load(path, environ=NO_ENV)
        assert config.server.read_timeout == 30.0
        assert config.engine.processing_timeout == pytest.approx(0.0005)
        assert (config.engine.mode, config.redis.channel_patterns) == ("live", ("market:*",))
        assert config.strategies["momentum"].weight == 2.0


# --- the Go service's own config.yaml ---------------------------------------------------------------

# A byte-for-byte copy of the Go service's config.example.yaml (the project's shared
# compat/go-service-config.yaml; see tests/compat/README.md), kept in the tests so they run with only
# the project checked out.
GO_CONFIG = ROOT / "tests" / "compat" / "go-service-config.yaml"
SHARED_GO_CONFIG = ROOT.parent / "shared" / "compat" / "go-service-config.yaml"

GO_IGNORED = {
    "server.mode": "production",
    "server.idleTimeout": "60s",
    "server.maxHeaderBytes": 1048576,
    "redis.poolSize": 20,
    "redis.minIdleConns": 10,
    "engine.maxConcurrent": 10,
    "engine.reloadInterval": "30s",
    "strategies.pythonPath": "/usr/bin/python3",
    "strategies.pythonVenv": "",
}


def go_data() -> dict[str, Any]:
    data = yaml.safe_load(GO_CONFIG.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def uses(config: Config) -> dict[str, tuple[str, str]]:
    return {use.key: (use.how, use.detail) for use in config.key_report}


def with_key(path: str, value: object, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    section, key = path.split(".")
    data = json.loads(json.dumps(base or {}))
    data.setdefault(section, {})[key] = value
    return data


class TestGoServiceConfig:
    def test_copy_matches_the_shared_fixture(self) -> None:
        """The embedded copy is byte-identical to the shared compat file (checked where that file exists)."""
        if not SHARED_GO_CONFIG.is_file():
            pytest.skip("the shared compat folder is not next to the project")
        assert GO_CONFIG.read_bytes() == SHARED_GO_CONFIG.read_bytes()

    def test_loads_unchanged(self) -> None:
        """The Go service's config.yaml loads as it is: every key is used, mapped or ignored, none refused."""
        config = load(GO_CONFIG, environ=NO_ENV)
        file_keys = [f"{s}.{k}" for s, values in go_data().items() for k in values]
        reported = [use.key for use in config.key_report]
        covering = [next(k for k in file_keys if r == k or r.startswith(f"{k}.")) for r in reported]
        assert list(dict.fromkeys(covering)) == file_keys  # each key of the file, in file order
        assert {use.how for use in config.key_report} == {"used", "mapped", "ignored"}

    def test_values_mean_what_they_meant(self) -> None:
        """Used keys keep their values; the renamed ones land on the engine's keys."""
        config = load(GO_CONFIG, environ=NO_ENV)
        assert config.grpc.order_execution_address == "localhost:50051"
        assert (config.grpc.timeout, config.grpc.max_retries) == (5.0, 3)
        assert config.engine.processing_timeout == pytest.approx(0.0005)
        assert (config.nats.reconnect_wait, config.nats.max_reconnects) == (2.0, 10)
        assert (config.risk.max_order_value, config.risk.allowed_symbols) == (
            50000.0,
            ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
        )
        assert (config.logging.destination, config.logging.max_bytes, config.logging.backup_count) == (
            "stdout", 100 * 1024 * 1024, 10
        )  # fmt: skip
        assert (config.logging.max_age, config.logging.compress) == (30, True)

    @pytest.mark.parametrize("path", sorted(GO_IGNORED))
    def test_ignored_key_is_reported_with_its_reason(self, path: str) -> None:
        """A Go key with no meaning here loads and is reported once as ignored, with why."""
        base = {"strategies": {"enabled": []}} if path.startswith("strategies.") else {}
        config = parse(with_key(path, GO_IGNORED[path], base), environ=NO_ENV)
        how, why = uses(config)[path]
        assert how == "ignored" and len(why) > 20
        assert {use.key for use in config.notes} == {path} | ({"strategies.enabled"} if base else set())

    @pytest.mark.parametrize(
        ("path", "bad", "expected"),
        [
            ("server.mode", 1, "expected a string, got 1"),
            ("server.idleTimeout", "soon", "expected a duration"),
            ("redis.minIdleConns", "10", "expected an integer, got '10'"),
            ("engine.maxConcurrent", True, "expected an integer, got true"),
        ],
    )
    def test_ignored_key_is_still_type_checked(self, path: str, bad: object, expected: str) -> None:
        """An ignored key's value must still be what the Go service would have read."""
        err = failure(with_key(path, bad))
        assert err.path == path and expected in err.reason

    def test_unknown_key_is_still_an_error_with_a_suggestion(self) -> None:
        """A key neither service knows is refused, and the Go service's names are offered too."""
        assert (
            str(failure({"server": {"idleTimeot": "1s"}}))
            == "server.idleTimeot: unknown key; did you mean 'idleTimeout'?"
        )
        assert str(failure({"logging": {"maxsize": 5}})) == "logging.maxsize: unknown key; did you mean 'maxSize'?"
        err = failure({"strategies": {"enabled": ["momentum"], "config": {}}})
        assert str(err) == "strategies.config: unknown key; did you mean 'configs'?"

    def test_order_execution_addr_is_the_address(self) -> None:
        """grpc.orderExecutionAddr (the Go name) sets grpc.orderExecutionAddress."""
        config = parse({"grpc": {"orderExecutionAddr": "oes:50051"}}, environ=NO_ENV)
        assert config.grpc.order_execution_address == "oes:50051"
        assert uses(config)["grpc.orderExecutionAddr"] == ("mapped", "-> grpc.orderExecutionAddress")

    def test_env_override_still_wins_over_the_go_name(self) -> None:
        """The address's environment override applies after the file, whichever name the file used."""
        env = {"STRATEGY_ENGINE_GRPC_ORDER_EXECUTION_ADDRESS": "env:1"}
        assert parse({"grpc": {"orderExecutionAddr": "oes:50051"}}, environ=env).grpc.order_execution_address == "env:1"

    def test_both_names_of_a_key_is_an_error(self) -> None:
        """Setting the Go name and the engine's name of one key is refused: which one was meant?"""
        err = failure({"grpc": {"orderExecutionAddr": "a:1", "orderExecutionAddress": "b:2"}})
        assert err.path == "grpc.orderExecutionAddr" and "orderExecutionAddress, which is set too" in err.reason


class TestGoStrategies:
    def test_enabled_names_run_the_plugin_of_that_name_with_its_configs(self) -> None:
        """strategies.enabled + strategies.configs: one strategy per name, its plugin that name, on all symbols."""
        config = load(GO_CONFIG, environ=NO_ENV)
        assert [spec.id for spec in config.enabled_strategies()] == ["momentum", "market_making", "scalping"]
        for spec in config.enabled_strategies():
            assert (spec.plugin, spec.strategy, spec.symbols) == (spec.id, spec.id, ())
        assert dict(config.strategies["momentum"].parameters) == {
            "lookback_period": 20, "threshold": 0.02, "max_position": 1000.0
        }  # fmt: skip

    @pytest.mark.parametrize("sid", ["momentum", "market_making", "scalping"])
    @pytest.mark.usefixtures("plugins_on_path")
    def test_builtin_strategies_accept_the_go_parameters(self, sid: str) -> None:
        """Each built-in strategy's typed config accepts the Go service's parameters for it."""
        spec = load(GO_CONFIG, environ=NO_ENV).strategies[sid]
        config = build_strategy_config(spec)
        assert {k: getattr(config, k) for k in spec.parameters} == dict(spec.parameters)

    @pytest.mark.parametrize("inventory", [-1000.0, -250.0, 0.0, 400.0, 999.0])
    @pytest.mark.usefixtures("plugins_on_path")
    def test_market_making_quotes_where_the_go_service_quoted(self, inventory: float) -> None:
        """spread and inventory_skew are converted so the built-in quotes the Go service's prices."""
        go = go_data()["strategies"]["configs"]["market_making"]
        spec = load(GO_CONFIG, environ=NO_ENV).strategies["market_making"]
        quotes = importlib.import_module("market_making.quoting").quotes
        mid, skew = 60_000.0, go["inventory_skew"] * inventory / go["max_inventory"]
        go_bid, go_ask = mid * (1 - go["spread"] * (1 + skew)), mid * (1 + go["spread"] * (1 - skew))
        ours = quotes(build_strategy_config(spec), mid - 20.0, mid + 20.0, inventory)  # 6.7 bp: past min_spread_bps
        assert ours.bid in (None, pytest.approx(go_bid)) and ours.ask in (None, pytest.approx(go_ask))
        assert ours.bid is not None or ours.ask is not None

    def test_a_config_not_enabled_is_configured_but_not_run(self) -> None:
        """A name under configs but not in enabled is a disabled strategy (a live edit can enable it)."""
        config = parse({"strategies": {"enabled": ["momentum"], "configs": {"scalping": {"stop_loss": 0.001}}}},
                       environ=NO_ENV)  # fmt: skip
        assert [spec.id for spec in config.enabled_strategies()] == ["momentum"]
        assert config.strategies["scalping"].enabled is False
        assert dict(config.strategies["momentum"].parameters) == {}
        assert "not run" in uses(config)["strategies.configs.scalping"][1]

    def test_enabled_and_nothing_else(self) -> None:
        """enabled alone runs the strategies on their own defaults; an empty list runs none."""
        assert [
            s.id for s in parse({"strategies": {"enabled": ["scalping"]}}, environ=NO_ENV).enabled_strategies()
        ] == ["scalping"]
        assert parse({"strategies": {"enabled": []}}, environ=NO_ENV).enabled_strategies() == ()

    @pytest.mark.parametrize(
        ("strategies", "path", "expected"),
        [
            ({"enabled": "momentum"}, "strategies.enabled", "expected a list of strategy names"),
            ({"enabled": ["momentum", "momentum"]}, "strategies.enabled[1]", "'momentum' is listed twice"),
            ({"enabled": ["market-making"]}, "strategies.enabled[0]", "a Python identifier"),
            ({"enabled": [], "configs": {"momentum": [1]}}, "strategies.configs.momentum", "expected a mapping"),
            ({"enabled": [], "configs": "x"}, "strategies.configs", "expected a mapping of strategy name"),
            ({"configs": {"market_making": {"spread": "wide"}}}, "strategies.configs.market_making.spread", "finite"),
        ],
    )
    def test_bad_go_strategies_name_the_key(self, strategies: dict[str, Any], path: str, expected: str) -> None:
        """A malformed enabled/configs section is refused, naming the Go key at fault."""
        err = failure({"strategies": strategies})
        assert err.path == path and expected in err.reason

    def test_engine_shape_still_loads(self) -> None:
        """Strategy entries by id (the engine's shape) are untouched, even one named like a Go key."""
        config = parse({"strategies": {"enabled": {"plugin": "momentum"}}}, environ=NO_ENV)
        assert config.strategies["enabled"].plugin == "momentum"


class TestGoRiskAndLogging:
    def test_risk_enabled_true_is_the_default(self) -> None:
        """risk.enabled: true loads: risk checks are always on, and it is reported as such."""
        config = parse({"risk": {"enabled": True}}, environ=NO_ENV)
        assert config.risk == RiskConfig() and uses(config)["risk.enabled"][0] == "mapped"

    def test_risk_cannot_be_turned_off(self) -> None:
        """risk.enabled: false is refused: every order passes risk, and the message says what to do instead."""
        err = failure({"risk": {"enabled": False}})
        assert err.path == "risk.enabled" and "cannot be turned off" in err.reason
        assert "engine.mode: observation" in err.reason

    def test_risk_enabled_must_be_a_boolean(self) -> None:
        assert "expected true or false" in failure({"risk": {"enabled": "yes"}}).reason

    @pytest.mark.parametrize(("output", "destination"), [("stdout", "stdout"), ("stderr", "stderr"), ("file", "file")])
    def test_output_picks_the_destination(self, output: str, destination: str) -> None:
        """logging.output stdout/stderr/file; the file is only written with output: file."""
        config = parse({"logging": {"output": output, "file": "/tmp/x.log"}}, environ=NO_ENV)
        assert config.logging.destination == destination
        assert uses(config)["logging.file"][0] == ("used" if output == "file" else "ignored")

    def test_output_file_needs_a_file(self) -> None:
        assert str(failure({"logging": {"output": "file"}})) == (
            "logging.file: must name the log file when logging.output is file"
        )

    def test_output_auto_keeps_the_engine_behaviour(self) -> None:
        """No output key: the file when one is named, else stderr (as before)."""
        assert parse({"logging": {"file": "x.log"}}, environ=NO_ENV).logging.destination == "file"
        assert Config().logging.destination == "stderr"

    @pytest.mark.parametrize(("size", "max_bytes"), [(100, 100 * 2**20), (1, 2**20), (0, 100 * 2**20)])
    def test_max_size_megabytes_is_max_bytes(self, size: int, max_bytes: int) -> None:
        """logging.maxSize (MB) -> maxBytes; 0 is lumberjack's default of 100 MB, not 'never rotate'."""
        assert parse({"logging": {"maxSize": size}}, environ=NO_ENV).logging.max_bytes == max_bytes

    @pytest.mark.parametrize(("backups", "count"), [(10, 10), (0, 1000)])
    def test_max_backups_is_backup_count(self, backups: int, count: int) -> None:
        """logging.maxBackups -> backupCount; 0 (keep all) keeps 1000, pruned by maxAge."""
        assert parse({"logging": {"maxBackups": backups}}, environ=NO_ENV).logging.backup_count == count

    @pytest.mark.parametrize(
        ("logging", "path", "expected"),
        [
            ({"maxSize": -1}, "logging.maxSize", "must be >= 0, got -1"),
            ({"maxSize": "100MB"}, "logging.maxSize", "expected an integer"),
            ({"maxSize": 5, "maxBytes": 10}, "logging.maxSize", "logging.maxBytes, which is set too"),
            ({"maxBackups": 3, "backupCount": 3}, "logging.maxBackups", "logging.backupCount, which is set too"),
            ({"maxAge": -1}, "logging.maxAge", "must be >= 0"),
            ({"output": "syslog"}, "logging.output", "must be one of auto, stdout, stderr, file"),
        ],
    )
    def test_bad_rotation_keys_name_the_key(self, logging: dict[str, Any], path: str, expected: str) -> None:
        err = failure({"logging": logging})
        assert err.path == path and expected in err.reason


class TestGoAuth:
    def test_enabled_api_key_is_the_auth_token(self) -> None:
        """server.enableAuth: true with server.apiKey: the key is the operator controls' bearer token."""
        config = parse({"server": {"enableAuth": True, "apiKey": "s3cret"}}, environ=NO_ENV)
        assert config.server.auth_token == "s3cret" and uses(config)["server.apiKey"][0] == "mapped"

    def test_api_key_without_enable_auth_is_ignored(self) -> None:
        """As in the Go service, apiKey means nothing unless enableAuth is true."""
        config = parse({"server": {"apiKey": "s3cret", "enableAuth": False}}, environ=NO_ENV)
        assert config.server.auth_token == "" and uses(config)["server.apiKey"][0] == "ignored"

    def test_enable_auth_without_a_key_is_an_error(self) -> None:
        assert failure({"server": {"enableAuth": True}}).path == "server.enableAuth"
        assert failure({"server": {"enableAuth": True, "apiKey": " "}}).path == "server.apiKey"

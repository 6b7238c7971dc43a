"""Engine configuration: one frozen dataclass per section of the service's camelCase ``config.yaml``.

Model. ``load(path)`` reads a YAML file (no path: the embedded defaults, which run the built-in
strategies in simulation mode) and ``parse(data)`` turns plain data into a ``Config``; both apply the
``STRATEGY_ENGINE_*`` environment overrides (``ENV_OVERRIDES``) after the file. A YAML key is the
camelCase form of its snake_case field (``readTimeout`` -> ``read_timeout``). A missing key, and a
section or strategy entry left empty (null), takes the default written next to the field; a scalar
key left empty is an error. Durations are float seconds, written as Go durations (``500us``,
``1.5s``, ``1h30m``) or plain numbers of seconds.

Everything is checked here, once: an unknown key (with a did-you-mean), a value of the wrong type or
out of range raises ``ConfigError`` naming the full key path, so the components that read a
``Config`` never re-check it. What does not stop the engine but is likely a mistake comes back in
``Config.warnings``. Pure apart from reading the file: the environment is passed in.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, get_type_hints
from urllib.parse import urlsplit

import yaml

from host.errors import EngineError
from host.supervisor.policy import BreakerPolicy

__all__ = [
    "Config",
    "ConfigError",
    "ENV_OVERRIDES",
    "load",
    "parse",
    "parse_duration",
    "ServerConfig",
    "RedisConfig",
    "NatsConfig",
    "GrpcConfig",
    "EngineConfig",
    "StrategySpec",
    "RiskConfig",
    "LoggingConfig",
    "MetricsConfig",
    "MODES",
    "AGGREGATION_MODES",
    "LOG_LEVELS",
    "LOG_FORMATS",
]

T = TypeVar("T")
S = TypeVar("S", bound="_Section")
Check = Callable[[Any], str | None]  # a rule: None when the value keeps it, else "must be ..."

MODES = ("simulation", "live", "observation")
AGGREGATION_MODES = ("priority", "majority", "weighted", "unanimous")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")


class ConfigError(EngineError):
    """A config file or value is not acceptable; ``path`` is the key path (or the file, or the env var)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


# --- durations ----------------------------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_HELP = "expected a duration such as 500us, 10ms, 1.5s, 5m, 1h30m or a number of seconds"


def parse_duration(value: object, path: str) -> float:
    """Seconds from a Go duration string or a plain number of seconds; ConfigError naming ``path``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration_text(value.strip())
    else:
        seconds = math.nan
    if not math.isfinite(seconds):
        unit = f" (add a unit: '{value.strip()}s')" if isinstance(value, str) and _is_number(value) else ""
        raise ConfigError(path, f"{_DURATION_HELP}, got {_show(value)}{unit}")
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _duration_text(text: str) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            return math.nan
        total += float(match[1]) * _UNITS[match[2]]
        pos = match.end()
    return sign * total if body else math.nan


# --- field declarations and rules ---------------------------------------------------------------


def _opt(
    default: T,
    check: Check | None = None,
    *,
    duration: bool = False,
    choices: tuple[str, ...] = (),
    normalize: Callable[[str], str] | None = None,
    secret: bool = False,
) -> T:
    meta = {"check": check, "duration": duration, "choices": choices, "normalize": normalize}
    return field(default=default, repr=not secret, metadata=meta)


def _above(bound: float) -> Check:
    return lambda value: None if value > bound else f"must be > {bound:g}"


def _at_least(bound: float) -> Check:
    return lambda value: None if value >= bound else f"must be >= {bound:g}"


def _fraction(value: float) -> str | None:
    return None if 0 < value < 1 else "must be a fraction in (0, 1) such as 0.05"


def _fraction_or_one(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be a fraction in (0, 1] such as 0.2"


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be a port number in 1..65535"


def _listen_port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number in 0..65535 (0: any free port)"


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _names(value: tuple[str, ...]) -> str | None:
    ok = all(item.strip() for item in value) and len(set(value)) == len(value)
    return None if ok else "entries must be non-empty and distinct"


def _nats_urls(value: str) -> str | None:
    parts = [urlsplit(part.strip()) for part in value.split(",")]
    ok = all(part.scheme in ("nats", "tls", "ws", "wss") and part.netloc for part in parts)
    return None if ok else "must be a nats://host:port URL (or a comma-separated list of them)"


def _url_path(value: str) -> str | None:
    return None if value.startswith("/") else "must start with '/'"


def _identifier(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) is not None
    return None if ok else "must be a Prometheus name: letters, digits and '_', not starting with a digit"


def _log_level(value: str) -> str:
    return {"warn": "warning"}.get(value.lower(), value.lower())


# --- sections -------------------------------------------------------------------------------------


class _Section:
    def _problems(self) -> Iterator[tuple[str, str]]:
        """Rules across fields: (camelCase key, reason) for each one broken."""
        return iter(())


@dataclass(frozen=True)
class ServerConfig(_Section):
    """The single HTTP port: /health, /ready, /status, /metrics and the operator controls."""

    host: str = _opt("127.0.0.1", _not_empty)  # address to bind; localhost by default, "0.0.0.0" for all
    port: int = _opt(9092, _listen_port)  # the dashboards' port; 0 = any free port
    read_timeout: float = _opt(10.0, _above(0), duration=True)  # to read a whole request
    write_timeout: float = _opt(10.0, _above(0), duration=True)  # to write a whole response
    auth_token: str = _opt("", secret=True)  # bearer token for operator controls; "" = no token required


@dataclass(frozen=True)
class RedisConfig(_Section):
    """Market data: Redis pub/sub channels carrying the service's JSON messages."""

    host: str = _opt("127.0.0.1", _not_empty)  # Redis server address
    port: int = _opt(6379, _port)  # Redis server port
    password: str = _opt("", secret=True)  # AUTH password; "" = none
    db: int = _opt(0, _at_least(0))  # database number selected on connect
    market_data_channels: tuple[str, ...] = _opt(("market:btcusdt", "market:ethusdt"), _names)  # with * ? [ : patterns
    pool_size: int = _opt(10, _above(0))  # most connections held open
    reconnect_min_delay: float = _opt(0.5, _above(0), duration=True)  # first wait after a lost connection
    reconnect_max_delay: float = _opt(30.0, _above(0), duration=True)  # the wait doubles up to this
    stale_after: float = _opt(5.0, _above(0), duration=True)  # a symbol silent this long is reported stale

    @property
    def exact_channels(self) -> tuple[str, ...]:
        """Channels to SUBSCRIBE to."""
        return tuple(c for c in self.market_data_channels if not _is_pattern(c))

    @property
    def channel_patterns(self) -> tuple[str, ...]:
        """Channels to PSUBSCRIBE to (they contain ``*``, ``?`` or ``[``)."""
        return tuple(c for c in self.market_data_channels if _is_pattern(c))

    def _problems(self) -> Iterator[tuple[str, str]]:
        if self.reconnect_max_delay < self.reconnect_min_delay:
            yield "reconnectMaxDelay", f"must be >= reconnectMinDelay ({self.reconnect_min_delay:g}s)"


def _is_pattern(channel: str) -> bool:
    return any(char in channel for char in "*?[")


@dataclass(frozen=True)
class NatsConfig(_Section):
    """Fills and positions from NATS (optionally JetStream, for replay after a restart)."""

    url: str = _opt("nats://127.0.0.1:4222", _nats_urls)  # server URL(s), comma-separated
    fill_subject: str = _opt("trading.fills", _not_empty)  # subject of fill messages
    position_subject: str = _opt("trading.positions", _not_empty)  # subject of position messages
    max_reconnects: int = _opt(60, _at_least(-1))  # reconnect attempts before giving up; -1 = forever
    reconnect_wait: float = _opt(2.0, _above(0), duration=True)  # wait between reconnect attempts
    jetstream: bool = _opt(False)  # consume through a JetStream durable consumer instead of core NATS
    durable_name: str = _opt("strategy-engine", _not_empty)  # JetStream durable consumer name
    stream: str = _opt("TRADING", _not_empty)  # JetStream stream holding the two subjects


@dataclass(frozen=True)
class GrpcConfig(_Section):
    """The order-execution service (orderexecution.OrderExecution), used in live mode."""

    order_execution_address: str = _opt("127.0.0.1:50051", _not_empty)  # gRPC target, host:port
    timeout: float = _opt(5.0, _above(0), duration=True)  # deadline of one call
    max_retries: int = _opt(3, _at_least(0))  # retries of a failed idempotent call; 0 = none
    retry_backoff: float = _opt(0.2, _above(0), duration=True)  # first wait between retries, doubling
    breaker_failures: int = _opt(5, _at_least(1))  # consecutive failed calls that open the breaker
    breaker_reset: float = _opt(30.0, _above(0), duration=True)  # open this long before a trial call


# Engine fields whose rules live in BreakerPolicy, by the policy's field name.
_BREAKER_KEYS = {
    "consecutive_failures": "breakerConsecutiveFailures",
    "window_failures": "breakerWindowFailures",
    "window_s": "breakerWindow",
    "backoff_initial_s": "backoffInitial",
    "backoff_max_s": "backoffMax",
    "backoff_multiplier": "backoffMultiplier",
    "jitter": "backoffJitter",
    "restart_budget": "restartBudget",
    "budget_window_s": "restartBudgetWindow",
    "stable_after_s": "stableAfter",
}


@dataclass(frozen=True)
class EngineConfig(_Section):
    """How strategies run: mode, runner processes, deadlines, reload, limits and the circuit breaker."""

    mode: str = _opt("simulation", choices=MODES)  # live: orders to gRPC; simulation: paper fills; observation: none
    # Per-event strategy compute budget: a batch of n events must be answered within
    # transportAllowance + n * processingTimeout or its runner is killed. The round trip of a 1-event
    # batch through a runner measured ~0.35 ms p50 / ~0.9 ms p99 on a 2-core machine, so the seed's
    # 500us is too tight for an out-of-process Python runner.
    processing_timeout: float = _opt(0.005, _above(0), duration=True)
    transport_allowance: float = _opt(0.25, _at_least(0), duration=True)  # per-batch slack for IPC and scheduling
    paper_fee_rate: float = _opt(0.0, _at_least(0))  # simulation fills: fee as a fraction of notional
    paper_slippage_bps: float = _opt(0.0, _at_least(0))  # simulation fills: market orders pay this much worse
    disconnect_action: str = _opt(
        "cancel", choices=("cancel", "reduce_only")
    )  # on a lost runner: cancel its orders, or reduce-only
    signal_buffer_size: int = _opt(10000, _above(0))  # signals waiting for aggregation; beyond: dropped, counted
    aggregation_mode: str = _opt("priority", choices=AGGREGATION_MODES)  # how signals on one symbol combine
    plugins_dir: str = _opt("plugins", _not_empty)  # plugin packages; relative: to the config file's folder
    hot_reload: bool = _opt(True)  # swap a plugin's runners when its source files change
    watch_config: bool = _opt(True)  # re-read this file when it changes (strategies section)
    handshake_timeout: float = _opt(10.0, _above(0), duration=True)  # a new runner must be Ready within this
    stop_grace: float = _opt(2.0, _above(0), duration=True)  # Stop -> SIGTERM at grace/2 -> SIGKILL at grace
    outbox_capacity: int = _opt(1024, _above(0))  # market events queued per runner before conflation drops
    max_batch_events: int = _opt(4096, _above(0))  # most events sent to a runner in one batch
    max_signals_per_batch: int = _opt(1000, _above(0))  # a batch returning more is cut and counted
    heartbeat_interval: float = _opt(5.0, _above(0), duration=True)  # transport liveness ping per runner
    ledger_path: str = _opt("var/ledger.sqlite", _not_empty)  # SQLite ledger file, relative to the working dir
    runner_memory_mb: int = _opt(2048, _at_least(0))  # address-space limit of a runner (RLIMIT_AS); 0 = none
    runner_cpu_seconds: int = _opt(0, _at_least(0))  # CPU-time limit of a runner (RLIMIT_CPU); 0 = none
    runner_open_files: int = _opt(256, _at_least(0))  # open-file limit of a runner (RLIMIT_NOFILE); 0 = none
    runner_file_size_mb: int = _opt(64, _at_least(0))  # largest file a runner may write (RLIMIT_FSIZE); 0 = none
    breaker_consecutive_failures: int = _opt(5)  # strategy errors in a row that trip its breaker
    breaker_window_failures: int = _opt(20)  # ... or this many errors ...
    breaker_window: float = _opt(60.0, duration=True)  # ... within this window
    backoff_initial: float = _opt(0.5, duration=True)  # delay before the first restart
    backoff_max: float = _opt(30.0, duration=True)  # cap on the restart delay
    backoff_multiplier: float = _opt(2.0)  # growth of the delay per consecutive restart
    backoff_jitter: float = _opt(0.2)  # +- fraction applied to each delay
    restart_budget: int = _opt(5)  # at most this many restarts ...
    restart_budget_window: float = _opt(300.0, duration=True)  # ... within this window, then paused until resumed
    stable_after: float = _opt(60.0, duration=True)  # serving this long without failure resets the backoff

    def breaker_policy(self) -> BreakerPolicy:
        """The supervisor's circuit-breaker policy for every strategy."""
        return BreakerPolicy(
            consecutive_failures=self.breaker_consecutive_failures,
            window_failures=self.breaker_window_failures,
            window_s=self.breaker_window,
            backoff_initial_s=self.backoff_initial,
            backoff_max_s=self.backoff_max,
            backoff_multiplier=self.backoff_multiplier,
            jitter=self.backoff_jitter,
            restart_budget=self.restart_budget,
            budget_window_s=self.restart_budget_window,
            stable_after_s=self.stable_after,
        )

    def _problems(self) -> Iterator[tuple[str, str]]:
        try:
            self.breaker_policy().validate()
        except ValueError as err:  # the rules live in BreakerPolicy; only the names are ours
            name, _, rule = str(err).partition(": ")
            for policy_name in sorted(_BREAKER_KEYS, key=len, reverse=True):
                rule = rule.replace(policy_name, _BREAKER_KEYS[policy_name])
            yield _BREAKER_KEYS.get(name, name), rule


_STRATEGY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class StrategySpec(_Section):
    """One strategy instance: which plugin builds it, on which symbols, with which parameters."""

    id: str = ""  # its key under ``strategies`` (not a YAML key): names its runner, metrics and logs
    enabled: bool = _opt(True)  # false: configured but not run
    plugin: str = _opt("")  # package folder under engine.pluginsDir; "" = the id
    strategy: str = _opt("")  # strategy name registered by the plugin; "" = the plugin
    symbols: tuple[str, ...] = _opt((), _names)  # market data it receives; empty = all
    # Passed as they are to the strategy's own typed config (its ``from_mapping``), which checks them
    # when its runner starts; here they are only required to be a mapping with string keys.
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    weight: float = _opt(1.0, _above(0))  # its vote in weighted aggregation

    def __post_init__(self) -> None:
        object.__setattr__(self, "plugin", self.plugin or self.id)
        object.__setattr__(self, "strategy", self.strategy or self.plugin)

    def params(self) -> dict[str, Any]:
        """The mapping its strategy config is built from: the parameters plus ``symbols``."""
        return {**self.parameters, "symbols": list(self.symbols)}

    def _problems(self) -> Iterator[tuple[str, str]]:
        if not self.plugin.isidentifier():
            defaulted = " (it defaults to the strategy id; set plugin)" if self.plugin == self.id else ""
            yield "plugin", f"must be a package folder name (a Python identifier), got {self.plugin!r}{defaulted}"
        if not self.strategy.strip():
            yield "strategy", "must not be empty"
        if "symbols" in self.parameters:
            yield "parameters.symbols", "set symbols on the strategy entry itself (next to parameters)"


@dataclass(frozen=True)
class RiskConfig(_Section):
    """Limits every order passes in the host, whatever strategy sent it. Money is in the quote currency."""

    max_order_value: float = _opt(10000.0, _above(0))  # largest notional (price * quantity) of one order
    max_position_size: float = _opt(1.0, _above(0))  # largest absolute position per symbol (base asset)
    max_daily_loss: float = _opt(5000.0, _above(0))  # loss within a UTC day beyond which new orders stop
    max_drawdown: float = _opt(0.2, _fraction_or_one)  # fall from peak equity (0.2 = 20 %) beyond which orders stop
    min_account_balance: float = _opt(1000.0, _at_least(0))  # no new orders while the balance is below this
    max_orders_per_second: int = _opt(10, _above(0))  # orders accepted per second, all strategies together
    max_orders_per_minute: int = _opt(300, _above(0))  # orders accepted per minute, all strategies together
    allowed_symbols: tuple[str, ...] = _opt((), _names)  # only these symbols may trade; empty = all
    blocked_symbols: tuple[str, ...] = _opt((), _names)  # these symbols never trade
    price_collar: float = _opt(0.05, _fraction)  # reject prices further than this fraction from the reference
    max_order_quantity: float = _opt(1.0, _above(0))  # largest quantity of one order (base asset)
    max_portfolio_notional: float = _opt(100000.0, _above(0))  # sum of |position| * price over all symbols
    reference_stale_after: float = _opt(5.0, _above(0), duration=True)  # older reference price: order rejected
    kill_switch: bool = _opt(False)  # start killed: no new orders until an operator re-arms
    reduce_only_when_killed: bool = _opt(True)  # while killed, still accept orders that only shrink a position
    initial_balance: float = _opt(100000.0, _above(0))  # account balance simulation and risk start from

    def _problems(self) -> Iterator[tuple[str, str]]:
        both = sorted(set(self.allowed_symbols) & set(self.blocked_symbols))
        if both:
            yield "blockedSymbols", f"{', '.join(both)} also in allowedSymbols; list a symbol in one of them"
        if self.min_account_balance >= self.initial_balance:
            yield "minAccountBalance", f"must be < initialBalance ({self.initial_balance:g}), or nothing trades"


@dataclass(frozen=True)
class LoggingConfig(_Section):
    """Structured logs (structlog)."""

    level: str = _opt("info", choices=LOG_LEVELS, normalize=_log_level)  # case-insensitive; "warn" = warning
    format: str = _opt(
        "auto", choices=LOG_FORMATS
    )  # json: one object a line; console: for people; auto: console on a TTY
    file: str = _opt("")  # log file; "" = stderr
    max_bytes: int = _opt(104857600, _at_least(0))  # rotate the file at this size; 0 = never
    backup_count: int = _opt(5, _at_least(0))  # rotated files kept


@dataclass(frozen=True)
class MetricsConfig(_Section):
    """Prometheus metrics, served on server.port (the engine has a single HTTP port)."""

    enabled: bool = _opt(True)  # serve the metrics endpoint
    port: int = _opt(9092, _listen_port)  # the seed's key; metrics are on server.port (unset: follows it)
    path: str = _opt("/metrics", _url_path)  # URL path of the metrics endpoint
    namespace: str = _opt("strategy_engine", _identifier)  # prefix of every metric name


# The embedded default (no config file): the built-in plugins on both demo symbols, tuned to
# tick-level data (momentum over trades instead of 1-minute candles, wider requote threshold).
_BUILTIN_PARAMETERS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "momentum": MappingProxyType({"price_source": "trade", "lookback_period": 200, "threshold": 0.002}),
        "market_making": MappingProxyType({"requote_threshold_bps": 10.0}),
        "scalping": MappingProxyType({}),
    }
)


def _builtin_strategies() -> Mapping[str, StrategySpec]:
    symbols = ("BTCUSDT", "ETHUSDT")
    return MappingProxyType(
        {
            name: StrategySpec(id=name, symbols=symbols, parameters=parameters)
            for name, parameters in _BUILTIN_PARAMETERS.items()
        }
    )


@dataclass(frozen=True)
class Config:
    """The whole engine configuration. ``Config()`` is the embedded default."""

    server: ServerConfig = field(default_factory=ServerConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    nats: NatsConfig = field(default_factory=NatsConfig)
    grpc: GrpcConfig = field(default_factory=GrpcConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    strategies: Mapping[str, StrategySpec] = field(default_factory=_builtin_strategies)  # default: built-ins
    risk: RiskConfig = field(default_factory=RiskConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def enabled_strategies(self) -> tuple[StrategySpec, ...]:
        """The strategies to run, in file order."""
        return tuple(spec for spec in self.strategies.values() if spec.enabled)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Settings that load but are likely mistakes, one sentence each, for the log at startup."""
        found: list[str] = []
        if self.metrics.enabled and self.metrics.port != self.server.port:
            found.append(
                f"metrics.port ({self.metrics.port}) differs from server.port ({self.server.port}): metrics "
                f"are served on server.port only (the engine has a single HTTP port)"
            )
        if not self.enabled_strategies():
            found.append("no strategy is enabled: market data is received but nothing trades")
        if not self.server.auth_token and self.server.host not in ("127.0.0.1", "localhost", "::1"):
            found.append(
                f"server.authToken is empty while server.host is {self.server.host!r}: anyone who can reach "
                "the port can use the operator controls"
            )
        return tuple(found)


# --- environment overrides ------------------------------------------------------------------------

ENV_OVERRIDES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "STRATEGY_ENGINE_REDIS_HOST": ("redis", "host"),
        "STRATEGY_ENGINE_REDIS_PORT": ("redis", "port"),
        "STRATEGY_ENGINE_REDIS_PASSWORD": ("redis", "password"),
        "STRATEGY_ENGINE_NATS_URL": ("nats", "url"),
        "STRATEGY_ENGINE_GRPC_ORDER_EXECUTION_ADDRESS": ("grpc", "order_execution_address"),
        "STRATEGY_ENGINE_SERVER_PORT": ("server", "port"),
        "STRATEGY_ENGINE_SERVER_AUTH_TOKEN": ("server", "auth_token"),
        "STRATEGY_ENGINE_ENGINE_MODE": ("engine", "mode"),
        "STRATEGY_ENGINE_LOG_LEVEL": ("logging", "level"),
    }
)
"""Environment variable -> (section, field) it overrides, after the file."""


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for var, (section, name) in ENV_OVERRIDES.items():
        if var in environ:
            found.setdefault(section, {})[name] = (var, environ[var])
    return found


def _from_env(hint: Any, text: str, path: str) -> object:
    if hint is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ConfigError(path, f"expected an integer, got {text!r}") from None
    return text


# --- loading ----------------------------------------------------------------------------------------


def load(path: str | Path | None, *, environ: Mapping[str, str] | None = None) -> Config:
    """The config in the YAML file at ``path`` (None: the embedded defaults), then env overrides."""
    if path is None:
        return parse({}, environ=environ)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(file), "no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(str(file), "not a UTF-8 text file") from None
    except OSError as err:
        raise ConfigError(str(file), f"cannot read the config file: {err.strerror or err}") from None
    data = _yaml(text, str(file))
    if data is None:
        data = {}  # an empty file: all defaults
    if not isinstance(data, Mapping):
        raise ConfigError(str(file), f"expected a mapping of sections at the top level, got {_kind(data)}")
    return parse(data, environ=environ)


def parse(data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> Config:
    """The config in plain data (camelCase keys, as in the YAML file), then env overrides."""
    if not isinstance(data, Mapping):
        raise ConfigError("", f"expected a mapping of sections at the top level, got {_kind(data)}")
    fields = {f.name: f for f in dataclasses.fields(Config)}
    _reject_unknown(data, fields, "")
    overrides = _env_overrides(os.environ if environ is None else environ)
    hints = get_type_hints(Config)
    sections: dict[str, Any] = {
        name: _section(hints[name], data.get(name), name, overrides.get(name, {}))
        for name in fields
        if name != "strategies"
    }
    if data.get("strategies") is not None:
        sections["strategies"] = _strategies(data["strategies"], "strategies")
    metrics = data.get("metrics")
    if not (isinstance(metrics, Mapping) and "port" in metrics):  # unset: follows server.port (and its env)
        sections["metrics"] = dataclasses.replace(sections["metrics"], port=sections["server"].port)
    return Config(**sections)


def _section(cls: type[S], data: object, path: str, env: Mapping[str, tuple[str, str]], **fixed: Any) -> S:
    mapping = _mapping({} if data is None else data, path)
    fields = {_camel(f.name): f for f in dataclasses.fields(cls) if f.name not in fixed}  # type: ignore[arg-type]
    _reject_unknown(mapping, fields, path)
    hints = get_type_hints(cls)
    values = {
        f.name: _value(f, hints[f.name], mapping[key], _join(path, key)) for key, f in fields.items() if key in mapping
    }
    for f in fields.values():
        if f.name in env:
            var, text = env[f.name]
            values[f.name] = _value(f, hints[f.name], _from_env(hints[f.name], text, f"env {var}"), f"env {var}")
    section = cls(**values, **fixed)
    for key, reason in section._problems():
        raise ConfigError(_join(path, key), reason)
    return section


def _strategies(data: object, path: str) -> Mapping[str, StrategySpec]:
    specs: dict[str, StrategySpec] = {}
    for sid, entry in _mapping(data, path).items():
        if not isinstance(sid, str) or _STRATEGY_ID.fullmatch(sid) is None:
            reason = "a strategy id must be letters, digits, '_', '-' or '.', starting with a letter or digit"
            raise ConfigError(_join(path, str(sid)), reason)
        specs[sid] = _section(StrategySpec, entry, _join(path, sid), {}, id=sid)
    return MappingProxyType(specs)


def _value(f: dataclasses.Field[Any], hint: Any, raw: object, path: str) -> Any:
    value = parse_duration(raw, path) if f.metadata.get("duration") else _typed(hint, raw, path, secret=not f.repr)
    normalize = f.metadata.get("normalize")
    if normalize is not None:
        value = normalize(value)
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        hint = _suggest(str(value), choices)
        raise ConfigError(path, f"must be one of {', '.join(choices)}, got {_show(raw)}{hint}")
    check = f.metadata.get("check")
    broken = check(value) if check is not None else None
    if broken:
        raise ConfigError(path, f"{broken}, got {_show(raw)}")
    return value


def _typed(hint: Any, raw: object, path: str, *, secret: bool = False) -> Any:
    if hint is bool and isinstance(raw, bool):
        return raw
    if hint is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if hint is float and isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        return float(raw)
    if hint is str and isinstance(raw, str):
        return raw
    if hint == tuple[str, ...] and isinstance(raw, list | tuple):
        for i, item in enumerate(raw):
            _typed(str, item, f"{path}[{i}]")
        return tuple(raw)
    if hint == Mapping[str, Any] and isinstance(raw, Mapping | None):
        return _parameters(raw or {}, path)
    if secret:  # a secret's value stays out of messages and logs
        raise ConfigError(path, f"expected {_EXPECTED[hint]}, got {_kind(raw)} (value hidden; quote it)")
    raise ConfigError(path, f"expected {_EXPECTED[hint]}, got {_show(raw)}{_quote_hint(hint, raw)}")


_EXPECTED: dict[Any, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a finite number",
    str: "a string",
    tuple[str, ...]: "a list of strings",
    Mapping[str, Any]: "a mapping",
}


def _quote_hint(hint: Any, raw: object) -> str:
    scalar = isinstance(raw, int | float | bool)
    return f" (quote it if it is meant as text: '{_show(raw)}')" if hint is str and scalar else ""


def _parameters(raw: Mapping[Any, Any], path: str) -> Mapping[str, Any]:
    for key in raw:
        if not isinstance(key, str):
            raise ConfigError(_join(path, str(key)), "parameter names must be strings")
    return MappingProxyType(copy.deepcopy(dict(raw)))  # nothing the caller holds stays shared


def _mapping(data: object, path: str) -> Mapping[Any, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping of keys, got {_kind(data)} {_show(data)}")
    return data


def _reject_unknown(data: Mapping[Any, Any], known: Mapping[str, Any], path: str) -> None:
    for key in data:
        if key not in known:
            hint = _suggest(str(key), list(known))
            reason = f"unknown key{hint}" if hint else f"unknown key (known: {', '.join(known)})"
            raise ConfigError(_join(path, str(key)), reason)


def _suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    folded = {_fold(option): option for option in options}
    close = [folded[_fold(word)]] if _fold(word) in folded else difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _fold(word: str) -> str:
    return word.lower().replace("_", "").replace("-", "")


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }
    return "nothing" if value is None else kinds.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(dict(value)) if isinstance(value, Mapping) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- YAML ---------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects a duplicate key, which PyYAML would silently resolve to the last value."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in with << may be overridden: that is what merging is for
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            continue  # construct_mapping reports an unhashable key
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml(text: str, file: str) -> object:
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as err:
        problem = f"{err.problem}{_at(err.problem_mark)}" if err.problem else ""
        context = f"{err.context}{_at(err.context_mark)}" if err.context else ""
        detail = f"{problem} ({context})" if problem and context else problem or context
        raise ConfigError(file, f"invalid YAML: {detail}") from None
    except yaml.YAMLError as err:
        raise ConfigError(file, f"invalid YAML: {err}") from None


def _at(mark: yaml.Mark | None) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""

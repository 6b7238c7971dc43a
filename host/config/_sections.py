"""The sections of ``config.yaml``: one frozen dataclass each, and ``Config``, which holds them all.

Each field's default and rule sit next to it (``_opt``); rules across fields are a section's
``_problems``. ``Config()`` is the embedded default: the built-in strategies in simulation mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from host.config._go import KeyUse
from host.config._values import (
    _above,
    _at_least,
    _fraction,
    _fraction_or_one,
    _identifier,
    _listen_port,
    _log_level,
    _names,
    _nats_urls,
    _not_empty,
    _opt,
    _port,
    _suggest,
    _url_path,
)
from host.supervisor.policy import BreakerPolicy

MODES = ("simulation", "live", "observation")
AGGREGATION_MODES = ("priority", "majority", "weighted", "unanimous")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
LOG_OUTPUTS = ("auto", "stdout", "stderr", "file")
VENUE_PROTOCOLS = ("orderexecution", "order-service")
# How a market data channel's messages are read (host.feeds.formats): the seed's JSON, or one of
# the three families b25's market-data service publishes.
MARKET_DATA_FORMATS = ("seed", "b25-ticker", "b25-book", "b25-trade")
# b25's channel families by prefix, for the warning when one is left in the seed's format.
_B25_FAMILIES = {"market_data:": "b25-ticker", "orderbook:": "b25-book", "trades:": "b25-trade"}


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
    # The format of each channel or pattern of marketDataChannels that is not the seed's, by that
    # entry: {"orderbook:*": b25-book}. One of MARKET_DATA_FORMATS; an entry not named here is "seed".
    market_data_formats: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    reconnect_min_delay: float = _opt(0.5, _above(0), duration=True)  # first wait after a lost connection
    reconnect_max_delay: float = _opt(30.0, _above(0), duration=True)  # the wait doubles up to this
    stale_after: float = _opt(5.0, _above(0), duration=True)  # silent this long: reported stale, orders refused

    @property
    def exact_channels(self) -> tuple[str, ...]:
        """Channels to SUBSCRIBE to."""
        return tuple(c for c in self.market_data_channels if not _is_pattern(c))

    @property
    def channel_patterns(self) -> tuple[str, ...]:
        """Channels to PSUBSCRIBE to (they contain ``*``, ``?`` or ``[``)."""
        return tuple(c for c in self.market_data_channels if _is_pattern(c))

    def format_of(self, channel: str) -> str:
        """The format of the messages of an entry of ``market_data_channels``."""
        return self.market_data_formats.get(channel, "seed")

    def _problems(self) -> Iterator[tuple[str, str]]:
        if self.reconnect_max_delay < self.reconnect_min_delay:
            yield "reconnectMaxDelay", f"must be >= reconnectMinDelay ({self.reconnect_min_delay:g}s)"
        for channel, name in self.market_data_formats.items():
            key = f"marketDataFormats.{channel}"
            if channel not in self.market_data_channels:
                yield key, (f"{channel!r} is not in redis.marketDataChannels; a format is named for a channel or "
                            f"pattern subscribed there{_suggest(channel, self.market_data_channels)}")  # fmt: skip
            elif name not in MARKET_DATA_FORMATS:
                choices = ", ".join(MARKET_DATA_FORMATS)
                yield key, f"must be one of {choices}, got {name!r}{_suggest(name, MARKET_DATA_FORMATS)}"

    def misread_b25_channels(self) -> tuple[tuple[str, str], ...]:
        """(channel, the b25 format it looks like) for each channel named like a b25 family read in another format."""
        return tuple(
            (channel, name) for channel in self.market_data_channels for prefix, name in _B25_FAMILIES.items()
            if channel.startswith(prefix) and self.format_of(channel) != name
        )  # fmt: skip


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
    """The order-execution service, used in live mode, in one of two protocols."""

    order_execution_address: str = _opt("127.0.0.1:50051", _not_empty)  # gRPC target, host:port
    # "orderexecution": orderexecution.OrderExecution (the Go engine's client definition);
    # "order-service": order.OrderService, what b25 actually runs at :50051 (fills from its order updates)
    protocol: str = _opt("orderexecution", choices=VENUE_PROTOCOLS)
    user_id: str = _opt("")  # order-service: the user_id orders are created under and updates streamed for
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
    watch_config: bool = _opt(True)  # apply edits of this file live: strategies, risk limits, logging.level
    handshake_timeout: float = _opt(10.0, _above(0), duration=True)  # a new runner must be Ready within this
    stop_grace: float = _opt(2.0, _above(0), duration=True)  # Stop -> SIGTERM at grace/2 -> SIGKILL at grace
    outbox_capacity: int = _opt(1024, _above(0))  # market events queued per runner before conflation drops
    max_batch_events: int = _opt(4096, _above(0))  # most events sent to a runner in one batch
    max_signals_per_batch: int = _opt(1000, _above(0))  # a batch returning more is cut and counted
    heartbeat_interval: float = _opt(5.0, _above(0), duration=True)  # transport liveness ping per runner
    # Where event batches and their results travel: "socket", a Unix socket pair per runner made before
    # its spawn (length-prefixed protobuf frames beside the gRPC stream, which keeps the handshake,
    # heartbeats, snapshots and stop), or "grpc", the stream itself. Socket is the default because it
    # measured faster and cheaper for the host (bench/bench_roundtrip.py, bench/bench_feed.py).
    data_lane: str = _opt("socket", choices=("socket", "grpc"))
    # SQLite ledger file, relative to the config file's folder; "" = var/ledger.sqlite for a live run and a
    # temporary file for a replay (so a backtest starts from an empty book unless a ledger is named).
    ledger_path: str = _opt("")
    # Days of finished history kept in the ledger: terminal orders last changed longer ago, their order
    # events and fills are removed at start and then once a day (host.ledger.retention); working orders,
    # positions and daily P&L are never removed. 0 = keep everything.
    ledger_retention_days: int = _opt(0, _at_least(0))
    # Crash capture (host.supervisor.capture): the last captureEvents events each runner was sent are
    # kept (encoded; ~100 bytes a tick), and when its strategy raises, misses a deadline or crashes they
    # are written with the error and its config to <captureDir>/<strategy>/<time>-<kind>.json, at most
    # one per kind per strategy per captureInterval, the newest captureFiles per strategy kept.
    # `strategy-engine reproduce FILE` runs one in-process. captureEvents 0 = off.
    capture_events: int = _opt(2048, _at_least(0))
    capture_files: int = _opt(20, _above(0))
    capture_interval: float = _opt(60.0, _at_least(0), duration=True)
    # "" = a captures folder beside the ledger (a replay with a temporary ledger: the system's temporary
    # folder, strategy-engine-captures); relative: to the config file's folder.
    capture_dir: str = _opt("")
    runner_memory_mb: int = _opt(2048, _at_least(0))  # address-space limit of a runner (RLIMIT_AS); 0 = none
    runner_cpu_seconds: int = _opt(0, _at_least(0))  # CPU-time limit of a runner (RLIMIT_CPU); 0 = none
    runner_open_files: int = _opt(256, _at_least(0))  # open-file limit of a runner (RLIMIT_NOFILE); 0 = none
    runner_file_size_mb: int = _opt(64, _at_least(0))  # largest file a runner may write (RLIMIT_FSIZE); 0 = none
    # CPU budget: cores a runner (all its threads) may use on average over runnerCpuWindow, or it is
    # charged (kind cpu: restarted with backoff, held open past the restart budget); 0 = not watched.
    # 0.5 core is 100 events/s each using the whole 5 ms processingTimeout: more than a strategy
    # answering its events in time needs, while two spinning background threads (measured ~1.6
    # cores) are 3x over it; on a 2-core host it leaves the host and the other runners a core and a half.
    runner_cpu_share: float = _opt(0.5, _at_least(0))
    # 10 s averages out a start-up import burst or one heavy catch-up batch, and still stops a hog
    # within ~10 s of sampling (one /proc read per runner per second).
    runner_cpu_window: float = _opt(10.0, _above(0), duration=True)
    # A strategy whose orders are refused by its own order-rate quota this many times within
    # orderFloodWindow keeps sending past what it is allowed: charged (kind order_flood), like a crash.
    # 20 in a minute: one burst over the quota now and then is only rejected, never restarted.
    order_flood_rejections: int = _opt(20, _above(0))
    order_flood_window: float = _opt(60.0, _above(0), duration=True)
    # The user (name or uid) a runner switches to when the host runs as root, so file permissions
    # keep it from the host's secrets too; "" keeps the host's uid. Must exist on the machine.
    runner_user: str = _opt("nobody")
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
    # Each strategy's own quota under those limits, so one strategy cannot take the whole rate. 0 = its
    # fair share: the global limit divided by the number of enabled strategies (at least 1), so every
    # configured strategy always has room (10/s and 300/min over 3 strategies: 3/s and 100/min each).
    # A quota at or above the global limit adds nothing to it and is not checked.
    max_orders_per_second_per_strategy: int = _opt(0, _at_least(0))
    max_orders_per_minute_per_strategy: int = _opt(0, _at_least(0))
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
    output: str = _opt("auto", choices=LOG_OUTPUTS)  # stdout | stderr | file; auto: file if set, else stderr
    file: str = _opt("")  # log file, written when output is file (or auto)
    max_bytes: int = _opt(104857600, _at_least(0))  # rotate the file at this size; 0 = never
    backup_count: int = _opt(5, _at_least(0))  # rotated files kept
    max_age: int = _opt(0, _at_least(0))  # days: at each rotation, delete rotated files older than this; 0 = keep
    compress: bool = _opt(False)  # gzip each rotated file (name.1.gz, ...)

    @property
    def destination(self) -> str:
        """Where the logs go: "stdout", "stderr" or "file"."""
        if self.output == "auto":
            return "file" if self.file else "stderr"
        return self.output

    def _problems(self) -> Iterator[tuple[str, str]]:
        if self.output == "file" and not self.file.strip():
            yield "file", "must name the log file when logging.output is file"


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
    # How each key of the file was taken, in file order (not configuration: left out of comparisons).
    key_report: tuple[KeyUse, ...] = field(default=(), compare=False, repr=False)

    def enabled_strategies(self) -> tuple[StrategySpec, ...]:
        """The strategies to run, in file order."""
        return tuple(spec for spec in self.strategies.values() if spec.enabled)

    @property
    def notes(self) -> tuple[KeyUse, ...]:
        """The file's keys that were mapped onto others or ignored, for the log at startup."""
        return tuple(use for use in self.key_report if use.how != "used")

    @property
    def warnings(self) -> tuple[str, ...]:
        """Settings that load but are likely mistakes, one sentence each, for the log at startup."""
        found: list[str] = []
        if self.metrics.enabled and self.metrics.port != self.server.port:
            found.append(
                f"metrics.port ({self.metrics.port}) differs from server.port ({self.server.port}): metrics "
                f"are served on server.port only (the engine has a single HTTP port)"
            )
        for channel, name in self.redis.misread_b25_channels():
            found.append(
                f"redis.marketDataChannels: {channel!r} looks like a b25 channel ({name}) but is read as "
                f"{self.redis.format_of(channel)}, which rejects b25's {name} messages; set "
                f"redis.marketDataFormats: {{{channel!r}: {name}}}"
            )
        if not self.enabled_strategies():
            found.append("no strategy is enabled: market data is received but nothing trades")
        if not self.server.auth_token and self.server.host not in ("127.0.0.1", "localhost", "::1"):
            found.append(
                f"server.authToken is empty while server.host is {self.server.host!r}: anyone who can reach "
                "the port can use the operator controls"
            )
        return tuple(found)

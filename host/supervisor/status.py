"""What the supervisor knows and says about a strategy: definition, settings, state, status, seams.

Plain data and protocols, shared by ``ManagedStrategy`` (which fills them in), the ``Supervisor``
(which hands them out) and the HTTP surface and metrics (which show them).

The metering protocols are the supervisor's view of ``host.metrics``: the composition root passes
an ``EngineMetrics`` in, and the supervisor package never imports ``host.metrics`` itself, so the
dependency runs one way (metrics reads this module's plain data; nothing here reads metrics).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from host.strays import StrayPolicy
from host.supervisor.capture import CapturePolicy
from host.supervisor.lograte import LogRatePolicy
from host.supervisor.policy import BreakerStatus
from host.supervisor.process import RunnerLimits
from sdk.events import Cancel, Position, Signal

__all__ = [
    "Metering",
    "ReloadRecord",
    "StateStore",
    "StrategyDefinition",
    "StrategyListener",
    "StrategyMeter",
    "StrategyState",
    "StrategyStats",
    "StrategyStatus",
    "SupervisionSettings",
]

_LATENCY_WINDOW = 1024


class StrategyState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"  # waiting to restart after a failure
    OPEN = "open"  # breaker open: stopped until an operator resumes
    PAUSED = "paused"  # paused by an operator
    STOPPED = "stopped"


@dataclass(frozen=True)
class StrategyDefinition:
    """One configured strategy instance: where its code is and how it is configured."""

    id: str
    plugin: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def symbols(self) -> frozenset[str]:
        symbols = self.params.get("symbols") or ()
        return frozenset(str(s) for s in symbols) if isinstance(symbols, (list, tuple)) else frozenset()


class StrategyListener(Protocol):
    """What the supervisor tells the rest of the host about a strategy."""

    def signals(self, strategy_id: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        """Orders a strategy asked for (already validated), in the order it asked."""

    def strategy_down(self, strategy_id: str, reason: str) -> None:
        """Its runner is gone or its breaker opened: cancel its working orders first."""

    def strategy_up(self, strategy_id: str) -> None:
        """A runner of it is Ready and serving again (undo what strategy_down put in place)."""

    def positions(self, strategy_id: str) -> list[Position]:
        """Its current positions, delivered to every new runner before any market data."""


class StateStore(Protocol):
    """Where strategy state (``on_save``) outlives the host: saved at shutdown, restored at the next start."""

    def load_state(self, strategy_id: str) -> bytes | None: ...

    def save_state(self, strategy_id: str, state: bytes) -> None: ...


class Counting(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Observing(Protocol):
    def observe(self, amount: float) -> None: ...


class StrategyMeter(Protocol):
    """What one strategy's loop and judge count into: metric children bound once, so the hot path
    never resolves labels (``host.metrics.StrategyMetrics``)."""

    @property
    def signals(self) -> Counting: ...

    @property
    def latency_us(self) -> Observing: ...

    @property
    def processing_us(self) -> Observing: ...

    @property
    def restarts(self) -> Counting: ...

    def error(self, kind: str) -> None: ...

    def signals_dropped(self, symbol: str, reason: str, count: int = 1) -> None: ...

    def stopped(self, rung: str) -> None: ...

    def log_dropped(self, reason: str, count: int) -> None: ...

    def output_truncated(self, count: int) -> None: ...

    def capture_written(self, kind: str) -> None: ...


class Metering(Protocol):
    """The engine's metrics as the supervisor uses them (``host.metrics.EngineMetrics``)."""

    def for_strategy(self, strategy: str) -> StrategyMeter:
        """The children of one strategy, bound once when it is started."""

    def watch(self, status: Callable[[], Iterable[StrategyStatus]]) -> None:
        """Read the per-strategy status at every scrape."""

    def allow_strategies(self, strategies: Iterable[str], symbols: Iterable[str]) -> None:
        """The configured strategies and their symbols: the only strategy and symbol label values kept."""


@dataclass(frozen=True)
class SupervisionSettings:
    """How strategies are run and judged (see host.config for the documented defaults)."""

    plugins_dir: Path
    processing_timeout_s: float = 0.005
    transport_allowance_s: float = 0.25
    handshake_timeout_s: float = 10.0
    stop_grace_s: float = 2.0
    outbox_capacity: int = 1024
    max_batch_events: int = 4096
    max_signals_per_batch: int = 1000
    heartbeat_interval_s: float = 5.0
    limits: RunnerLimits = field(default_factory=RunnerLimits)
    runner_user: tuple[int, int] | None = None  # uid, gid runners switch to when the host is root
    log_rate: LogRatePolicy = field(default_factory=LogRatePolicy)  # strategy log records per strategy
    cpu_share: float = 0.5  # cores a runner may use on average over cpu_window_s; 0 = not watched
    cpu_window_s: float = 10.0
    cpu_sample_interval_s: float = 1.0  # one /proc read per runner this often
    flood_strikes: int = 20  # order-rate quota rejections within flood_window_s that charge ORDER_FLOOD
    flood_window_s: float = 60.0
    strays: StrayPolicy = field(default_factory=StrayPolicy)  # unasked-for runner messages before a charge
    data_lane: str = "socket"  # batches on a socket pair per runner ("socket") or on the gRPC stream ("grpc")
    capture: CapturePolicy = field(default_factory=CapturePolicy)  # crash capture (host.supervisor.capture)
    live_timers: bool = True  # the supervisor fires timers on the wall clock (False: a replay or backtest does)
    timer_limit: int = 100  # timers one strategy may have scheduled at once; more is a bad_signal error

    def deadline(self, events: int) -> float:
        """A batch of ``events`` must be answered within the allowance plus the per-event budget."""
        return self.transport_allowance_s + self.processing_timeout_s * events


@dataclass(frozen=True)
class ReloadRecord:
    """The last hot reload of one strategy: when (wall clock, Unix seconds), how, and why not."""

    at: float
    ok: bool
    error: str = ""  # why the old runner kept serving; "" when the new code serves


@dataclass
class StrategyStats:
    events_sent: int = 0
    batches: int = 0
    signals: int = 0
    cancels: int = 0
    errors: int = 0
    signals_dropped: int = 0
    stale_dropped: int = 0  # market data queued for a runner that died before taking it
    late_replies: int = 0  # of runners already ended (the serving runner's session counts its own)
    impersonations: int = 0
    restarts: int = 0
    reloads: int = 0
    reload_failures: int = 0
    last_reload: ReloadRecord | None = None
    last_error: str = ""
    last_exit: str = ""
    last_rung: str = ""
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    latency_ns: deque[int] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))

    def latency_us(self) -> tuple[float | None, float | None]:
        """p50 and p99 of the recent batch round trips, in microseconds; None before the first batch."""
        ordered = sorted(self.latency_ns)
        return _percentile(ordered, 0.50), _percentile(ordered, 0.99)


@dataclass(frozen=True)
class StrategyStatus:
    """What an operator sees of one strategy."""

    id: str
    plugin: str
    name: str
    state: StrategyState
    breaker: BreakerStatus
    pid: int | None
    sandbox: tuple[str, ...]
    events_sent: int
    batches: int
    signals: int
    errors: int
    restarts: int
    reloads: int
    reload_failures: int
    last_reload: ReloadRecord | None
    conflated: int
    dropped: int
    signals_dropped: int
    late_replies: int
    impersonations: int
    last_error: str
    last_exit: str
    latency_p50_us: float | None
    latency_p99_us: float | None
    outbox: int
    cpu_share: float | None = None  # cores its runner used over the CPU window so far; None before 2 samples
    protocol_version: str = ""  # what its serving runner's Hello said ("" with no runner)
    sdk_version: str = ""


def _percentile(ordered: list[int], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0

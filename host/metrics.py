"""Prometheus metrics of the engine, under the seed service's names and namespace.

One ``EngineMetrics`` owns one ``CollectorRegistry`` (not the process-global one, so a test or a
second engine in one process gets its own). Two kinds of metric:

- pushed where the thing happens: signals, strategy errors by kind, batch round trips and
  strategy compute time, dropped signals, runner stops by rung, restarts, reloads, venue positions
  that disagree with the ledger;
- pulled at scrape time from the supervisor's status (``SupervisorCollector``): strategy and
  breaker state, events sent, outbox depth, conflated and dropped market data, late replies,
  impersonation attempts. Reading counts
  that already exist at scrape time keeps the per-tick path free of metric calls.

The per-strategy children are bound once (``for_strategy``), so the hot path never resolves labels.

Labels fed from strings a runner or a peer chose (a signal's symbol, an error's kind, a fill's
strategy) go through ``labels``, the engine's ``host.labels.LabelGuard``: only configured
strategies and symbols of the configured universe get series of their own, the rest ``other``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from host.labels import LabelGuard
from host.supervisor.policy import BreakerState
from host.supervisor.status import StrategyState, StrategyStatus
from sdk.events import Position

__all__ = [
    "EngineMetrics",
    "ExecutionMetrics",
    "LedgerSizeCollector",
    "PositionsCollector",
    "StrategyMetrics",
    "SupervisorCollector",
]

_LATENCY_BUCKETS_US = (100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)
_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@dataclass(frozen=True)
class StrategyMetrics:
    """The children of one strategy, bound once."""

    signals: Counter
    latency_us: Histogram
    processing_us: Histogram
    restarts: Counter
    _errors: Counter
    _dropped: Counter
    _stops: Counter
    _log_dropped: Counter
    _truncated: Counter
    _captures: Counter
    _labels: LabelGuard
    strategy: str

    def error(self, kind: str) -> None:
        self._errors.labels(strategy=self.strategy, kind=self._labels.kind(kind)).inc()

    def signals_dropped(self, symbol: str, reason: str, count: int = 1) -> None:
        labels = {"strategy": self.strategy, "symbol": self._labels.symbol(symbol), "reason": reason}
        self._dropped.labels(**labels).inc(count)

    def stopped(self, rung: str) -> None:
        self._stops.labels(rung=rung).inc()

    def log_dropped(self, reason: str, count: int) -> None:
        self._log_dropped.labels(strategy=self.strategy, reason=reason).inc(count)

    def output_truncated(self, count: int) -> None:
        self._truncated.labels(strategy=self.strategy).inc(count)

    def capture_written(self, kind: str) -> None:
        self._captures.labels(strategy=self.strategy, kind=kind).inc()


@dataclass(frozen=True)
class ExecutionMetrics:
    """What the order path counts (the seed's names)."""

    orders_submitted: Counter  # {strategy}
    orders_rejected: Counter  # {reason}
    risk_violations: Counter  # {type, strategy}
    risk_checks: Counter
    order_latency_us: Histogram
    signals_dropped: Counter  # {strategy, symbol, reason}
    queue_size: Gauge
    labels: LabelGuard  # what strategy and symbol labels may say (see host.labels)
    reconciliations: Counter  # {trigger}
    fills_reconciled: Counter  # {strategy}
    orders_lost: Counter  # {strategy}: working orders the venue no longer knew, closed


class EngineMetrics:
    """All metrics of one engine instance."""

    def __init__(self, namespace: str = "strategy_engine", registry: CollectorRegistry | None = None) -> None:
        self.namespace = namespace
        self.labels = LabelGuard()
        self.registry = registry if registry is not None else CollectorRegistry()
        r, ns = self.registry, namespace
        self.signals = Counter("strategy_signals_total", "Signals strategies emitted", ["strategy"], namespace=ns,
                               registry=r)  # fmt: skip
        self.errors = Counter(
            "strategy_errors_total",
            "Strategy failures by kind (exception, bad_signal, flood, timeout, crash, boot, cpu, order_flood)",
            ["strategy", "kind"], namespace=ns, registry=r,
        )  # fmt: skip
        self.latency_us = Histogram(
            "strategy_latency_microseconds", "Round trip of one event batch through a strategy's runner",
            ["strategy"], namespace=ns, registry=r, buckets=_LATENCY_BUCKETS_US,
        )  # fmt: skip
        self.processing_us = Histogram(
            "processing_time_microseconds", "Strategy compute time per event batch, measured in the runner",
            ["strategy"], namespace=ns, registry=r, buckets=_LATENCY_BUCKETS_US,
        )  # fmt: skip
        self.signals_dropped = Counter(
            "signals_dropped_total", "Signals dropped before aggregation, by reason", ["strategy", "symbol", "reason"],
            namespace=ns, registry=r,
        )  # fmt: skip
        self.restarts = Counter("runner_restarts_total", "Runner restarts decided by the breaker", ["strategy"],
                                namespace=ns, registry=r)  # fmt: skip
        self.stops = Counter("runner_stops_total", "Runners ended, by the rung of the stop ladder reached", ["rung"],
                             namespace=ns, registry=r)  # fmt: skip
        self.reloads = Counter("plugin_reloads_total", "Plugin package changes applied, by result",
                               ["plugin", "result"], namespace=ns, registry=r)  # fmt: skip
        self.log_dropped = Counter(
            "strategy_log_dropped_total", "Strategy log records not logged, by reason (rate, runner_cap, invalid, "
            "impersonation)", ["strategy", "reason"], namespace=ns, registry=r,
        )  # fmt: skip
        self.output_truncated = Counter(
            "runner_output_truncated_total", "Runner output lines cut at the host's line limit", ["strategy"],
            namespace=ns, registry=r,
        )  # fmt: skip
        self.captures_written = Counter(
            "captures_written_total", "Crash capture files written, by failure kind (error, timeout, crash)",
            ["strategy", "kind"], namespace=ns, registry=r,
        )  # fmt: skip
        self.config_reloads = Counter("config_reloads_total", "Config file changes applied, by result", ["result"],
                                      namespace=ns, registry=r)  # fmt: skip
        self.position_mismatches = Counter(
            "venue_position_mismatches_total", "Venue position messages that disagreed with the ledger (not forwarded)",
            ["strategy", "symbol"], namespace=ns, registry=r,
        )  # fmt: skip
        self.positions_mismatched = Gauge(
            "venue_positions_mismatched", "Strategy/symbol pairs whose latest venue position disagrees with the ledger",
            namespace=ns, registry=r,
        )  # fmt: skip

        self.execution = ExecutionMetrics(
            orders_submitted=Counter("orders_submitted_total", "Orders sent to the venue", ["strategy"],
                                     namespace=ns, registry=r),
            orders_rejected=Counter("orders_rejected_total", "Orders not sent, by reason (risk rule or venue)",
                                    ["reason"], namespace=ns, registry=r),
            risk_violations=Counter("risk_violations_total", "Orders rejected by a pre-trade risk rule",
                                    ["type", "strategy"], namespace=ns, registry=r),
            risk_checks=Counter("risk_checks_total", "Pre-trade risk checks", namespace=ns, registry=r),
            order_latency_us=Histogram("order_latency_microseconds", "Order submit round trip to the venue",
                                       namespace=ns, registry=r, buckets=_LATENCY_BUCKETS_US),
            signals_dropped=self.signals_dropped,
            queue_size=Gauge("signal_queue_size", "Signals waiting for aggregation", namespace=ns, registry=r),
            labels=self.labels,
            reconciliations=Counter("reconciliations_total", "Working orders checked against the venue, by trigger",
                                    ["trigger"], namespace=ns, registry=r),
            fills_reconciled=Counter("fills_reconciled_total", "Fills recovered from the venue's order state "
                                     "(their reports were lost)", ["strategy"], namespace=ns, registry=r),
            orders_lost=Counter("orders_lost_total", "Working orders the venue no longer knew (closed, not re-sent)",
                                ["strategy"], namespace=ns, registry=r),
        )  # fmt: skip

    def for_strategy(self, strategy: str) -> StrategyMetrics:
        return StrategyMetrics(
            signals=self.signals.labels(strategy=strategy), latency_us=self.latency_us.labels(strategy=strategy),
            processing_us=self.processing_us.labels(strategy=strategy),
            restarts=self.restarts.labels(strategy=strategy), _errors=self.errors, _dropped=self.signals_dropped,
            _stops=self.stops, strategy=strategy, _log_dropped=self.log_dropped, _truncated=self.output_truncated,
            _captures=self.captures_written, _labels=self.labels,
        )  # fmt: skip

    def allow_strategies(self, strategies: Iterable[str], symbols: Iterable[str]) -> None:
        """The configured strategies and their symbols: the strategy and symbol label values allowed."""
        self.labels.allow_strategies(strategies, symbols)

    def watch(self, status: Callable[[], Iterable[StrategyStatus]]) -> None:
        """Export the supervisor's per-strategy state at every scrape."""
        self.registry.register(SupervisorCollector(self.namespace, status))

    def watch_ledger(self, path: Path) -> None:
        """Export ``ledger_size_bytes`` (the sqlite file and its write-ahead log) at every scrape."""
        self.registry.register(LedgerSizeCollector(self.namespace, path))

    def watch_positions(self, positions: Callable[[], Iterable[Position]]) -> None:
        """Export ``current_positions{strategy,symbol}`` (signed quantity) from the books at every scrape."""
        self.registry.register(PositionsCollector(self.namespace, positions, self.labels))


class LedgerSizeCollector(Collector):
    """The ledger's size on disk, read (two ``stat`` calls) when Prometheus scrapes."""

    def __init__(self, namespace: str, path: Path) -> None:
        self._name = f"{namespace}_ledger_size_bytes"
        self._files = (path, path.with_name(path.name + "-wal"))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(self._name, "Size of the ledger's sqlite file plus its write-ahead log, in bytes")
        size = 0
        for file in self._files:
            with suppress(OSError):  # the WAL is absent while no connection has it open
                size += file.stat().st_size
        gauge.add_metric([], size)
        yield gauge


class PositionsCollector(Collector):
    """The seed's ``current_positions`` gauge, read from the host's books when Prometheus scrapes."""

    def __init__(
        self, namespace: str, positions: Callable[[], Iterable[Position]], labels: LabelGuard | None = None
    ) -> None:
        self._name = f"{namespace}_current_positions"
        self._positions = positions
        self._labels = labels

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(self._name, "Signed position per strategy and symbol", labels=["strategy", "symbol"])
        totals: dict[tuple[str, str], float] = {}
        for position in self._positions():
            key = (position.strategy, position.symbol)
            if self._labels is not None:  # positions a peer reported for unknown names add up under "other"
                key = (self._labels.strategy(key[0]), self._labels.symbol(key[1]))
            totals[key] = totals.get(key, 0.0) + position.quantity
        for (strategy, symbol), quantity in totals.items():
            gauge.add_metric([strategy, symbol], quantity)
        yield gauge


class SupervisorCollector(Collector):
    """Gauges and counters read from ``Supervisor.status()`` when Prometheus scrapes."""

    def __init__(self, namespace: str, status: Callable[[], Iterable[StrategyStatus]]) -> None:
        self._ns = namespace
        self._status = status

    def _name(self, name: str) -> str:
        return f"{self._ns}_{name}"

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        statuses = list(self._status())
        active = GaugeMetricFamily(self._name("active_strategies"), "Strategies whose runner is Ready and serving")
        active.add_metric([], sum(1 for s in statuses if s.state is StrategyState.RUNNING))
        breaker = GaugeMetricFamily(
            self._name("breaker_state"),
            "Circuit breaker per strategy: 0 closed, 1 half-open, 2 open",
            labels=["strategy"],
        )
        state = GaugeMetricFamily(self._name("strategy_state"), "1 for the strategy's current state",
                                  labels=["strategy", "state"])  # fmt: skip
        outbox = GaugeMetricFamily(
            self._name("outbox_size"), "Events waiting for a strategy's runner", labels=["strategy"]
        )
        sent = CounterMetricFamily(self._name("strategy_events"), "Events delivered to a strategy's runner",
                                   labels=["strategy"])  # fmt: skip
        conflated = CounterMetricFamily(
            self._name("conflated_events"),
            "Market data replaced by a newer update while a runner lagged",
            labels=["strategy"],
        )
        dropped = CounterMetricFamily(
            self._name("market_data_dropped"), "Market data dropped from a full outbox", labels=["strategy"]
        )
        late = CounterMetricFamily(
            self._name("late_replies"),
            "Runner replies for a batch that had already missed its deadline",
            labels=["strategy"],
        )
        impersonations = CounterMetricFamily(
            self._name("runner_impersonations"),
            "Runner outputs claiming a strategy the runner does not serve",
            labels=["strategy"],
        )
        for s in statuses:
            breaker.add_metric([s.id], _BREAKER_VALUE[s.breaker.state])
            state.add_metric([s.id, s.state.value], 1)
            outbox.add_metric([s.id], s.outbox)
            sent.add_metric([s.id], s.events_sent)
            conflated.add_metric([s.id], s.conflated)
            dropped.add_metric([s.id], s.dropped)
            late.add_metric([s.id], s.late_replies)
            impersonations.add_metric([s.id], s.impersonations)
        yield from (active, breaker, state, outbox, sent, conflated, dropped, late, impersonations)

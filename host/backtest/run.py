"""One backtest: a config made for it, the engine composed around the driver, the report.

``backtest_config`` turns a run's config and the command line's choices (which strategies, their
parameters, fees, slippage, initial cash) into the config the backtest runs: always the paper
venue (simulation mode), never hot reload or config watching (the inputs are fixed). ``run_backtest``
composes the engine as every mode does (``host.app.compose``) with a ``BacktestDriver`` as its
source, feeds the ``EquityRecorder`` from the driver, and returns the report: what the strategies
did (``host.backtest.results``) and a ``run`` section naming the inputs and options. Nothing in it
depends on the machine or the wall clock, so the same inputs give the same JSON, byte for byte.

A strategy that raises, misses a deadline or crashes leaves a crash capture as in a replay: under
``engine.captureDir`` when the config sets one, beside the ledger when the caller names one, else
in the system's temporary folder (``strategy-engine-captures/``, as a replay on a temporary
ledger), never in the run's scratch folder, which is gone when the run ends. The outcome lists
them with each strategy's last error (kept out of the report: a capture's name is wall-clock time).
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from host.app import compose
from host.backtest.data import DataSet
from host.backtest.driver import BacktestDriver
from host.backtest.results import BacktestReport, EquityRecorder
from host.clock import ReplayClock
from host.config import Config, ConfigError
from host.execution.matching import Arrival
from host.replay import TEMP_CAPTURES
from host.supervisor.capture import CaptureRecord
from host.supervisor.managed import StrategyState
from host.supervisor.supervisor import Supervisor
from sdk.events import Fill, OrderUpdate, OrderUpdateStatus

__all__ = ["FILLS", "BacktestOptions", "BacktestOutcome", "backtest_config", "parse_sets", "run_backtest"]

FILLS = ("next-open", "close", "touch")
_MINUTE_NS = 60_000_000_000


@dataclass(frozen=True)
class BacktestOptions:
    """The command line's choices; None leaves the config's value."""

    fill: str = (
        "next-open"  # next-open / touch: the next event (a bar's open, a quote's touch); close: this bar's close
    )
    latency_ms: float = 0.0
    fees_bps: float | None = None
    slippage_bps: float | None = None
    initial_cash: float | None = None
    interval_s: float | None = None  # equity sampling for tick data (bars: the bar interval)
    chunk_events: int = 4096

    def __post_init__(self) -> None:
        if self.fill not in FILLS:
            raise ConfigError("--fill", f"expected one of {', '.join(FILLS)}, got {self.fill!r}")
        for name in ("latency_ms", "fees_bps", "slippage_bps"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ConfigError(
                    f"--{name.split('_')[0]}{'-bps' if 'bps' in name else ''}", f"must be >= 0, got {value}"
                )
        if self.initial_cash is not None and not self.initial_cash > 0:
            raise ConfigError("--initial-cash", f"must be > 0, got {self.initial_cash}")
        if self.interval_s is not None and not self.interval_s > 0:
            raise ConfigError("--interval", f"must be > 0, got {self.interval_s}")

    def arrival(self) -> Arrival:
        return Arrival(delay_ns=round(self.latency_ms * 1e6), candle_fill="close" if self.fill == "close" else "open")

    def describe(self) -> dict[str, Any]:
        return {
            "fill": self.fill, "latency_ms": self.latency_ms, "fees_bps": self.fees_bps,
            "slippage_bps": self.slippage_bps, "initial_cash": self.initial_cash,
        }  # fmt: skip


@dataclass(frozen=True)
class BacktestOutcome:
    report: BacktestReport  # its "run" section names the inputs and options
    events: int
    states: dict[str, str]  # strategy id -> its state at the end (running, open, ...)
    errors: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)  # id -> (count, last error)
    captures: list[CaptureRecord] = dataclasses.field(default_factory=list)  # written by this run, oldest first
    startup_s: float = 0.0  # wall seconds until every runner was ready (not in the report: it varies)
    stepping_s: float = 0.0  # wall seconds from then until the data was done
    batches: int = 0  # batches the runners answered
    sent: int = 0  # events in them (an event after a batch's cut is sent again in the next)


def parse_sets(values: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set name.param=value`` options as {strategy: {param: value}}; values read as YAML scalars."""
    sets: dict[str, dict[str, Any]] = {}
    for text in values:
        key, sep, raw = text.partition("=")
        strategy, dot, param = key.strip().partition(".")
        if not sep or not dot or not strategy or not param:
            raise ConfigError("--set", f"expected STRATEGY.PARAM=VALUE, got {text!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}", f"not a value: {err}") from None
        sets.setdefault(strategy, {})[param] = value
    return sets


def backtest_config(
    config: Config,
    options: BacktestOptions,
    *,
    strategies: Sequence[str] = (),
    sets: Mapping[str, Mapping[str, Any]],
    every_symbol: bool = False,
) -> Config:
    """The config a backtest runs: ``strategies`` (ids; empty: the enabled ones) with ``sets`` applied.

    ``ID.symbols`` in ``sets`` sets the strategy's symbols; ``every_symbol`` (the embedded default
    config, whose built-ins name the demo's symbols) lets every strategy take every symbol of the data.
    """
    specs = dict(config.strategies)
    wanted = list(strategies) or [spec.id for spec in config.enabled_strategies()]
    for name in [*wanted, *sets]:
        if name not in specs:
            where = f"--strategy {name}" if name in wanted else f"--set {name}"
            raise ConfigError(where, f"no strategy {name!r} in the config (configured: {', '.join(specs) or 'none'})")
    chosen = {}
    for name in wanted:
        spec = specs[name]
        parameters = {**spec.parameters, **sets.get(name, {})}
        symbols = () if every_symbol else spec.symbols
        if "symbols" in parameters:
            symbols = _symbols(name, parameters.pop("symbols"))
        chosen[name] = dataclasses.replace(spec, enabled=True, parameters=parameters, symbols=symbols)
    # Breakers count simulated time; no simulated time passes while a strategy restarts, so its
    # restart delay is not waited out in real time either (the decisions stay the config's).
    engine = dataclasses.replace(
        config.engine, mode="simulation", hot_reload=False, watch_config=False, backoff_initial=0.01,
        backoff_max=0.01, backoff_jitter=0.0,
        paper_fee_rate=config.engine.paper_fee_rate if options.fees_bps is None else options.fees_bps / 10_000,
        paper_slippage_bps=(config.engine.paper_slippage_bps if options.slippage_bps is None
                            else options.slippage_bps),
    )  # fmt: skip
    risk = config.risk
    if options.initial_cash is not None:
        risk = dataclasses.replace(risk, initial_balance=options.initial_cash)
    return dataclasses.replace(config, engine=engine, risk=risk, strategies=chosen)


def _symbols(strategy: str, value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"--set {strategy}.symbols", f"expected a symbol or a list of symbols, got {value!r}")
    return tuple(names)


class _Observer:
    """Feeds the recorder from the driver, and notes breaker events as the strategies' states change."""

    def __init__(self, recorder: EquityRecorder, clock: ReplayClock) -> None:
        self.recorder = recorder
        self.clock = clock
        self._seen: dict[str, tuple[str, int]] = {}
        self._failures: dict[str, dict[str, int]] = {}

    def mark(self, timestamp_ns: int, symbol: str, price: float) -> None:
        self.recorder.mark(timestamp_ns, symbol, price)

    def fill(self, fill: Fill) -> None:
        self.recorder.fill(fill)

    def order(self, update: OrderUpdate) -> None:
        if update.status is OrderUpdateStatus.REJECTED:
            self.recorder.rejection(update.strategy, update.rule)

    def states(self, supervisor: Supervisor) -> None:
        current = {sid: (state.value, restarts) for (sid, state), restarts in
                   zip(supervisor.states().items(), supervisor.restarts().values(), strict=True)}  # fmt: skip
        if all(self._seen.get(sid, (StrategyState.RUNNING.value, 0)) == seen for sid, seen in current.items()):
            return
        for status in supervisor.status():
            before = self._seen.get(status.id, (StrategyState.RUNNING.value, 0))
            now = (status.state.value, status.restarts)
            if now == before:
                continue
            self._seen[status.id] = now
            failures = dict(status.breaker.failures_by_kind)
            before_failures = self._failures.get(status.id, {})
            self._failures[status.id] = failures
            kinds = [kind for kind, n in sorted(failures.items()) if n > before_failures.get(kind, 0)]
            detail = ", ".join(kinds) + (f" ({status.last_exit})" if status.last_exit else "")
            if status.restarts > before[1]:
                self.recorder.breaker_event(status.id, self.clock.now_ns(), "restart", detail)
            if status.state is StrategyState.OPEN and before[0] != StrategyState.OPEN.value:
                self.recorder.breaker_event(status.id, self.clock.now_ns(), "open", detail)


async def run_backtest(
    config: Config,
    data: DataSet,
    options: BacktestOptions,
    *,
    root: Path | None = None,
    ledger_path: Path | None = None,
    progress: TextIO | None = None,
) -> BacktestOutcome:
    """Run ``config``'s strategies over ``data`` (config from ``backtest_config``); the report."""
    started = time.monotonic()
    clock = ReplayClock()
    interval = data.bar_interval_ns() or round((options.interval_s or 60.0) * 1e9)
    ids = [spec.id for spec in config.enabled_strategies()]
    recorder = EquityRecorder(
        initial_cash=config.risk.initial_balance, interval_ns=interval, strategies=ids,
        end_fee_rate=config.engine.paper_fee_rate,
    )  # fmt: skip
    observer = _Observer(recorder, clock)
    total = data.count_lines() if progress is not None else None
    driver = BacktestDriver(data, clock, observer, chunk_events=options.chunk_events, progress=progress,
                            total=total, on_round=observer.states)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="se-backtest-") as scratch:
        app = compose(
            config, driver, clock=clock, venue_kind="paper", ledger_path=ledger_path or Path(scratch) / "ledger.sqlite",
            root=root, http=False, real_time=False, arrival=options.arrival(),
            capture_dir=None if ledger_path else Path(tempfile.gettempdir()) / TEMP_CAPTURES,
        )  # fmt: skip
        await app.run(asyncio.get_running_loop().create_future())  # it ends when the data does
        supervisor = app.engine.supervisor
        observer.states(supervisor)
        states = {sid: state.value for sid, state in driver.final_states.items()}
        captures = [r for r in supervisor.capture_records() if r.time >= supervisor.captures.opened][::-1]
    report = recorder.finish(max(clock.now_ns(), 0))
    run = {
        "data": data.describe(),
        "options": options.describe(),
        "strategies": {spec.id: {"plugin": spec.plugin, "strategy": spec.strategy, "symbols": list(spec.symbols),
                                 "parameters": dict(spec.parameters)} for spec in config.enabled_strategies()},
        "initial_cash": config.risk.initial_balance,
        "fees_bps": config.engine.paper_fee_rate * 10_000,
        "slippage_bps": config.engine.paper_slippage_bps,
        "sample_interval_s": interval / 1e9,
        "events": driver.events,
        "final_states": states,
        "strategy_errors": {sid: {"count": n, "last": last} for sid, (n, last) in driver.final_errors.items() if n},
        "signals_dropped": driver.dropped_signals,
    }  # fmt: skip
    report.sections["run"] = run
    errors = {sid: (n, last) for sid, (n, last) in driver.final_errors.items() if n}
    ready = driver.ready_at or started
    return BacktestOutcome(report, driver.events, states, errors, captures, ready - started,
                           max(driver.done_at - ready, 0.0), driver.batches, driver.sent)  # fmt: skip

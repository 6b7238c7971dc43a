"""Composition root: build the engine from a Config, run it, shut it down.

``run`` builds the supervisor (one runner per enabled strategy), a signal recorder standing in
for the order path until execution lands, and a source: a replay of recorded market data
(a JSON-lines file, or with no config at all the generated demo feed). A replay runs to the end
of the feed, then prints a per-strategy summary and returns. Every task lives in one TaskGroup;
SIGINT/SIGTERM set the shutdown event (the handler does nothing else), and shutdown stops every
runner through its ladder before ``run`` returns.

Replays are paced by backpressure, not by a clock: the feed waits whenever a runner's outbox
holds more than half its capacity, so a replay never conflates and every strategy sees every
event it subscribed to.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import structlog

from host.assembly import Engine, build
from host.clock import ReplayClock
from host.config import Config, StrategySpec, load
from host.supervisor.managed import StrategyDefinition, StrategyState, StrategyStatus, SupervisionSettings
from host.supervisor.policy import BreakerPolicy
from host.supervisor.process import RunnerLimits
from host.supervisor.reload import HotReloader
from host.supervisor.supervisor import Supervisor
from host.supervisor.watcher import PluginWatcher
from sdk.events import Event, Fill, Position, Timer

__all__ = ["RunReport", "StrategyReport", "definitions", "run", "settings", "summary"]

log = structlog.get_logger("host.app")


@dataclass(frozen=True)
class StrategyReport:
    status: StrategyStatus
    orders: int
    fills: int
    rejections: dict[str, int]
    position: dict[str, float]
    realized: float
    unrealized: float


@dataclass(frozen=True)
class RunReport:
    events: int
    seconds: float
    mode: str
    strategies: list[StrategyReport]
    equity: float
    initial_balance: float

    def strategy(self, strategy_id: str) -> StrategyReport:
        return next(r for r in self.strategies if r.status.id == strategy_id)


def definitions(config: Config) -> list[StrategyDefinition]:
    """One StrategyDefinition per enabled strategy, parameters and symbols merged."""
    return [_definition(spec) for spec in config.enabled_strategies()]


def _definition(spec: StrategySpec) -> StrategyDefinition:
    return StrategyDefinition(id=spec.id, plugin=spec.plugin, name=spec.strategy, params=dict(spec.params()))


def settings(config: Config, *, root: Path | None = None) -> tuple[SupervisionSettings, BreakerPolicy]:
    """Supervision settings and the breaker policy from the engine section."""
    e = config.engine
    plugins_dir = Path(e.plugins_dir)
    if not plugins_dir.is_absolute():
        plugins_dir = (root or Path.cwd()) / plugins_dir
    supervision = SupervisionSettings(
        plugins_dir=plugins_dir, processing_timeout_s=e.processing_timeout,
        transport_allowance_s=e.transport_allowance, handshake_timeout_s=e.handshake_timeout,
        stop_grace_s=e.stop_grace, outbox_capacity=e.outbox_capacity, max_batch_events=e.max_batch_events,
        max_signals_per_batch=e.max_signals_per_batch, heartbeat_interval_s=e.heartbeat_interval,
        limits=RunnerLimits(e.runner_memory_mb, e.runner_cpu_seconds, e.runner_open_files, e.runner_file_size_mb),
    )  # fmt: skip
    policy = e.breaker_policy()
    return supervision, policy


def _default_shutdown() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def run(
    config: Config,
    events: Iterable[Event],
    *,
    shutdown: Awaitable[None] | None = None,
    progress: TextIO | None = None,
    total: int | None = None,
    root: Path | None = None,
    config_path: Path | None = None,
    ledger_path: Path | None = None,
    max_lag_events: int = 128,
) -> RunReport:
    """Replay ``events`` through the configured strategies, risk and a paper venue; report what happened.

    The replay is a backtest on the live code path: event time drives the clocks, orders go through
    aggregation, risk and the ledger to a paper venue that matches them against the same events,
    and fills and positions go back to the strategies. Strategies lag the feed by at most
    ``max_lag_events`` (backpressure, never conflation). With ``engine.hotReload`` the plugins folder
    (and with ``engine.watchConfig`` the config file) is watched: an edited package is swapped to
    new runners mid-replay. Without ``ledger_path`` the ledger is a temporary file.
    """
    supervision, policy = settings(config, root=root)
    stop: Awaitable[object] = shutdown if shutdown is not None else _default_shutdown().wait()
    with tempfile.TemporaryDirectory(prefix="se-replay-") as scratch:
        clock = ReplayClock()
        venue_kind = None if config.engine.mode == "observation" else "paper"
        engine = build(config, definitions(config), supervision, policy,
                       ledger_path=ledger_path or Path(scratch) / "ledger.sqlite", clock=clock,
                       venue_kind=venue_kind)  # fmt: skip
        try:
            return await _run_replay(engine, clock, events, stop, progress, total, config_path, max_lag_events)
        finally:
            await engine.close()


async def _run_replay(
    engine: Engine, clock: ReplayClock, events: Iterable[Event], stop: Awaitable[object],
    progress: TextIO | None, total: int | None, config_path: Path | None, max_lag_events: int,
) -> RunReport:  # fmt: skip
    supervisor = engine.supervisor
    started = time.monotonic()
    replayed = 0
    watcher = _watcher(engine.config, supervisor.settings, config_path)
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(supervisor.run())
        ordering = group.create_task(engine.execution.run())
        stopper = group.create_task(_await(stop))
        if watcher is not None:
            await watcher.start()
            reloader = HotReloader(supervisor, watcher, load_definitions=_definitions_loader(config_path))
            group.create_task(reloader.run())
        try:
            await engine.execution.reconcile()
            await _wait_started(supervisor, supervisor.settings.handshake_timeout_s, stopper)
            replayed = await _replay(engine, clock, events, stopper, progress, total, max_lag_events)
            await _drain(supervisor, stopper)
            await engine.execution.drain()
        finally:
            report = _report(engine, replayed, time.monotonic() - started)
            log.info("Shutting down strategy engine")
            if watcher is not None:
                await watcher.stop()
            supervisor.close()
            stopper.cancel()
            ordering.cancel()
            await serving
    return report


def _report(engine: Engine, events: int, seconds: float) -> RunReport:
    stats = engine.execution.stats
    book = engine.book
    strategies = [
        StrategyReport(
            status=status,
            orders=stats.orders_by_strategy.get(status.id, 0),
            fills=stats.fills_by_strategy.get(status.id, 0),
            rejections=dict(stats.rejections.get(status.id, {})),
            position=dict(book.positions(status.id)),
            realized=book.realized(status.id),
            unrealized=book.unrealized(status.id),
        )
        for status in engine.supervisor.status()
    ]
    return RunReport(events, seconds, engine.execution.mode, strategies, book.equity(), book.initial_balance)


def _watcher(config: Config, supervision: SupervisionSettings, config_path: Path | None) -> PluginWatcher | None:
    if not config.engine.hot_reload or not supervision.plugins_dir.is_dir():
        return None
    watched = config_path if config.engine.watch_config else None
    return PluginWatcher(supervision.plugins_dir, config_path=watched)


def _definitions_loader(config_path: Path | None) -> Callable[[], list[StrategyDefinition]] | None:
    if config_path is None:
        return None
    return lambda: definitions(load(config_path))


async def _await(awaitable: Awaitable[object]) -> None:
    await awaitable


async def _wait_started(supervisor: Supervisor, timeout: float, stopper: asyncio.Task[None]) -> None:
    """Until every strategy is Ready, or has settled into a state where it will not be soon."""
    await supervisor.started.wait()
    deadline = time.monotonic() + timeout
    while not stopper.done() and time.monotonic() < deadline:
        states = [s.state for s in supervisor.status()]
        if all(state is not StrategyState.STARTING for state in states):
            return
        await asyncio.sleep(0.02)


async def _replay(
    engine: Engine, clock: ReplayClock, events: Iterable[Event], stopper: asyncio.Task[None],
    progress: TextIO | None, total: int | None, max_lag_events: int,
) -> int:  # fmt: skip
    supervisor = engine.supervisor
    count = 0
    last_report = time.monotonic()
    for event in events:
        if stopper.done():
            break
        clock.advance(event.timestamp_ns)
        if isinstance(event, (Fill, Position, Timer)):
            for strategy_id in _owners(supervisor, event):
                supervisor.deliver(strategy_id, event)
        else:
            engine.on_market(event)
        count += 1
        if count % 32 == 0:
            while supervisor.backlog() > max_lag_events and not stopper.done():
                await asyncio.sleep(0.0005)
            await asyncio.sleep(0)
            if progress is not None and time.monotonic() - last_report >= 1.0:
                last_report = time.monotonic()
                _progress(progress, count, total)
    return count


def _owners(supervisor: Supervisor, event: Fill | Position | Timer) -> list[str]:
    ids = [d.id for d in supervisor.definitions()]
    strategy = getattr(event, "strategy", "")
    return [strategy] if strategy in ids else ids if isinstance(event, Timer) else []


async def _drain(supervisor: Supervisor, stopper: asyncio.Task[None], timeout: float = 30.0) -> None:
    """Until every running strategy has answered everything queued for it."""
    deadline = time.monotonic() + timeout
    while not stopper.done() and time.monotonic() < deadline and not supervisor.quiescent():
        await asyncio.sleep(0.005)


def _progress(out: TextIO, count: int, total: int | None) -> None:
    share = f" / {total:,} ({100 * count / total:.0f} %)" if total else ""
    out.write(f"\r  replayed {count:,}{share} events")
    out.flush()


def summary(report: RunReport, out: TextIO = sys.stdout) -> None:
    """The per-strategy table printed at the end of a replay."""
    rate = report.events / report.seconds if report.seconds > 0 else 0.0
    out.write(f"\nreplayed {report.events:,} events in {report.seconds:.1f} s ({rate:,.0f} events/s), "
              f"{report.mode} mode\n\n")  # fmt: skip
    header = ("strategy", "state", "breaker", "restarts", "events", "signals", "orders", "fills", "rejected",
              "position", "realized", "unrealized", "p50 ms", "p99 ms")  # fmt: skip
    rows = [header]
    for r in report.strategies:
        s = r.status
        position = ",".join(f"{sym}:{qty:+g}" for sym, qty in sorted(r.position.items())) or "flat"
        rows.append((
            s.id, s.state.value, s.breaker.state.value, str(s.restarts), f"{s.events_sent:,}", f"{s.signals:,}",
            f"{r.orders:,}", f"{r.fills:,}", f"{sum(r.rejections.values()):,}", position, f"{r.realized:,.2f}",
            f"{r.unrealized:,.2f}", _ms(s.latency_p50_us), _ms(s.latency_p99_us),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    for r in report.strategies:
        if r.rejections:
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(r.rejections.items(), key=lambda x: -x[1]))
            out.write(f"\n{r.status.id}: rejected by {reasons}")
        if r.status.last_error:
            out.write(f"\n{r.status.id}: last error: {r.status.last_error}")
    pnl = report.equity - report.initial_balance
    out.write(f"\n\nequity {report.equity:,.2f} (P&L {pnl:+,.2f} on {report.initial_balance:,.2f})\n")


def _ms(micros: float | None) -> str:
    return "-" if micros is None else f"{micros / 1000:.2f}"

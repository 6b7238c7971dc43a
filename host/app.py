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
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import structlog

from host.config import Config, StrategySpec, load
from host.supervisor.managed import StrategyDefinition, StrategyState, StrategyStatus, SupervisionSettings
from host.supervisor.policy import BreakerPolicy
from host.supervisor.process import RunnerLimits
from host.supervisor.reload import HotReloader
from host.supervisor.supervisor import Supervisor
from host.supervisor.watcher import PluginWatcher
from sdk.events import Cancel, Event, Fill, Position, Side, Signal, Timer

__all__ = ["RunReport", "SignalRecorder", "definitions", "run", "settings", "summary"]

log = structlog.get_logger("host.app")


@dataclass
class StrategyTally:
    buys: int = 0
    sells: int = 0
    cancels: int = 0
    down: list[str] = field(default_factory=list)


class SignalRecorder:
    """The supervisor's listener while no execution venue is wired: counts what strategies asked for."""

    def __init__(self) -> None:
        self.tallies: dict[str, StrategyTally] = {}

    def _tally(self, strategy_id: str) -> StrategyTally:
        return self.tallies.setdefault(strategy_id, StrategyTally())

    def signals(self, strategy_id: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        tally = self._tally(strategy_id)
        for signal_ in signals:
            if signal_.side is Side.BUY:
                tally.buys += 1
            else:
                tally.sells += 1
        tally.cancels += len(cancels)

    def strategy_down(self, strategy_id: str, reason: str) -> None:
        self._tally(strategy_id).down.append(reason)

    def positions(self, strategy_id: str) -> list[Position]:
        return []


@dataclass(frozen=True)
class RunReport:
    events: int
    seconds: float
    strategies: list[StrategyStatus]
    tallies: dict[str, StrategyTally]


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
) -> RunReport:
    """Replay ``events`` through the configured strategies; return what they did.

    With ``engine.hotReload`` the plugins folder (and with ``engine.watchConfig`` the config
    file) is watched while the replay runs: an edited package is swapped to new runners.
    """
    supervision, policy = settings(config, root=root)
    recorder = SignalRecorder()
    supervisor = Supervisor(supervision, definitions(config), recorder, breaker_policy=policy)
    stop: Awaitable[object] = shutdown if shutdown is not None else _default_shutdown().wait()
    started = time.monotonic()
    replayed = 0
    watcher = _watcher(config, supervision, config_path)
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(supervisor.run())
        stopper = group.create_task(_await(stop))
        if watcher is not None:
            await watcher.start()
            reloader = HotReloader(supervisor, watcher, load_definitions=_definitions_loader(config_path))
            group.create_task(reloader.run())
        try:
            await _wait_started(supervisor, supervision.handshake_timeout_s, stopper)
            replayed = await _replay(supervisor, events, stopper, progress, total)
            await _drain(supervisor, stopper)
        finally:
            report = RunReport(replayed, time.monotonic() - started, supervisor.status(), recorder.tallies)
            log.info("Shutting down strategy engine")
            if watcher is not None:
                await watcher.stop()
            supervisor.close()
            stopper.cancel()
            await serving
    return report


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
    supervisor: Supervisor, events: Iterable[Event], stopper: asyncio.Task[None],
    progress: TextIO | None, total: int | None,
) -> int:  # fmt: skip
    high = supervisor.settings.outbox_capacity // 2
    count = 0
    last_report = time.monotonic()
    for event in events:
        if stopper.done():
            break
        if isinstance(event, (Fill, Position, Timer)):
            for strategy_id in _owners(supervisor, event):
                supervisor.deliver(strategy_id, event)
        else:
            supervisor.publish(event)
        count += 1
        if count % 256 == 0:
            while supervisor.backlog() > high and not stopper.done():
                await asyncio.sleep(0.001)
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
    out.write(f"\nreplayed {report.events:,} events in {report.seconds:.1f} s ({rate:,.0f} events/s)\n\n")
    header = ("strategy", "state", "breaker", "events", "buys", "sells", "cancels", "errors", "restarts", "p50 ms",
              "p99 ms")  # fmt: skip
    rows = [header]
    for status in report.strategies:
        tally = report.tallies.get(status.id, StrategyTally())
        rows.append((
            status.id, status.state.value, status.breaker.state.value, f"{status.events_sent:,}", str(tally.buys),
            str(tally.sells), str(tally.cancels), str(status.errors), str(status.restarts),
            _ms(status.latency_p50_us), _ms(status.latency_p99_us),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    for status in report.strategies:
        if status.last_error:
            out.write(f"\n{status.id}: last error: {status.last_error}\n")
    out.write(
        "\nOrders, fills and P&L: not computed yet. Signals are recorded (observation); "
        "the risk manager and paper execution are the next step.\n"
    )


def _ms(micros: float | None) -> str:
    return "-" if micros is None else f"{micros / 1000:.2f}"

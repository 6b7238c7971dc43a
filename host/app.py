"""Composition root: every mode of the engine is built by ``compose`` and run by ``App.run``.

Model. A run is an ``Engine`` (``host.assembly.build``: supervisor, risk, aggregation, execution,
ledger, metrics) plus what surrounds it here, the same way in every mode: the plugin watcher and
hot reloader (``engine.hotReload``), the config watcher (``engine.watchConfig``, when the run has a
config file), and the HTTP port. Only three things differ between modes, and they are arguments:

- the **source** (``Source``): ``host.live.LiveSource`` (Redis market data, NATS fills and
  positions; runs until shutdown) or ``host.replay.ReplaySource`` (a recorded or generated feed;
  ends when the feed is replayed and every strategy has answered);
- the **clock**: the system clocks live, event time in a replay (``host.clock``);
- the **venue**: the gRPC order-execution service (live mode), an in-process paper venue
  (simulation mode, and every replay: a replay never sends a real order), or none (observation).

The HTTP port is served in every live run and in a replay asked for it (``--http``): a replay that
ends in seconds has nobody to watch it otherwise, which is the one difference of mode here.

``App.run`` keeps every task in one TaskGroup: the supervisor, the execution loop, the reloader,
the ledger's retention (``engine.ledgerRetentionDays``: at start, then once a day) and the source.
It returns once the source ends or ``shutdown`` resolves; then the source is closed, the watchers
stop, every runner goes down its stop ladder, the order path drains (bounded), and the HTTP port
closes last, so /ready says why the engine is not ready at both ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from host.assembly import Engine, build
from host.clock import Clocks
from host.config import Config, ConfigError, StrategySpec
from host.execution.matching import Arrival
from host.ledger.retention import retain
from host.logs import set_level
from host.reconfigure import Reconfigurer
from host.risk.seams import FeedView
from host.supervisor.capture import CapturePolicy
from host.supervisor.managed import StrategyDefinition, SupervisionSettings
from host.supervisor.policy import BreakerPolicy
from host.supervisor.process import RunnerLimits, runner_identity
from host.supervisor.reload import HotReloader
from host.supervisor.watcher import PluginWatcher, WatcherError

if TYPE_CHECKING:
    from host.http import HttpServer

__all__ = ["App", "Source", "compose", "default_root", "default_shutdown", "definitions", "settings"]

log = structlog.get_logger("host.app")

_SOURCE_CLOSE_S = 5.0


class Source(Protocol):
    """Where a run's events come from."""

    @property
    def feed(self) -> FeedView | None:
        """The live feed's health, for risk's staleness rule; None for a replay (event time rules)."""

    def bind(self, engine: Engine) -> None:
        """Connect the source's outputs to ``engine`` (called once, right after it is built)."""

    def brokers(self) -> Mapping[str, bool]:
        """Each broker connection the source holds and whether it is up (for /ready)."""

    async def run(self, engine: Engine) -> None:
        """Feed ``engine``; return when the source is exhausted (a replay) or closed."""

    async def close(self) -> None:
        """Stop feeding: ``run`` returns soon after."""


def definitions(config: Config) -> list[StrategyDefinition]:
    """One StrategyDefinition per enabled strategy, parameters and symbols merged."""
    return [_definition(spec) for spec in config.enabled_strategies()]


def _definition(spec: StrategySpec) -> StrategyDefinition:
    return StrategyDefinition(id=spec.id, plugin=spec.plugin, name=spec.strategy, params=dict(spec.params()))


def settings(config: Config, *, root: Path | None = None) -> tuple[SupervisionSettings, BreakerPolicy]:
    """Supervision settings and the breaker policy from the engine section."""
    e = config.engine
    supervision = SupervisionSettings(
        plugins_dir=resolve(e.plugins_dir, root), processing_timeout_s=e.processing_timeout,
        transport_allowance_s=e.transport_allowance, handshake_timeout_s=e.handshake_timeout,
        stop_grace_s=e.stop_grace, outbox_capacity=e.outbox_capacity, max_batch_events=e.max_batch_events,
        max_signals_per_batch=e.max_signals_per_batch, heartbeat_interval_s=e.heartbeat_interval,
        limits=RunnerLimits(e.runner_memory_mb, e.runner_cpu_seconds, e.runner_open_files, e.runner_file_size_mb),
        cpu_share=e.runner_cpu_share, cpu_window_s=e.runner_cpu_window, flood_strikes=e.order_flood_rejections,
        flood_window_s=e.order_flood_window,
        runner_user=_runner_user(e.runner_user), data_lane=e.data_lane,
        capture=CapturePolicy(e.capture_events, e.capture_files, e.capture_interval,
                              resolve(e.capture_dir, root) if e.capture_dir else None),
    )  # fmt: skip
    return supervision, e.breaker_policy()


def _runner_user(name: str) -> tuple[int, int] | None:
    try:
        return runner_identity(name)
    except ValueError as err:
        raise ConfigError("engine.runnerUser", str(err)) from None


def default_root(config: Config) -> Path:
    """Where plugins/ is when no config file says: the working directory if it holds every configured
    plugin, else the source checkout (where the built-in plugins are)."""
    here = Path.cwd()
    plugins = here / config.engine.plugins_dir
    if all((plugins / spec.plugin).is_dir() for spec in config.enabled_strategies()):
        return here
    return Path(__file__).resolve().parent.parent


def resolve(setting: str, root: Path | None) -> Path:
    """A path from the config: a relative one is relative to ``root`` (the config file's folder)."""
    path = Path(setting)
    return path if path.is_absolute() else (root or Path.cwd()) / path


def default_shutdown() -> asyncio.Future[bool]:
    """Resolves on SIGINT or SIGTERM (the handler only sets an event).

    A future, not a bare ``Event.wait()`` coroutine: a run that fails before it waits (a port in use)
    leaves a pending future, which the loop cancels, instead of a coroutine never awaited.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return asyncio.ensure_future(stop.wait())


@dataclass
class App:
    """One engine with its source, watchers and HTTP port, as ``compose`` wired them."""

    config: Config
    engine: Engine
    source: Source
    http: HttpServer | None
    watcher: PluginWatcher | None
    reloader: HotReloader | None

    @property
    def ready(self) -> bool:
        """Brokers connected, the venue reachable, every strategy that should run Ready (what /ready says)."""
        from host.http import readiness  # the HTTP package pulls in aiohttp: only runs that serve or ask load it

        return not readiness(self.engine.supervisor, self.source.brokers(), self.engine.venue)

    async def run(self, shutdown: Awaitable[object]) -> None:
        """Serve until the source ends or ``shutdown`` resolves, then stop everything in order.

        A source that fails (bad market data in a replay) fails the run, but only after the same
        orderly stop: the TaskGroup never cancels runners in the middle of their handshake.
        """
        engine = self.engine
        if self.http is not None:
            await self.http.start()
        try:
            async with asyncio.TaskGroup() as group:
                serving = group.create_task(engine.supervisor.run())
                await engine.execution.reconcile()
                ordering = group.create_task(engine.execution.run())
                retaining = self._retain(group)
                if await self._watch():
                    assert self.reloader is not None
                    group.create_task(self.reloader.run())
                stopping = group.create_task(_wait(shutdown))
                failure = await self._feed(stopping)
                if self.watcher is not None:
                    await self.watcher.stop()  # ends the reloader's loop
                engine.supervisor.close()
                await serving
                await engine.execution.drain(timeout_s=5.0)
                ordering.cancel()
                if retaining is not None:
                    retaining.cancel()
                stopping.cancel()
                if failure is not None:
                    raise failure
        finally:
            if self.http is not None:
                await self.http.stop()  # last, so /ready reports the shutdown while it happens
            await self.engine.close()

    def _retain(self, group: asyncio.TaskGroup) -> asyncio.Task[None] | None:
        """With ``engine.ledgerRetentionDays``: compact the ledger at start and then once a day."""
        days = self.config.engine.ledger_retention_days
        if not days:
            return None
        return group.create_task(retain(self.engine.ledger.path, days, self.engine.execution.clock))

    async def _watch(self) -> bool:
        """Start the watcher; one that cannot start (inotify limit, folder gone) is logged, not fatal.

        Trading goes on without hot reload and config watching rather than not at all; /status says
        ``watching: false`` and the error is logged as ``watcher_failed``.
        """
        if self.watcher is None or self.reloader is None:
            return False
        try:
            await self.watcher.start()
        except WatcherError as err:
            log.error("watcher_failed", reason=str(err))
            await self.watcher.stop()
            self.watcher = None
            return False
        return True

    async def _feed(self, stopping: asyncio.Task[None]) -> BaseException | None:
        """Run the source until it ends or ``stopping`` does, then close it; what it raised, if anything."""
        feeding = asyncio.ensure_future(self.source.run(self.engine))
        try:
            await asyncio.wait({feeding, stopping}, return_when=asyncio.FIRST_COMPLETED)
            log.info("Shutting down strategy engine")
            await self.source.close()
            if not (await asyncio.wait({feeding}, timeout=_SOURCE_CLOSE_S))[0]:
                feeding.cancel()  # a source that does not end when closed is not waited for
                await asyncio.wait({feeding})
        finally:
            if not feeding.done():
                feeding.cancel()
        return None if feeding.cancelled() else feeding.exception()


async def _wait(awaitable: Awaitable[object]) -> None:
    await awaitable


def compose(
    config: Config,
    source: Source,
    *,
    clock: Clocks,
    venue_kind: str | None,
    ledger_path: Path,
    root: Path | None = None,
    config_path: Path | None = None,
    http: bool = True,
    real_time: bool = True,
    capture_dir: Path | None = None,
    arrival: Arrival | None = None,
) -> App:
    """Build an engine for any mode: ``source``, ``clock`` and ``venue_kind`` are what differ.

    ``venue_kind`` is "grpc", "paper" or None (observation). ``root`` resolves a relative
    ``engine.pluginsDir``; ``config_path`` is the file the config watcher follows (None: no file).
    ``real_time`` False (a replay, paced by backpressure: every runner is meant to run flat out)
    turns the per-runner CPU budget off; it shares the machine's cores in wall-clock time. It also
    turns off the supervisor's live timer task: the run's own driver fires timers on its clock.
    Crash captures go to ``engine.captureDir``, else ``capture_dir``, else a ``captures`` folder
    beside the ledger.
    ``arrival`` (a backtest) is how the paper venue's orders reach it (``host.execution.matching``).
    """
    supervision, policy = settings(config, root=root)
    if supervision.capture.directory is None:
        directory = capture_dir or ledger_path.parent / "captures"
        supervision = dataclasses.replace(
            supervision, capture=dataclasses.replace(supervision.capture, directory=directory)
        )
    if not real_time:  # simulated time: its driver fires the timers (supervisor.timers), not the wall clock
        supervision = dataclasses.replace(supervision, cpu_share=0.0, live_timers=False)
    engine = build(config, definitions(config), supervision, policy, ledger_path=ledger_path, clock=clock,
                   venue_kind=venue_kind, feed=source.feed, arrival=arrival)  # fmt: skip
    source.bind(engine)
    watcher, reloader = _watching(config, engine, supervision.plugins_dir, config_path)
    server = None
    if http:
        from host.http import engine_server  # aiohttp (0.4 s of imports) only for a run that serves HTTP

        server = engine_server(engine, brokers=source.brokers, reloader=reloader)
    return App(config, engine, source, server, watcher, reloader)


def _watching(
    config: Config, engine: Engine, plugins_dir: Path, config_path: Path | None
) -> tuple[PluginWatcher | None, HotReloader | None]:
    """The watcher and its reloader: plugin packages with ``engine.hotReload``, the config file with
    ``engine.watchConfig`` (when the run has one); None when neither is followed."""
    watched = config_path if config.engine.watch_config else None
    packages = config.engine.hot_reload
    if not packages and watched is None:
        return None, None
    if not plugins_dir.is_dir():
        log.warning("watcher_off", plugins_dir=str(plugins_dir), reason="not a directory")
        return None, None
    reconfigurer = None
    if watched is not None:
        reconfigurer = Reconfigurer(
            config, strategies=engine.supervisor, definitions=definitions,
            set_risk=engine.set_risk, set_log_level=set_level,
        )  # fmt: skip
    watcher = PluginWatcher(plugins_dir, config_path=watched)
    reloader = HotReloader(engine.supervisor, watcher, reconfigurer=reconfigurer, metrics=engine.metrics,
                           packages=packages)  # fmt: skip
    return watcher, reloader

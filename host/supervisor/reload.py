"""Hot reload: what the plugin watcher sees on disk becomes one supervisor action.

Model. ``HotReloader.run`` is one task that iterates ``PluginWatcher.changes()`` and carries out
each change to the end before taking the next, so changes are applied in the order their
packages settled and two reloads never overlap. The mapping is:

- ``PackageChange`` "changed" -> ``Supervisor.reload_plugin``: each strategy of the package is
  swapped to a new runner (start new -> Ready -> route to new -> stop old). A replacement that
  fails leaves the old runner serving; the outcome names why, and that is counted here.
- "added" -> ``plugin_added`` (start, or resume, the configured strategies that use it);
  "removed" -> ``plugin_removed`` (stop them; their definitions stay for when it comes back).
- ``ConfigChange`` -> ``ConfigTarget.apply(path)`` (``host.reconfigure.Reconfigurer``): the whole
  file is validated, then what can be applied live is. A file that does not load (or any failure
  applying it) is reported and counted, and what runs stays as it was until a good file is saved.

Every outcome is counted in ``plugin_reloads_total{plugin,result}`` / ``config_reloads_total{result}``
and kept (``last``, ``last_config``) with its wall-clock time for /status.

Containment: an exception from any step is logged and counted against that change, and the loop
goes on with the next one; one bad change never ends hot reload for the others. ``run`` returns
once the watcher stops (``changes()`` ends); cancelling it stops it between or during changes.

Timing: the clock is read when a change is yielded and again when ``reload_plugin`` returns an ok
outcome with at least one strategy swapped, which is the moment traffic goes to the new runners.
The difference (debounce not included: that happened before the change was yielded) is kept per
package and in the bounded ``reload_times_s`` for reporting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from host.clock import Clock, SystemClock
from host.supervisor.managed import StrategyDefinition
from host.supervisor.supervisor import ReloadOutcome
from host.supervisor.watcher import Change, ConfigChange, Kind, PackageChange

if TYPE_CHECKING:
    from host.metrics import EngineMetrics
    from host.reconfigure import ConfigOutcome

__all__ = ["ChangeSource", "ConfigReport", "ConfigTarget", "HotReloader", "PackageReport", "ReloadTarget"]

log = structlog.get_logger("host.reload")
_TIMINGS_KEPT = 256
_REASON_LIMIT = 500


class ChangeSource(Protocol):
    """Where changes come from (``PluginWatcher``): one iterator, ending when the source stops."""

    def changes(self) -> AsyncIterator[Change]: ...


class ReloadTarget(Protocol):
    """What a change is applied to (``Supervisor``)."""

    async def reload_plugin(self, plugin: str) -> ReloadOutcome: ...
    async def plugin_added(self, plugin: str) -> None: ...
    async def plugin_removed(self, plugin: str) -> None: ...
    async def set_definitions(self, definitions: Iterable[StrategyDefinition]) -> Mapping[str, str]: ...


class ConfigTarget(Protocol):
    """What a changed config file is applied to (``host.reconfigure.Reconfigurer``)."""

    async def apply(self, path: Path) -> ConfigOutcome: ...


@dataclass(frozen=True, slots=True)
class PackageReport:
    """The last change applied to one package and how it went."""

    package: str
    kind: Kind
    ok: bool
    error: str  # "" when ok; for a failed reload, "strategy: reason" per strategy that kept its old runner
    duration_s: float | None  # change yielded -> new runners serving; None when nothing was swapped
    at: float = 0.0  # wall-clock time (Unix seconds) the change was applied


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """The last change of the config file and how it went."""

    path: str
    ok: bool
    error: str  # "" when ok: why the file was refused, or which strategies kept their old definitions
    applied: tuple[str, ...]
    restart_required: tuple[str, ...]
    at: float  # wall-clock time (Unix seconds)


class HotReloader:
    """Applies each settled change from ``watcher`` to ``supervisor``, counting what happened."""

    def __init__(
        self,
        supervisor: ReloadTarget,
        watcher: ChangeSource,
        *,
        reconfigurer: ConfigTarget | None = None,
        metrics: EngineMetrics | None = None,
        clock: Clock | None = None,
        packages: bool = True,
    ) -> None:
        self.supervisor = supervisor
        self.watcher = watcher
        self.reconfigurer = reconfigurer
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.packages = packages  # False: only the config file is followed (engine.hotReload off)
        self.reloads = 0  # "changed" packages whose strategies all serve the new code
        self.reload_failures = 0  # package changes that left some strategy on its old runner, or raised
        self.packages_added = 0
        self.packages_removed = 0
        self.config_reloads = 0
        self.config_errors = 0
        self.last: dict[str, PackageReport] = {}
        self.last_config: ConfigReport | None = None
        self.active = False  # run() is applying changes (False before it starts and after it ends)
        self.reload_times_s: deque[float] = deque(maxlen=_TIMINGS_KEPT)

    async def run(self) -> None:
        """Apply every change the watcher yields, one at a time, until it stops."""
        self.active = True
        try:
            await self._apply_changes()
        finally:
            self.active = False

    async def _apply_changes(self) -> None:
        async for change in self.watcher.changes():
            started = self.clock.monotonic()
            match change:
                case PackageChange() if self.packages:
                    await self._package(change, started)
                case ConfigChange():
                    await self._config(change)

    # ---------------------------------------------------------------- packages

    async def _package(self, change: PackageChange, started: float) -> None:
        plugin, kind = change.package, change.kind
        with structlog.contextvars.bound_contextvars(plugin=plugin):
            try:
                error, swapped = await self._apply(plugin, kind)
            # Any failure of one change is reported and the watcher loop goes on (see module docstring).
            except Exception as exc:
                error, swapped = f"{type(exc).__name__}: {exc}", 0
        duration = self.clock.monotonic() - started if swapped and not error else None
        self.last[plugin] = PackageReport(plugin, kind, not error, error, duration, time.time())
        if self.metrics is not None:
            self.metrics.reloads.labels(plugin=plugin, result="failed" if error else "ok").inc()
        if error:
            self.reload_failures += 1
            log.error("plugin_reload_failed", plugin=plugin, kind=kind, reason=error[:_REASON_LIMIT])
            return
        if duration is not None:
            self.reload_times_s.append(duration)
        log.info("plugin_reload", plugin=plugin, kind=kind, strategies=swapped, duration_s=_round(duration))

    async def _apply(self, plugin: str, kind: Kind) -> tuple[str, int]:
        """Carry out one package change: the error ("" when ok) and how many strategies were swapped."""
        match kind:
            case "changed":
                outcome = await self.supervisor.reload_plugin(plugin)
                if not outcome.ok:
                    return _failures(outcome), 0
                self.reloads += 1
                return "", len(outcome.results)
            case "added":
                await self.supervisor.plugin_added(plugin)
                self.packages_added += 1
            case "removed":
                await self.supervisor.plugin_removed(plugin)
                self.packages_removed += 1
        return "", 0

    # ---------------------------------------------------------------- config

    async def _config(self, change: ConfigChange) -> None:
        path = str(change.path)
        if self.reconfigurer is None:
            log.warning("config_change_ignored", path=path, reason="config watching is off")
            return
        try:
            outcome = await self.reconfigurer.apply(change.path)
        # A bad config file (or any failure applying it) is reported; what runs stays as it was.
        except Exception as exc:
            self._config_done(ConfigReport(path, False, f"{type(exc).__name__}: {exc}", (), (), time.time()))
            return
        # Refused strategies keep serving with their old definitions; the rest of the file applied.
        error = "; ".join(f"{sid}: {reason}" for sid, reason in outcome.refused.items())
        report = ConfigReport(path, outcome.ok, error, outcome.applied, outcome.restart_required, time.time())
        self._config_done(report)

    def _config_done(self, report: ConfigReport) -> None:
        self.last_config = report
        if self.metrics is not None:
            self.metrics.config_reloads.labels(result="ok" if report.ok else "failed").inc()
        if report.ok:
            self.config_reloads += 1
            log.info("config_reload", path=report.path, applied=list(report.applied),
                     restart_required=list(report.restart_required))  # fmt: skip
            return
        self.config_errors += 1
        log.error("config_reload_failed", path=report.path, reason=report.error[:_REASON_LIMIT])


def _failures(outcome: ReloadOutcome) -> str:
    return "; ".join(f"{sid}: {reason}" for sid, reason in outcome.results.items() if reason is not None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)

"""Hot reload: what the plugin watcher sees on disk becomes one supervisor action.

Model. ``HotReloader.run`` is one task that iterates ``PluginWatcher.changes()`` and carries out
each change to the end before taking the next, so changes are applied in the order their
packages settled and two reloads never overlap. The mapping is:

- ``PackageChange`` "changed" -> ``Supervisor.reload_plugin``: each strategy of the package is
  swapped to a new runner (start new -> Ready -> route to new -> stop old). A replacement that
  fails leaves the old runner serving; the outcome names why, and that is counted here.
- "added" -> ``plugin_added`` (start, or resume, the configured strategies that use it);
  "removed" -> ``plugin_removed`` (stop them; their definitions stay for when it comes back).
- ``ConfigChange`` -> ``load_definitions()`` then ``set_definitions``. A loader that raises (a bad
  config file) is reported and counted and the supervisor is not called, so the running
  strategies are untouched until a good file is saved.

Containment: an exception from any step is logged and counted against that change, and the loop
goes on with the next one; one bad change never ends hot reload for the others. ``run`` returns
once the watcher stops (``changes()`` ends); cancelling it stops it between or during changes.

Timing: the clock is read when a change is yielded and again when ``reload_plugin`` returns an ok
outcome with at least one strategy swapped, which is the moment traffic goes to the new runners.
The difference (debounce not included: that happened before the change was yielded) is kept per
package and in the bounded ``reload_times_s`` for reporting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from host.clock import Clock, SystemClock
from host.supervisor.managed import StrategyDefinition
from host.supervisor.supervisor import ReloadOutcome
from host.supervisor.watcher import Change, ConfigChange, Kind, PackageChange

__all__ = ["ChangeSource", "HotReloader", "PackageReport", "ReloadTarget"]

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


@dataclass(frozen=True, slots=True)
class PackageReport:
    """The last change applied to one package and how it went."""

    package: str
    kind: Kind
    ok: bool
    error: str  # "" when ok; for a failed reload, "strategy: reason" per strategy that kept its old runner
    duration_s: float | None  # change yielded -> new runners serving; None when nothing was swapped


class HotReloader:
    """Applies each settled change from ``watcher`` to ``supervisor``, counting what happened."""

    def __init__(
        self,
        supervisor: ReloadTarget,
        watcher: ChangeSource,
        *,
        load_definitions: Callable[[], list[StrategyDefinition]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.watcher = watcher
        self.load_definitions = load_definitions
        self.clock = clock or SystemClock()
        self.reloads = 0  # "changed" packages whose strategies all serve the new code
        self.reload_failures = 0  # package changes that left some strategy on its old runner, or raised
        self.packages_added = 0
        self.packages_removed = 0
        self.config_reloads = 0
        self.config_errors = 0
        self.last: dict[str, PackageReport] = {}
        self.last_config_error = ""
        self.reload_times_s: deque[float] = deque(maxlen=_TIMINGS_KEPT)

    async def run(self) -> None:
        """Apply every change the watcher yields, one at a time, until it stops."""
        async for change in self.watcher.changes():
            started = self.clock.monotonic()
            match change:
                case PackageChange():
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
        self.last[plugin] = PackageReport(plugin, kind, not error, error, duration)
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
        if self.load_definitions is None:
            log.warning("config_change_ignored", path=path, reason="no definitions loader configured")
            return
        try:
            definitions = self.load_definitions()
            refused = await self.supervisor.set_definitions(definitions)
        # A bad config file (or any failure applying it) is reported; what runs stays as it was.
        except Exception as exc:
            self._config_failed(path, f"{type(exc).__name__}: {exc}")
            return
        if refused:
            # Those strategies keep serving with their old parameters.
            self._config_failed(path, "; ".join(f"{sid}: {reason}" for sid, reason in refused.items()))
            return
        self.config_reloads += 1
        self.last_config_error = ""
        log.info("config_reload", path=path, strategies=len(definitions))

    def _config_failed(self, path: str, reason: str) -> None:
        self.config_errors += 1
        self.last_config_error = reason
        log.error("config_reload_failed", path=path, reason=reason[:_REASON_LIMIT])


def _failures(outcome: ReloadOutcome) -> str:
    return "; ".join(f"{sid}: {reason}" for sid, reason in outcome.results.items() if reason is not None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)

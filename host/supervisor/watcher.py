"""Hot-reload watcher: plugin source changes on disk become one ``PackageChange`` per real edit.

Model. A watchdog ``Observer`` watches ``plugins/`` recursively (and, when given, the config
file's folder). Its handler runs on watchdog's thread and does one thing: hand each event path
to the loop with ``loop.call_soon_threadsafe(queue.put_nowait, path)``. Which events count is
decided once, by the observer's ``event_filter``: created, modified, moved, deleted and closed
(after a write). Opened, closed-without-write and attribute events, which reading, importing or
``touch`` fire, never leave the observer.

On the loop, ``PluginWatcher.changes()`` maps each path to its package (``package_of``: noise
such as ``__pycache__``, dotfiles and editor swap files maps to nothing) and notes it in a
``Debouncer``. A package is settled once it has been quiet for ``quiet_s`` or, if it is touched
without pause, ``max_delay_s`` after its first event. Then its ``package_digest`` (sha256 over
the relative paths and contents of its source files) is compared with the last one seen; only a
different digest is yielded, so merely starting, touching, rewriting the same bytes or writing
bytecode yields nothing. Digests of the packages present at ``start()`` are the baseline.

Ordering and liveness: changes are yielded in the order their packages settle; a burst over
one package yields at most one change per settle. Digests are computed off the loop in a
worker thread. ``stop()`` joins the observer within ``join_timeout_s`` and ends ``changes()``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, TypeVar

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from host.clock import Clock, SystemClock

__all__ = [
    "Change",
    "ConfigChange",
    "PackageChange",
    "PluginWatcher",
    "WatcherError",
    "Debouncer",
    "classify",
    "is_noise",
    "package_digest",
    "package_of",
]

log = structlog.get_logger("host.watcher")

# The events that can change a source file; the rest (opened, closed_no_write, attrib) are
# what reading, importing and touching fire.
_KEPT_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, DirCreatedEvent, FileModifiedEvent, FileMovedEvent, DirMovedEvent,
    FileDeletedEvent, DirDeletedEvent, FileClosedEvent,
]  # fmt: skip
_NOISE_PREFIXES = (".", "~")
_NOISE_SUFFIXES = (".swp", ".swx", ".pyc", ".tmp", "~")

K = TypeVar("K", bound=Hashable)
Kind = Literal["added", "changed", "removed"]


class WatcherError(Exception):
    """The watcher could not start: names the path and, when known, the fix."""


@dataclass(frozen=True, slots=True)
class PackageChange:
    """A plugin package whose source digest differs from the last one seen."""

    package: str
    kind: Kind
    digest: str | None  # None when removed


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """The watched config file's content changed (or it appeared or vanished)."""

    path: Path


Change = PackageChange | ConfigChange


# --- pure core ------------------------------------------------------------------------------


def is_noise(name: str) -> bool:
    """True for file or folder names that are never plugin source: caches, dotfiles, editor files."""
    return name == "__pycache__" or name.startswith(_NOISE_PREFIXES) or name.endswith(_NOISE_SUFFIXES)


def package_of(plugins_dir: Path, changed: Path) -> str | None:
    """The top-level package folder under ``plugins_dir`` that ``changed`` belongs to.

    None for paths outside ``plugins_dir``, for noise anywhere along the path and for names
    that cannot be a package (the runner imports a plugin by its folder name, so it must be an
    identifier; this is also what tells ``conftest.py`` or ``README.md`` at the top apart).
    """
    if not changed.is_relative_to(plugins_dir):
        return None
    parts = changed.relative_to(plugins_dir).parts
    if not parts or any(is_noise(part) for part in parts):
        return None
    return parts[0] if parts[0].isidentifier() else None


def _source_files(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not is_noise(d)]
        for name in filenames:
            if not is_noise(name):
                path = Path(folder, name)
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def package_digest(path: Path) -> str | None:
    """sha256 over the relative path and content of every source file; None if not a package.

    A file that vanishes or cannot be read while hashing is left out: whatever removed it
    also fired an event, so the package is digested again once it is quiet.
    """
    if not (path / "__init__.py").is_file():
        return None
    digest = hashlib.sha256()
    for relative, file in _source_files(path):
        try:
            data = file.read_bytes()
        except OSError:
            continue
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def file_digest(path: Path) -> str | None:
    """sha256 of one file's bytes; None if it is missing or unreadable."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def classify(package: str, before: str | None, after: str | None) -> PackageChange | None:
    """The change from digest ``before`` to ``after``, or None when there is none."""
    if before == after:
        return None
    kind: Kind = "added" if before is None else "removed" if after is None else "changed"
    return PackageChange(package, kind, after)


@dataclass(slots=True)
class _Pending:
    first: float
    last: float


class Debouncer(Generic[K]):
    """Merges events per key until the key is quiet for ``quiet_s``, or ``max_delay_s`` at most.

    Pure: the caller passes the time from its clock. The cap keeps a file that is rewritten
    without pause (a log, a generator in a loop) from postponing its reload forever.
    """

    def __init__(self, quiet_s: float = 0.5, max_delay_s: float = 5.0) -> None:
        if quiet_s <= 0:
            raise ValueError(f"quiet_s: must be > 0, got {quiet_s}")
        if max_delay_s < quiet_s:
            raise ValueError(f"max_delay_s: must be >= quiet_s ({quiet_s}), got {max_delay_s}")
        self.quiet_s = quiet_s
        self.max_delay_s = max_delay_s
        self._pending: dict[K, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def note(self, key: K, now: float) -> None:
        """Record an event for ``key`` at ``now``."""
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = _Pending(now, now)
        else:
            pending.last = max(pending.last, now)

    def _due_at(self, pending: _Pending) -> float:
        return min(pending.last + self.quiet_s, pending.first + self.max_delay_s)

    def due(self, now: float) -> list[K]:
        """Keys settled by ``now``, in the order they were first noted; they are forgotten."""
        ready = [key for key, pending in self._pending.items() if self._due_at(pending) <= now]
        for key in ready:
            del self._pending[key]
        return ready

    def next_due(self) -> float | None:
        """When the next key settles if nothing else happens; None when nothing is pending."""
        return min((self._due_at(p) for p in self._pending.values()), default=None)


# --- I/O shell ------------------------------------------------------------------------------


class _Forward(FileSystemEventHandler):
    """Runs on watchdog's thread: hands every path of an event to the loop, nothing else."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Path | None]) -> None:
        self._loop = loop
        self._queue = queue

    def on_any_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, event.dest_path):
            if raw:
                try:
                    self._loop.call_soon_threadsafe(self._queue.put_nowait, Path(os.fsdecode(raw)))
                except RuntimeError:  # the loop closed before stop(): nobody is left to tell
                    return


class PluginWatcher:
    """Watches ``plugins_dir`` (and optionally one config file) and yields settled changes.

    One-shot: ``await start()``, iterate ``changes()`` in one task, ``await stop()``; or
    ``async with PluginWatcher(...) as watcher``.
    """

    def __init__(
        self, plugins_dir: Path, *, config_path: Path | None = None, quiet_s: float = 0.5,
        max_delay_s: float = 5.0, join_timeout_s: float = 2.0, clock: Clock | None = None,
    ) -> None:  # fmt: skip
        self.plugins_dir = plugins_dir.absolute()
        self.config_path = config_path.absolute() if config_path is not None else None
        self._debouncer: Debouncer[str | Path] = Debouncer(quiet_s, max_delay_s)
        self._join_timeout_s = join_timeout_s
        self._clock = clock or SystemClock()
        self._digests: dict[str | Path, str] = {}
        self._queue: asyncio.Queue[Path | None] = asyncio.Queue()  # None: a wake-up from stop()
        self._observer: BaseObserver | None = None
        self._stopped = False

    @property
    def digests(self) -> dict[str, str]:
        """The last digest seen per present package."""
        return {k: v for k, v in self._digests.items() if isinstance(k, str)}

    async def __aenter__(self) -> PluginWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start watching, then take the baseline digests (so starting alone yields nothing)."""
        if not self.plugins_dir.is_dir():
            raise WatcherError(f"plugins dir {self.plugins_dir}: not a directory")
        loop = asyncio.get_running_loop()
        observer = Observer()
        handler = _Forward(loop, self._queue)
        for folder, recursive in self._watched_folders():
            observer.schedule(handler, str(folder), recursive=recursive, event_filter=_KEPT_EVENTS)
        try:
            observer.start()
        except OSError as exc:
            raise WatcherError(
                f"plugins dir {self.plugins_dir}: cannot watch ({exc}); if the inotify limit is reached, "
                "raise fs.inotify.max_user_watches"
            ) from exc
        self._observer = observer
        self._digests = await asyncio.to_thread(self._baseline)
        log.info("watcher_started", plugins_dir=str(self.plugins_dir), packages=sorted(self.digests))

    def _watched_folders(self) -> list[tuple[Path, bool]]:
        folders = [(self.plugins_dir, True)]
        config = self.config_path
        if config is not None and not config.parent.is_relative_to(self.plugins_dir):
            if not config.parent.is_dir():
                raise WatcherError(f"config file {config}: its folder does not exist")
            folders.append((config.parent, False))
        return folders

    def _baseline(self) -> dict[str | Path, str]:
        digests: dict[str | Path, str] = {}
        for child in self.plugins_dir.iterdir():
            name = package_of(self.plugins_dir, child)
            if name is not None and (digest := package_digest(child)) is not None:
                digests[name] = digest
        if self.config_path is not None and (digest := file_digest(self.config_path)) is not None:
            digests[self.config_path] = digest
        return digests

    async def stop(self) -> None:
        """Stop the observer (bounded join) and end ``changes()``. Safe to call twice."""
        self._stopped = True
        self._queue.put_nowait(None)
        observer, self._observer = self._observer, None
        if observer is None:
            return
        # stop() closes the inotify descriptor, which the kernel can take a while to release:
        # off the event loop, like the bounded join.
        await asyncio.to_thread(_stop_and_join, observer, self._join_timeout_s)
        if observer.is_alive():
            log.warning("watcher_stop_timeout", timeout_s=self._join_timeout_s)

    async def changes(self) -> AsyncIterator[Change]:
        """Yield each settled change until ``stop()``; iterate from one task only."""
        while not self._stopped:
            path = await self._next_path()
            if self._stopped:
                return
            if path is not None and (key := self._route(path)) is not None:
                self._debouncer.note(key, self._now())
            for key in self._debouncer.due(self._now()):
                if (change := await self._settle(key)) is not None:
                    yield change

    def _now(self) -> float:
        return self._clock.monotonic()

    async def _next_path(self) -> Path | None:
        """The next event path; None when a key came due first or ``stop()`` woke us."""
        due = self._debouncer.next_due()
        # A relative wait: due and now both come from our clock, so the loop's own clock never enters.
        try:
            async with asyncio.timeout(None if due is None else max(0.0, due - self._now())):
                return await self._queue.get()
        except TimeoutError:
            return None

    def _route(self, path: Path) -> str | Path | None:
        if path == self.config_path:
            return self.config_path
        return package_of(self.plugins_dir, path)

    async def _settle(self, key: str | Path) -> Change | None:
        before = self._digests.get(key)
        if isinstance(key, Path):
            after = await asyncio.to_thread(file_digest, key)
            change: Change | None = ConfigChange(key) if after != before else None
        else:
            after = await asyncio.to_thread(package_digest, self.plugins_dir / key)
            change = classify(key, before, after)
        if after is None:
            self._digests.pop(key, None)
        else:
            self._digests[key] = after
        return change


def _stop_and_join(observer: BaseObserver, timeout_s: float) -> None:
    observer.stop()
    observer.join(timeout_s)

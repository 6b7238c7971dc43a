"""Runner processes: spawning one with the minimum it needs, and ending it with one ladder.

A runner starts as ``python -B -s -m runner ...`` in a new session (its own process group) with
a scrubbed environment (no host secrets: only PATH, locale, PYTHONPATH to the folders holding
``runner``, ``protocol``, ``sdk`` and ``engine_proto``, ``PYTHONDONTWRITEBYTECODE=1`` so loading
a plugin never rewrites ``plugins/`` and ``MALLOC_ARENA_MAX=2`` so gRPC's threads fit under the
address-space limit), no inherited descriptors beyond its pipes and its own end of its data lane
(``host.lane``: made here before the spawn, passed by number in ``--lane-fd``, the host's copy
closed right after, so no runner holds another's), and its token on stdin (never in
argv or the environment, where other processes of this user could read it). Its stdout and stderr
are kept as a short tail for the operator. When the process is reaped, ``ProcessExited`` goes on
its session's inbox.

Output is read in chunks, never line by line: a runner can print a line of any length (or none at
all), and the host must keep reading, or the runner blocks on a full pipe and misses its deadlines
with no word of why. ``OutputLines`` cuts a line at ``_LINE_LIMIT`` bytes with a marker, drops the
rest of it up to its newline and counts the cut (``on_truncated``, the strategy's metric).

Ending a runner is ``end_runner``: gRPC Stop -> SIGTERM at grace/2 -> SIGKILL to the process
group; it returns the rung it reached. However a runner ends (that ladder, a crash, a kill from
outside), once it is reaped the host SIGKILLs what is left of its process group and of its cgroup
(``host.supervisor.cgroup``, where the host can make one): nothing it started outlives it. The pid
is safe to use as the group's id just after the reap: a number still naming a group is not
reused, and an emptied one comes back only after the kernel has gone through every pid.

When the host runs as root and ``RunnerLaunch.user`` names a user, the runner switches to it
(``runner.sandbox``, layer ``runner_user``); the link socket is handed to that uid so that it can
still connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import pwd
import re
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog

from host.lane import DataLane, lane_pair
from host.link import Inbound, LinkServer, ProcessExited, Registration
from host.session import RunnerSession
from host.supervisor import cgroup as cgroups

__all__ = [
    "OutputLines", "RunnerLaunch", "RunnerLimits", "RunnerProcess", "Rung", "crash_cause", "end_runner",
    "runner_identity", "spawn_runner",
]  # fmt: skip

log = structlog.get_logger("host.process")
_TAIL_LINES = 50
_LINE_LIMIT = 8192
_CHUNK = 65536
TRUNCATED = b" ...[truncated]"
_CAUSE_LIMIT = 300
# The last line of a Python traceback (``ValueError: ...``, ``SystemExit: 3``) or a fatal error.
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b|Fatal Python error)")


def crash_cause(tail: Sequence[str]) -> str:
    """The runner's last word on why it failed, from its output: the last line of the last traceback
    (in a JSON log record's ``traceback`` or printed plainly), else the last error record's event and
    reason; "" when it said nothing."""
    for line in reversed(tail):
        cause = _cause(line)
        if cause:
            return cause[:_CAUSE_LIMIT]
    return ""


def _cause(line: str) -> str:
    if not line.startswith("{"):
        return line if _EXCEPTION_LINE.match(line) else ""
    try:
        record = json.loads(line)
    except ValueError:
        return ""
    if not isinstance(record, dict) or record.get("level") not in ("error", "critical"):
        return ""
    frames = str(record.get("traceback") or "").strip().splitlines()
    if frames:
        return frames[-1].strip()
    return " ".join(str(record[key]) for key in ("event", "reason") if record.get(key))


class OutputLines:
    """Splits a byte stream into lines of at most ``limit`` bytes; a longer line is cut with a marker.

    A cut line is handed out as soon as it reaches the limit (its newline may never come); the rest
    of it, up to the newline, is dropped. ``truncated`` counts the cuts. Pure.
    """

    def __init__(self, limit: int = _LINE_LIMIT) -> None:
        self.limit = limit
        self.truncated = 0
        self._partial = bytearray()
        self._cut = False  # the current line was cut: drop what is left of it up to its newline

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines ``chunk`` completes (without their newlines)."""
        lines: list[bytes] = []
        for i, piece in enumerate(chunk.split(b"\n")):
            if i:  # a newline ended the line before this piece
                if not self._cut:
                    lines.append(bytes(self._partial))
                self._partial.clear()
                self._cut = False
            if not self._cut:
                self._add(piece, lines)
        return lines

    def close(self) -> list[bytes]:
        """What is left when the stream ends: a last line with no newline."""
        rest = [] if self._cut or not self._partial else [bytes(self._partial)]
        self._partial.clear()
        return rest

    def _add(self, piece: bytes, lines: list[bytes]) -> None:
        room = self.limit - len(self._partial)
        if len(piece) <= room:
            self._partial += piece
            return
        lines.append(bytes(self._partial) + piece[:room] + TRUNCATED)
        self.truncated += 1
        self._partial.clear()
        self._cut = True


class Rung(StrEnum):
    """How far the stop ladder had to go."""

    EXITED = "exited"  # it was already gone
    STOP = "stop"  # it honoured the Stop request
    SIGTERM = "sigterm"
    SIGKILL = "sigkill"


@dataclass(frozen=True)
class RunnerLimits:
    memory_mb: int = 2048
    cpu_seconds: int = 0
    open_files: int = 256
    file_size_mb: int = 64


@dataclass(frozen=True)
class RunnerLaunch:
    """What one runner process runs: a plugin package and the strategy instances to build from it."""

    runner_id: str
    plugin: Path
    strategies: Sequence[dict[str, Any]]  # {"id", "name", "params"}
    limits: RunnerLimits = field(default_factory=RunnerLimits)
    handshake_timeout_s: float = 30.0
    user: tuple[int, int] | None = None  # uid, gid the runner switches to when started as root
    data_lane: bool = False  # give it a data lane for batches (host.lane); else batches ride the stream


def runner_identity(user: str) -> tuple[int, int] | None:
    """``engine.runnerUser`` as uid and gid: a name or a uid known to the system; "" is None."""
    if not user:
        return None
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"no user {user!r} on this machine") from None
    return entry.pw_uid, entry.pw_gid


# Every package a runner process imports from the engine. Located by spec, not imported: the host
# never loads the runner's own code, it only needs the folder it lives in.
_RUNNER_PACKAGES = ("runner", "protocol", "sdk", "engine_proto")


def _code_roots() -> list[str]:
    roots = set()
    for name in _RUNNER_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"engine package {name!r} is not importable: reinstall the engine")
        roots.add(str(Path(spec.origin).resolve().parent.parent))
    return sorted(roots)


def runner_environment() -> dict[str, str]:
    """The whole environment a runner gets: nothing of the host's beyond what it needs to run."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(_code_roots()),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MALLOC_ARENA_MAX": "2",
    }


class RunnerProcess:
    """A spawned runner: its pid, output tail and exit."""

    def __init__(
        self, launch: RunnerLaunch, proc: asyncio.subprocess.Process, inbox: asyncio.Queue[Inbound],
        cgroup: cgroups.RunnerCgroup | None = None, on_truncated: Callable[[int], None] = lambda count: None,
        lane: DataLane | None = None,
    ) -> None:  # fmt: skip
        self.launch = launch
        self.lane = lane
        self.cgroup = cgroup
        self._on_truncated = on_truncated
        self.proc = proc
        self.pid = proc.pid
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._inbox = inbox
        self._pumping = asyncio.ensure_future(self._pump())
        self._tasks = {self._pumping, asyncio.ensure_future(self._reap())}
        self.exited = asyncio.Event()

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def _pump(self) -> None:
        """Read the runner's output until it closes, whatever it writes (see the module docstring)."""
        stream = self.proc.stdout
        assert stream is not None
        lines = OutputLines()
        with contextlib.suppress(ConnectionError):
            while chunk := await stream.read(_CHUNK):
                cuts = lines.truncated
                for line in lines.feed(chunk):
                    self._line(line)
                if lines.truncated > cuts:
                    self._on_truncated(lines.truncated - cuts)
        for line in lines.close():
            self._line(line)

    def _line(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip()
        self.tail.append(text)
        log.debug("runner_output", runner=self.launch.runner_id, pid=self.pid, line=text)

    async def _reap(self) -> None:
        code = await self.proc.wait()
        await self._kill_leftovers()
        self.exited.set()
        self._inbox.put_nowait(ProcessExited(code))

    async def _kill_leftovers(self) -> None:
        """SIGKILL whatever the runner left behind: its process group, then its cgroup."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
            log.warning("runner_group_killed", runner=self.launch.runner_id, pid=self.pid)
        if self.cgroup is not None:
            left = await self.cgroup.kill()
            if left:
                log.warning("runner_cgroup_killed", runner=self.launch.runner_id, pid=self.pid, processes=left)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the runner's whole process group (it leads its own session)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    async def wait(self, timeout_s: float | None = None) -> int | None:
        """The return code, or None if it has not exited within ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.exited.wait()
        return self.proc.returncode

    async def output_read(self, timeout_s: float) -> None:
        """Until the runner's output has been read to its end (its last words are in ``tail``), bounded."""
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._pumping)

    async def aclose(self) -> None:
        """Wait for the pump and reaper (call after the process is gone)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        if self.lane is not None:
            self.lane.close()


def _argv(
    launch: RunnerLaunch, socket_path: Path, cgroup: cgroups.RunnerCgroup | str, lane_fd: int | None = None
) -> list[str]:
    limits = launch.limits
    lane = [] if lane_fd is None else ["--lane-fd", str(lane_fd)]
    user = f"{launch.user[0]}:{launch.user[1]}" if launch.user else ""
    where = ["--cgroup", str(cgroup.path)] if isinstance(cgroup, cgroups.RunnerCgroup) else ["--cgroup-skipped", cgroup]
    # -P: the working directory (the plugins folder) is not put first on sys.path, so a plugin
    # package named runner, sdk, protocol or engine_proto is never the engine's code run before the
    # sandbox (-m would otherwise import it from there). The plugin's folder goes on sys.path when
    # the loader loads it, after the engine's modules are imported and the sandbox holds.
    return [
        sys.executable, "-B", "-s", "-P", "-m", "runner",
        "--socket", str(socket_path),
        "--plugin", str(launch.plugin.resolve()),
        "--strategies", json.dumps(list(launch.strategies)),
        "--host-pid", str(os.getpid()),
        "--memory-mb", str(limits.memory_mb),
        "--cpu-seconds", str(limits.cpu_seconds),
        "--open-files", str(limits.open_files),
        "--file-size-mb", str(limits.file_size_mb),
        "--handshake-timeout", str(launch.handshake_timeout_s),
        "--user", user, *where, *lane,
    ]  # fmt: skip


async def _cgroup(launch: RunnerLaunch) -> cgroups.RunnerCgroup | str:
    """The runner's own cgroup, or why it gets none."""
    try:
        return await cgroups.create(launch.runner_id, launch.limits.memory_mb)
    except (cgroups.CgroupUnavailable, OSError) as err:
        return str(err)


async def spawn_runner(
    launch: RunnerLaunch,
    link: LinkServer,
    inbox: asyncio.Queue[Inbound],
    on_truncated: Callable[[int], None] = lambda count: None,
) -> tuple[RunnerProcess, Registration]:
    """Start a runner process whose connection will be bound to ``launch.runner_id``."""
    registration = link.register(launch.runner_id, inbox)
    if launch.user is not None and os.geteuid() == 0:
        link.admit(launch.user[0])
    cgroup = await _cgroup(launch)
    host_end, runner_end = lane_pair() if launch.data_lane else (None, None)
    passed = () if runner_end is None else (runner_end.fileno(),)
    try:
        proc = await asyncio.create_subprocess_exec(
            *_argv(launch, link.socket_path, cgroup, passed[0] if passed else None),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=runner_environment(),
            cwd=str(launch.plugin.resolve().parent),
            start_new_session=True,
            close_fds=True,
            pass_fds=passed,
        )
    except OSError:
        if host_end is not None:
            host_end.close()
        link.unregister(registration)
        if isinstance(cgroup, cgroups.RunnerCgroup):
            await cgroup.kill()
        raise
    finally:
        if runner_end is not None:
            runner_end.close()  # the runner's own copy is the only one left
    placed = _place(proc.pid, cgroup)
    lane = None if host_end is None else DataLane(launch.runner_id, host_end)
    assert proc.stdin is not None
    proc.stdin.write(registration.token.encode() + b"\n")
    with contextlib.suppress(ConnectionError):
        await proc.stdin.drain()
    proc.stdin.close()
    log.info("runner_spawned", runner=launch.runner_id, pid=proc.pid, plugin=launch.plugin.name)
    return RunnerProcess(launch, proc, inbox, placed, on_truncated, lane), registration


def _place(pid: int, cgroup: cgroups.RunnerCgroup | str) -> cgroups.RunnerCgroup | None:
    """Move the new runner into its cgroup (its Python is still starting: nothing of its own ran yet)."""
    if not isinstance(cgroup, cgroups.RunnerCgroup):
        return None
    try:
        cgroup.add(pid)
    except OSError as err:
        log.warning("runner_cgroup_failed", pid=pid, reason=str(err))
    return cgroup


async def end_runner(process: RunnerProcess, session: RunnerSession | None, grace_s: float) -> Rung:
    """Stop -> SIGTERM at grace/2 -> SIGKILL to the group; return the rung reached."""
    if process.returncode is not None:
        return Rung.EXITED
    half = grace_s / 2
    if session is not None and not session.connection.closed:
        session.request_stop("host request")
        if await process.wait(half) is not None:
            return Rung.STOP
    process.signal_group(signal.SIGTERM)
    if await process.wait(half) is not None:
        return Rung.SIGTERM
    process.signal_group(signal.SIGKILL)
    await process.wait(5.0)
    return Rung.SIGKILL

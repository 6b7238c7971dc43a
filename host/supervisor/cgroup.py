"""A cgroup v2 of its own for each runner, where the host may make one: limits, and one kill for all.

The host (root, with the cgroup2 hierarchy writable) makes ``strategy-engine-<host pid>/`` under
its own cgroup, enables what it can of the memory, pids and cpu controllers for it, and one leaf
per runner beneath. The runner is moved into its leaf right after the spawn, before its Python
has started (so before any code of its own runs). The leaf gets ``memory.max`` (the runner's
memory limit), ``pids.max`` (``PIDS_MAX``: threads count) and ``cpu.max`` (one core) when those
controllers are there; ``RunnerCgroup.limits_missing`` says which are not.

A new host also removes the folders of hosts that are gone (their runners died with them:
parent-death signal), killing anything left in them.

``RunnerCgroup.kill`` ends everything in the leaf at once (``cgroup.kill``, or SIGKILL to each
member on a kernel without it), however it was started (setsid, double fork), and removes the
leaf. Any failure here is reported and never fails the runner: it keeps its rlimits, its
process group and the seccomp filter that refuses new processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PIDS_MAX", "CgroupUnavailable", "RunnerCgroup", "create"]

PIDS_MAX = 128  # tasks (threads included) in one runner's cgroup: gRPC and Python threads fit well under it
_CPU_MAX = "100000 100000"  # at most one core's worth of time per 100 ms period
_CONTROLLERS = ("memory", "pids", "cpu")
_KILL_WAIT_S = 2.0


class CgroupUnavailable(Exception):
    """No cgroup for this runner, with the reason (reported in its sandbox layers)."""


def _cgroup2_mount() -> Path:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    raise CgroupUnavailable("no cgroup2 hierarchy mounted")


def _own_cgroup(mount: Path) -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return mount / line[3:].lstrip("/")
    raise CgroupUnavailable("the host is in no cgroup2 group")


def _enable(parent: Path, wanted: list[str]) -> None:
    """Enable ``wanted`` controllers for parent's children, each alone: one refused leaves the others."""
    for name in wanted:
        with contextlib.suppress(OSError):
            (parent / "cgroup.subtree_control").write_text(f"+{name}")


def _left_behind(own: Path) -> list[Path]:
    """The folders of hosts that are gone, leaves first (a crash skips their removal)."""
    found: list[Path] = []
    for folder in own.glob("strategy-engine-*"):
        pid = folder.name.rpartition("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            found += [child for child in folder.iterdir() if child.is_dir()] + [folder]
    return found


async def _sweep(own: Path) -> None:
    """Kill what is left in the cgroups of hosts that are gone, and remove them."""
    for folder in _left_behind(own):
        await RunnerCgroup(folder).kill()  # removes the folder, and its parent once empty


async def _base() -> Path:
    if os.geteuid() != 0:
        raise CgroupUnavailable(f"host is not root (uid {os.geteuid()})")
    mount = _cgroup2_mount()
    own = _own_cgroup(mount)
    if not os.access(own, os.W_OK):
        raise CgroupUnavailable(f"{own} is not writable")
    available = (own / "cgroup.controllers").read_text().split()
    await _sweep(own)
    base = own / f"strategy-engine-{os.getpid()}"
    base.mkdir(exist_ok=True)
    wanted = [name for name in _CONTROLLERS if name in available]
    _enable(own, wanted)  # refused when the host's own cgroup holds processes and is not the root
    _enable(base, wanted)
    return base


@dataclass
class RunnerCgroup:
    path: Path

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def limits_missing(self) -> list[str]:
        return [name for name in ("memory.max", "pids.max", "cpu.max") if not (self.path / name).exists()]

    def _limit(self, memory_mb: int) -> None:
        values = {"pids.max": str(PIDS_MAX), "cpu.max": _CPU_MAX}
        if memory_mb > 0:
            values["memory.max"] = str(memory_mb * 1024 * 1024)
        for name, value in values.items():
            if (self.path / name).exists():
                (self.path / name).write_text(value)

    def members(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(pid) for pid in (self.path / "cgroup.procs").read_text().split()]
        return []

    async def kill(self) -> int:
        """Kill every process left in the cgroup and remove it (bounded); return how many were there."""
        left = self.members()
        if left:
            try:
                (self.path / "cgroup.kill").write_text("1")
            except OSError:  # kernel before 5.14: one by one (none can fork: see no_processes)
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_KILL_WAIT_S):
                # EBUSY until the killed are gone (their new parents reap them). The kernel's only
                # notice of that is an inotify event on cgroup.events: a bounded poll is simpler.
                while not self._remove():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()  # the host's folder, once its last runner is gone
        return len(left)

    def _remove(self) -> bool:
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


async def create(name: str, memory_mb: int) -> RunnerCgroup:
    """A fresh leaf cgroup for one runner, limits set where the controllers allow; CgroupUnavailable if none."""
    try:
        base = await _base()
        leaf = base / name.replace("/", "_")
        leaf.mkdir()
        cgroup = RunnerCgroup(leaf)
        cgroup._limit(memory_mb)
    except OSError as err:
        raise CgroupUnavailable(f"cannot create a cgroup: {err}") from err
    return cgroup

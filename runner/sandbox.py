"""The layers a runner puts around itself before any strategy code is imported.

Each layer is applied best-effort: the kernel or the container may refuse one, and the runner
reports which held (``SandboxReport.applied``) and why the others did not (``skipped``), in its
Hello to the host. Layers:

- ``pdeathsig``: SIGKILL when the host dies (and exit at once if it already has);
- ``rlimit_as``, ``rlimit_cpu``, ``rlimit_nofile``, ``rlimit_fsize``, ``rlimit_core``: address
  space (gRPC's threads still start: the host sets ``MALLOC_ARENA_MAX=2``), CPU seconds, open
  files, file size, no core dumps;
- ``no_new_privs``: no privilege gain through exec.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
from dataclasses import dataclass, field

__all__ = ["SandboxPolicy", "SandboxReport", "apply"]

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_MB = 1024 * 1024


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits for one runner; 0 means "leave as is" for a limit."""

    host_pid: int
    memory_mb: int = 2048
    cpu_seconds: int = 0
    open_files: int = 256
    file_size_mb: int = 64


@dataclass
class SandboxReport:
    applied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class HostGone(Exception):
    """The host died before the runner could arm its parent-death signal."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _prctl(option: int, arg: int) -> None:
    if _libc().prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _pdeathsig(policy: SandboxPolicy) -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # The host may have died between our fork and the prctl: then we were re-parented already.
    if os.getppid() != policy.host_pid:
        raise HostGone(f"parent is {os.getppid()}, expected host {policy.host_pid}")


def _limit(kind: int, value: int) -> None:
    _, hard = resource.getrlimit(kind)
    soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (soft, soft if hard == resource.RLIM_INFINITY else hard))


def apply(policy: SandboxPolicy) -> SandboxReport:
    """Apply every layer that this kernel allows; raise HostGone if the host is already gone."""
    report = SandboxReport()
    layers = [
        ("pdeathsig", lambda: _pdeathsig(policy)),
        ("rlimit_core", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))),
        ("rlimit_as", lambda: _limit(resource.RLIMIT_AS, policy.memory_mb * _MB) if policy.memory_mb else None),
        ("rlimit_cpu", lambda: _limit(resource.RLIMIT_CPU, policy.cpu_seconds) if policy.cpu_seconds else None),
        ("rlimit_nofile", lambda: _limit(resource.RLIMIT_NOFILE, policy.open_files) if policy.open_files else None),
        ("rlimit_fsize", lambda: _limit(resource.RLIMIT_FSIZE, policy.file_size_mb * _MB) if policy.file_size_mb else None),
        ("no_new_privs", lambda: _prctl(_PR_SET_NO_NEW_PRIVS, 1)),
    ]
    for name, layer in layers:
        try:
            layer()
        except HostGone:
            raise
        except (OSError, ValueError) as err:
            report.skipped[name] = str(err)
        else:
            report.applied.append(name)
    return report

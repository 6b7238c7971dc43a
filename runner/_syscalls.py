"""Raw Linux calls the sandbox layers need: libc through ctypes, the syscall numbers per arch."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
from dataclasses import dataclass

__all__ = ["ARCH_UNSUPPORTED", "Arch", "Skip", "arch", "check", "errno_error", "libc", "prctl", "syscall"]


class Skip(Exception):
    """A layer that does not apply here, with the reason."""


@dataclass(frozen=True)
class Arch:
    audit: int  # AUDIT_ARCH_* as seccomp_data.arch reports it
    socket: int
    socketpair: int
    connect: int
    seccomp: int
    clone: int
    forks: tuple[int, ...]  # fork and vfork, where the arch has them (aarch64 has only clone)
    x32: bool  # x86_64 also accepts x32 syscalls (nr | 0x40000000) under the same arch value


# io_uring_*, landlock_* and clone3 have the same numbers on both (the unified table).
_ARCHES = {
    "x86_64": Arch(
        audit=0xC000003E, socket=41, socketpair=53, connect=42, seccomp=317, clone=56, forks=(57, 58), x32=True
    ),
    "aarch64": Arch(
        audit=0xC00000B7, socket=198, socketpair=199, connect=203, seccomp=277, clone=220, forks=(), x32=False
    ),
}
ARCH_UNSUPPORTED = "no syscall table for {} (x86_64 and aarch64 only)"


def arch() -> Arch:
    found = _ARCHES.get(platform.machine())
    if found is None:
        raise Skip(ARCH_UNSUPPORTED.format(platform.machine()))
    return found


@functools.cache
def libc() -> ctypes.CDLL:
    # find_library may run ldconfig: called first while the runner may still start processes.
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


def errno_error() -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code))


def check(result: int) -> int:
    if result < 0:
        raise errno_error()
    return result


def prctl(option: int, arg: int) -> None:
    check(libc().prctl(option, ctypes.c_ulong(arg), 0, 0, 0))


def syscall(number: int, *args: object) -> int:
    """A raw syscall; integer arguments are passed as C longs (the kernel reads whole registers)."""
    converted = [ctypes.c_long(arg) if isinstance(arg, int) else arg for arg in args]
    return check(int(libc().syscall(ctypes.c_long(number), *converted)))

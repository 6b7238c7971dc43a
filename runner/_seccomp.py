"""The runner's seccomp filters, as classic BPF programs over ``seccomp_data``.

Filters stack: each call adds one, every syscall passes all of them, and the strictest answer
wins. Each is installed with TSYNC, so threads that exist already (gRPC's, once the link is up)
get it too; threads started later inherit it. Every program starts the same way: a foreign arch
is refused (EPERM), then x32 calls on x86_64, then its own rules; anything else is allowed.

- ``network``: ``socket()`` only for AF_UNIX and AF_NETLINK (EACCES for every other family, IP
  included); io_uring refused (ENOSYS: it can open sockets without ``socket()``).
- ``processes``: ``fork``/``vfork`` and ``clone`` without ``CLONE_THREAD`` refused (EPERM), so
  threads still start; ``clone3`` answered ENOSYS, which makes glibc fall back to ``clone``
  (``clone3`` passes its flags in memory, which a filter cannot read).
- ``sockets``: ``socket``, ``socketpair`` and ``connect`` refused (EPERM) for every family: put in
  place once the runner's link is connected, it leaves the sockets it has and refuses new ones.
"""

from __future__ import annotations

import ctypes
import errno
import socket

from runner._syscalls import Arch, syscall

__all__ = ["install", "network_filter", "process_filter", "socket_filter"]

_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGE_K, _BPF_JSET_K, _BPF_RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC = 1, 1
_X32_SYSCALL_BIT = 0x40000000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in seccomp_data (args[0]'s low word: little-endian only)
_IO_URING = (425, 426, 427)
_CLONE3 = 435
_CLONE_THREAD = 0x00010000
_ALLOWED_FAMILIES = (socket.AF_UNIX, socket.AF_NETLINK)
Insn = tuple[int, int, int, int]  # code, jt, jf, k


class _SockFilter(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


def _ret(value: int) -> Insn:
    return (_BPF_RET_K, 0, 0, value)


def _error(code: int) -> int:
    return _SECCOMP_RET_ERRNO | code


def _if_equal_return(k: int, value: int) -> list[Insn]:
    return [(_BPF_JEQ_K, 0, 1, k), _ret(value)]


def _prologue(arch: Arch) -> list[Insn]:
    """Refuse a foreign arch (and x32); leave the syscall number in the accumulator."""
    program: list[Insn] = [(_BPF_LD_W_ABS, 0, 0, _ARCH), (_BPF_JEQ_K, 1, 0, arch.audit)]
    program += [_ret(_error(errno.EPERM)), (_BPF_LD_W_ABS, 0, 0, _NR)]
    if arch.x32:
        program += [(_BPF_JGE_K, 0, 1, _X32_SYSCALL_BIT), _ret(_error(errno.EPERM))]
    return program


def network_filter(arch: Arch) -> list[Insn]:
    program = _prologue(arch)
    for number in _IO_URING:
        program += _if_equal_return(number, _error(errno.ENOSYS))
    program += [(_BPF_JEQ_K, 1, 0, arch.socket), _ret(_SECCOMP_RET_ALLOW), (_BPF_LD_W_ABS, 0, 0, _ARG0)]
    for family in _ALLOWED_FAMILIES:
        program += _if_equal_return(family, _SECCOMP_RET_ALLOW)
    return [*program, _ret(_error(errno.EACCES))]


def process_filter(arch: Arch) -> list[Insn]:
    program = _prologue(arch)
    for number in arch.forks:
        program += _if_equal_return(number, _error(errno.EPERM))
    program += _if_equal_return(_CLONE3, _error(errno.ENOSYS))
    # clone: a thread (CLONE_THREAD in flags, args[0]) passes, anything else is a new process.
    program += [(_BPF_JEQ_K, 0, 3, arch.clone), (_BPF_LD_W_ABS, 0, 0, _ARG0)]
    program += [(_BPF_JSET_K, 1, 0, _CLONE_THREAD), _ret(_error(errno.EPERM))]
    return [*program, _ret(_SECCOMP_RET_ALLOW)]


def socket_filter(arch: Arch) -> list[Insn]:
    program = _prologue(arch)
    for number in (arch.socket, arch.socketpair, arch.connect):
        program += _if_equal_return(number, _error(errno.EPERM))
    return [*program, _ret(_SECCOMP_RET_ALLOW)]


def install(arch: Arch, program: list[Insn]) -> None:
    """Add ``program`` to this process's filters, for every thread (TSYNC)."""
    filters = (_SockFilter * len(program))(*(_SockFilter(*insn) for insn in program))
    fprog = _SockFprog(len(program), filters)
    syscall(arch.seccomp, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(fprog))

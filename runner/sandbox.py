"""The layers a runner puts around itself before any strategy code is imported.

Each layer is applied best-effort: the kernel or the container may refuse one, and the runner
reports which held (``SandboxReport.applied``) and why the others did not (``skipped``), in its
Hello to the host (``SandboxReport.wire``: a layer's name when it held, ``"name: reason"`` when
it did not). Layers, in the order they are applied:

- ``pdeathsig``: SIGKILL when the host dies (and exit at once if it already has);
- ``rlimit_core``, ``rlimit_as``, ``rlimit_cpu``, ``rlimit_nofile``, ``rlimit_fsize``: no core
  dumps, address space (gRPC's threads still start: the host sets ``MALLOC_ARENA_MAX=2``), CPU
  seconds (SIGXCPU at the limit, SIGKILL one second later if that is caught), open files, file
  size; a limit configured as 0 is skipped as "not configured";
- ``user_namespace``: a new user namespace mapping only the runner's own uid and gid. The runner
  keeps its uid for file access (the host's socket stays reachable) but holds no capability
  over anything outside it: even when the host runs as root, the runner cannot ptrace it or
  read its ``/proc/<pid>/environ`` once the host has made itself undumpable;
- ``net_namespace``: a new network namespace with no interfaces up, so no IP route anywhere.
  Path-based Unix sockets are not bound to a network namespace: the host's socket still works;
- ``no_caps``: every capability dropped (bounding, ambient, effective, permitted, inheritable);
- ``undumpable``: no core dumps and no ``/proc/<pid>/mem`` or environ access for sibling
  runners of the same uid;
- ``no_new_privs``: no privilege gain through exec (and the precondition of the next two);
- ``landlock`` (filesystem): no writes anywhere but ``/dev/null`` (reads and exec stay open);
  Landlock also forbids ptrace of any process outside the runner's domain. ``landlock_net``
  (ABI 4): no TCP bind or connect. ``landlock_scope`` (ABI 6): no signals to processes outside
  the domain (the host, other runners) and no abstract Unix sockets outside it;
- ``no_network``: a seccomp filter: ``socket()`` only for AF_UNIX and AF_NETLINK (EACCES for
  every other family, IP included), io_uring refused (ENOSYS; it can open sockets without
  ``socket()``), x32 and foreign-arch syscalls refused.

The runner must be single-threaded when this runs: a user namespace cannot be entered by a
threaded process, and gRPC starts its threads only when the channel is created, after this.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import platform
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LAYERS", "HostGone", "SandboxPolicy", "SandboxReport", "apply"]

LAYERS = (
    "pdeathsig",
    "rlimit_core", "rlimit_as", "rlimit_cpu", "rlimit_nofile", "rlimit_fsize",
    "user_namespace", "net_namespace", "no_caps", "undumpable", "no_new_privs",
    "landlock", "landlock_net", "landlock_scope", "no_network",
)  # fmt: skip

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
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

    def wire(self) -> list[str]:
        """The report as Hello.sandbox carries it: ``name`` if applied, ``"name: reason"`` if not."""
        return [*self.applied, *(f"{name}: {reason}" for name, reason in self.skipped.items())]


class HostGone(Exception):
    """The host died before the runner could arm its parent-death signal."""


class _Skip(Exception):
    """A layer that does not apply here, with the reason."""


@dataclass(frozen=True)
class _Arch:
    audit: int  # AUDIT_ARCH_* as seccomp_data.arch reports it
    socket: int
    seccomp: int
    x32: bool  # x86_64 also accepts x32 syscalls (nr | 0x40000000) under the same arch value


# io_uring_setup/enter/register and landlock_* have the same numbers on both (the unified table).
_ARCHES = {
    "x86_64": _Arch(audit=0xC000003E, socket=41, seccomp=317, x32=True),
    "aarch64": _Arch(audit=0xC00000B7, socket=198, seccomp=277, x32=False),
}
_IO_URING = (425, 426, 427)
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _errno_error() -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code))


def _check(result: int) -> int:
    if result < 0:
        raise _errno_error()
    return result


def _prctl(option: int, arg: int) -> None:
    _check(_libc().prctl(option, ctypes.c_ulong(arg), 0, 0, 0))


def _syscall(number: int, *args: object) -> int:
    """A raw syscall; integer arguments are passed as C longs (the kernel reads whole registers)."""
    converted = [ctypes.c_long(arg) if isinstance(arg, int) else arg for arg in args]
    return _check(int(_libc().syscall(ctypes.c_long(number), *converted)))


def _arch() -> _Arch:
    arch = _ARCHES.get(platform.machine())
    if arch is None:
        raise _Skip(f"no syscall table for {platform.machine()} (x86_64 and aarch64 only)")
    return arch


# --- parent death, limits ------------------------------------------------------------------------


def _pdeathsig(policy: SandboxPolicy) -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # The host may have died between our fork and the prctl: then we were re-parented already.
    if os.getppid() != policy.host_pid:
        raise HostGone(f"parent is {os.getppid()}, expected host {policy.host_pid}")


def _limit(kind: int, value: int, grace: int = 0) -> None:
    """Soft limit ``value``; hard limit ``grace`` above it (never above the inherited hard limit)."""
    if value <= 0:
        raise _Skip("not configured")
    _, hard = resource.getrlimit(kind)
    ceiling = value + grace if hard == resource.RLIM_INFINITY else min(value + grace, hard)
    resource.setrlimit(kind, (min(value, ceiling), ceiling))


# --- namespaces, capabilities ------------------------------------------------------------------


def _write_proc(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())  # one write(2): these files take a whole map per write
    finally:
        os.close(fd)


def _user_namespace() -> None:
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc().unshare(_CLONE_NEWUSER))
    # Map our own ids to themselves so uid-based checks read the same inside; an unmapped uid
    # would show as 65534 but change nothing else, so a refused map is not a failed layer.
    try:
        _write_proc("/proc/self/setgroups", "deny")
        _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
        _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError:
        pass


def _net_namespace() -> None:
    _check(_libc().unshare(_CLONE_NEWNET))


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32))


def _drop_caps() -> None:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        try:
            _prctl(_PR_CAPBSET_DROP, cap)
        except OSError as err:
            # Without CAP_SETPCAP the bounding set cannot shrink; no_new_privs covers exec then.
            if err.errno != errno.EPERM:
                raise
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()  # all zero: dropping every capability is always permitted
    _check(_libc().capset(ctypes.byref(header), data))


# --- Landlock ------------------------------------------------------------------------------------

_FS_WRITE_FILE, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 1, 1 << 14, 1 << 15
# remove dir/file, make char/dir/reg/sock/fifo/block/sym: every right that changes the tree.
_FS_CHANGE_TREE = sum(1 << bit for bit in range(4, 13))
_FS_REFER = 1 << 13
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_RULE_PATH_BENEATH = 1
_CREATE_RULESET_VERSION = 1 << 0
_WRITABLE = ("/dev/null",)


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _landlock_abi() -> int:
    _arch()  # the landlock_* syscall numbers used here are checked for these arches only
    try:
        return _syscall(_LANDLOCK_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError as err:
        raise _Skip(f"kernel has no Landlock ({err.strerror})") from err


def _landlock_ruleset(abi: int) -> _RulesetAttr:
    """Handle only the rights that write: reads and exec stay unrestricted, so Python keeps working."""
    fs = _FS_WRITE_FILE | _FS_CHANGE_TREE
    fs |= (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0) | (_FS_IOCTL_DEV if abi >= 5 else 0)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    return _RulesetAttr(fs, net, scoped)


def _landlock(abi: int) -> None:
    attr = _landlock_ruleset(abi)
    ruleset = _syscall(_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    try:
        file_rights = attr.handled_access_fs & (_FS_WRITE_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV)
        for path in _WRITABLE:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(file_rights, fd)
                _syscall(_LANDLOCK_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
            finally:
                os.close(fd)
        _syscall(_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)


# --- seccomp -----------------------------------------------------------------------------------

_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGE_K, _BPF_RET_K = 0x20, 0x15, 0x35, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC = 1, 1
_X32_SYSCALL_BIT = 0x40000000
_ALLOWED_FAMILIES = (socket.AF_UNIX, socket.AF_NETLINK)
_Insn = tuple[int, int, int, int]  # code, jt, jf, k


class _SockFilter(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


def _ret(value: int) -> _Insn:
    return (_BPF_RET_K, 0, 0, value)


def _if_equal_return(k: int, value: int) -> list[_Insn]:
    return [(_BPF_JEQ_K, 0, 1, k), _ret(value)]


def _network_filter(arch: _Arch) -> list[_Insn]:
    """The BPF program over seccomp_data (nr at 0, arch at 4, args[0]'s low word at 16)."""
    program: list[_Insn] = [(_BPF_LD_W_ABS, 0, 0, 4), (_BPF_JEQ_K, 1, 0, arch.audit)]
    program += [_ret(_SECCOMP_RET_ERRNO | errno.EPERM), (_BPF_LD_W_ABS, 0, 0, 0)]
    if arch.x32:
        program += [(_BPF_JGE_K, 0, 1, _X32_SYSCALL_BIT), _ret(_SECCOMP_RET_ERRNO | errno.EPERM)]
    for number in _IO_URING:
        program += _if_equal_return(number, _SECCOMP_RET_ERRNO | errno.ENOSYS)
    program += [(_BPF_JEQ_K, 1, 0, arch.socket), _ret(_SECCOMP_RET_ALLOW), (_BPF_LD_W_ABS, 0, 0, 16)]
    for family in _ALLOWED_FAMILIES:
        program += _if_equal_return(family, _SECCOMP_RET_ALLOW)
    return [*program, _ret(_SECCOMP_RET_ERRNO | errno.EACCES)]


def _no_network() -> None:
    arch = _arch()
    program = _network_filter(arch)
    filters = (_SockFilter * len(program))(*(_SockFilter(*insn) for insn in program))
    fprog = _SockFprog(len(program), filters)
    # TSYNC: should any thread exist already, it gets the filter too (prctl would cover only this one).
    _syscall(arch.seccomp, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(fprog))


# --- putting it together -------------------------------------------------------------------------


def _layers(policy: SandboxPolicy) -> list[tuple[str, Callable[[], object]]]:
    landlock_abi: list[int] = []  # set once the base layer holds; the parts below only report

    def landlock() -> None:
        abi = _landlock_abi()
        _landlock(abi)
        landlock_abi.append(abi)

    def landlock_part(needs: int, what: str) -> None:
        if not landlock_abi:
            raise _Skip("landlock not applied")
        if landlock_abi[0] < needs:
            raise _Skip(f"Landlock ABI {landlock_abi[0]} has no {what} (needs ABI {needs})")

    return [
        ("pdeathsig", lambda: _pdeathsig(policy)),
        ("rlimit_core", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))),
        ("rlimit_as", lambda: _limit(resource.RLIMIT_AS, policy.memory_mb * _MB)),
        # SIGXCPU at the soft limit names the cause in the exit status; SIGKILL a second later.
        ("rlimit_cpu", lambda: _limit(resource.RLIMIT_CPU, policy.cpu_seconds, grace=1)),
        ("rlimit_nofile", lambda: _limit(resource.RLIMIT_NOFILE, policy.open_files)),
        ("rlimit_fsize", lambda: _limit(resource.RLIMIT_FSIZE, policy.file_size_mb * _MB)),
        ("user_namespace", _user_namespace),
        ("net_namespace", _net_namespace),
        ("no_caps", _drop_caps),
        ("undumpable", lambda: _prctl(_PR_SET_DUMPABLE, 0)),
        ("no_new_privs", lambda: _prctl(_PR_SET_NO_NEW_PRIVS, 1)),
        ("landlock", landlock),
        ("landlock_net", lambda: landlock_part(4, "network rules")),
        ("landlock_scope", lambda: landlock_part(6, "signal and abstract-socket scopes")),
        ("no_network", _no_network),
    ]


def apply(policy: SandboxPolicy) -> SandboxReport:
    """Apply every layer that this kernel allows; raise HostGone if the host is already gone."""
    report = SandboxReport()
    for name, layer in _layers(policy):
        try:
            layer()
        except HostGone:
            raise
        except _Skip as skip:
            report.skipped[name] = str(skip)
        except (OSError, ValueError) as err:
            report.skipped[name] = str(err)
        else:
            report.applied.append(name)
    return report

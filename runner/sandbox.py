"""The layers a runner puts around itself before any strategy code is imported.

Each layer is applied best-effort: the kernel or the container may refuse one, and the runner
reports which held (``SandboxReport.applied``) and why the others did not (``skipped``), in its
Hello to the host (``SandboxReport.wire``: a layer's name when it held, ``"name: reason"`` when
it did not). ``apply`` runs before the link to the host is connected, ``seal`` right after it
is (before the plugin is imported). Layers, in the order they are applied:

- ``runner_user``: when the runner starts as root and the host names a user (``engine.runnerUser``),
  drop every group and switch to that uid/gid, so file permissions apply to it. Skipped, with the
  path, when that user could not read what the runner needs (the Python installation, the plugin
  folder) or connect to the link socket: the runner then keeps root, held by the layers below;
- ``pdeathsig``: SIGKILL when the host dies (and exit at once if it already has); armed after
  ``runner_user`` because a change of uid clears it;
- ``rlimit_core``, ``rlimit_as``, ``rlimit_cpu``, ``rlimit_nofile``, ``rlimit_fsize``: no core
  dumps, address space (gRPC's threads still start: the host sets ``MALLOC_ARENA_MAX=2``), CPU
  seconds (SIGXCPU at the limit, SIGKILL one second later if that is caught), open files, file
  size; a limit configured as 0 is skipped as "not configured";
- ``cgroup``: the host put this runner in a cgroup of its own, which it kills whole
  (``cgroup.kill``) when the runner ends; ``cgroup_limits``: that cgroup has ``memory.max``,
  ``pids.max`` and ``cpu.max`` set. Both are the host's doing; the runner checks and reports them;
- ``user_namespace``: a new user namespace mapping only the runner's own uid and gid (after
  ``runner_user``, the unprivileged one). The runner keeps its uid for file access but holds no
  capability over anything outside it: even when the host runs as root, the runner cannot ptrace
  it or read its ``/proc/<pid>/environ`` once the host has made itself undumpable;
- ``net_namespace``: a new network namespace with no interfaces up, so no IP route anywhere.
  Path-based Unix sockets are not bound to a network namespace: the host's socket still works;
- ``no_caps``: every capability dropped (bounding, ambient, effective, permitted, inheritable);
- ``undumpable``: no core dumps and no ``/proc/<pid>/mem`` or environ access for sibling
  runners of the same uid;
- ``no_new_privs``: no privilege gain through exec (and the precondition of the next ones);
- ``landlock`` (filesystem, ``runner._landlock``): no writes anywhere but ``/dev/null``; Landlock
  also forbids ptrace of any process outside the runner's domain. ``landlock_read``: reads only
  of the Python installation, system libraries, the engine's packages, the plugin folder and the
  runner's own ``/proc/<pid>``; no exec outside the installation and libraries.
  ``landlock_net`` (ABI 4): no TCP bind or connect. ``landlock_scope`` (ABI 6): no signals to
  processes outside the domain (the host, other runners), no abstract Unix sockets outside it;
- ``no_network`` (seccomp, ``runner._seccomp``): ``socket()`` only for AF_UNIX and AF_NETLINK,
  io_uring refused, x32 and foreign-arch syscalls refused;
- ``no_processes`` (seccomp): no ``fork``, ``vfork`` or ``clone`` of a process; threads start;
- ``no_new_sockets`` (seccomp, in ``seal``): no ``socket``, ``socketpair`` or ``connect`` at all.
  The link's connection stays; should gRPC lose it, it cannot reconnect and the runner ends
  (the host sees the stream close and restarts it).

The runner must be single-threaded when ``apply`` runs: a user namespace cannot be entered by a
threaded process, and gRPC starts its threads only when the channel is created, after this.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runner import _landlock, _seccomp
from runner._syscalls import Skip, arch, check, libc, prctl

__all__ = ["LAYERS", "HostGone", "SandboxPolicy", "SandboxReport", "apply", "seal"]

LAYERS = (
    "runner_user", "pdeathsig",
    "rlimit_core", "rlimit_as", "rlimit_cpu", "rlimit_nofile", "rlimit_fsize", "cgroup", "cgroup_limits",
    "user_namespace", "net_namespace", "no_caps", "undumpable", "no_new_privs",
    "landlock", "landlock_read", "landlock_net", "landlock_scope", "no_network", "no_processes",
    "no_new_sockets",
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
_CGROUP_LIMITS = ("memory.max", "pids.max", "cpu.max")


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits for one runner; 0 means "leave as is" for a limit."""

    host_pid: int
    memory_mb: int = 2048
    cpu_seconds: int = 0
    open_files: int = 256
    file_size_mb: int = 64
    plugin: Path | None = None  # the plugin folder: readable (None: nothing beyond the installation)
    socket: Path | None = None  # the link socket the runner must still reach after ``runner_user``
    user: tuple[int, int] | None = None  # uid, gid to switch to when started as root
    cgroup: str = ""  # the cgroup folder (under the cgroup2 mount) the host put the runner in
    cgroup_skipped: str = "not configured"  # why the host did not, when ``cgroup`` is empty


@dataclass
class SandboxReport:
    applied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def wire(self) -> list[str]:
        """The report as Hello.sandbox carries it: ``name`` if applied, ``"name: reason"`` if not."""
        return [*self.applied, *(f"{name}: {reason}" for name, reason in self.skipped.items())]


class HostGone(Exception):
    """The host died before the runner could arm its parent-death signal."""


# --- identity, parent death, limits -------------------------------------------------------------


def _may(path: Path, uid: int, gid: int, bits: int) -> str | None:
    """Why ``uid``/``gid`` (no other groups) could not reach ``path`` with ``bits`` (r=4, w=2), or None."""
    try:
        steps = [(parent, 1) for parent in reversed(path.parents)] + [(path, bits)]
        for step, need in steps:
            st = os.stat(step)
            shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
            if (st.st_mode >> shift) & need != need:
                return f"uid {uid} cannot reach {path}: {step} is {stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}"
    except OSError as err:
        return f"cannot check {path}: {err.strerror}"
    return None


def _runner_user(policy: SandboxPolicy) -> None:
    if policy.user is None:
        raise Skip("not configured")
    if os.geteuid() != 0:
        raise Skip(f"not started as root (uid {os.geteuid()})")
    uid, gid = policy.user
    needs = [(Path(os.__file__).parent, 5)]  # the standard library, a folder: read and list
    needs += [(policy.plugin.resolve(), 5)] if policy.plugin else []
    needs += [(policy.socket, 2)] if policy.socket else []
    for path, bits in needs:
        if (why := _may(path, uid, gid, bits)) is not None:
            raise Skip(why)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _pdeathsig(policy: SandboxPolicy) -> None:
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # The host may have died between our fork and the prctl: then we were re-parented already.
    if os.getppid() != policy.host_pid:
        raise HostGone(f"parent is {os.getppid()}, expected host {policy.host_pid}")


def _limit(kind: int, value: int, grace: int = 0) -> None:
    """Soft limit ``value``; hard limit ``grace`` above it (never above the inherited hard limit)."""
    if value <= 0:
        raise Skip("not configured")
    _, hard = resource.getrlimit(kind)
    ceiling = value + grace if hard == resource.RLIM_INFINITY else min(value + grace, hard)
    resource.setrlimit(kind, (min(value, ceiling), ceiling))


def _cgroup(policy: SandboxPolicy) -> None:
    if not policy.cgroup:
        raise Skip(policy.cgroup_skipped)
    members = (Path(policy.cgroup) / "cgroup.procs").read_text().split()
    if str(os.getpid()) not in members:
        raise Skip(f"runner is not in {policy.cgroup}")


def _cgroup_limits(policy: SandboxPolicy) -> None:
    if not policy.cgroup:
        raise Skip("no cgroup")
    missing = [name for name in _CGROUP_LIMITS if not (Path(policy.cgroup) / name).exists()]
    if missing:
        raise Skip(f"cgroup has no {', '.join(missing)}: controller not available to cgroup v2 here")


# --- namespaces, capabilities ------------------------------------------------------------------


def _write_proc(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())  # one write(2): these files take a whole map per write
    finally:
        os.close(fd)


def _user_namespace() -> None:
    uid, gid = os.geteuid(), os.getegid()
    check(libc().unshare(_CLONE_NEWUSER))
    # Map our own ids to themselves so uid-based checks read the same inside; an unmapped uid
    # would show as 65534 but change nothing else, so a refused map is not a failed layer.
    try:
        _write_proc("/proc/self/setgroups", "deny")
        _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
        _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError:
        pass


def _net_namespace() -> None:
    check(libc().unshare(_CLONE_NEWNET))


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32))


def _drop_caps() -> None:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        try:
            prctl(_PR_CAPBSET_DROP, cap)
        except OSError as err:
            # Without CAP_SETPCAP the bounding set cannot shrink; no_new_privs covers exec then.
            if err.errno != errno.EPERM:
                raise
    prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()  # all zero: dropping every capability is always permitted
    check(libc().capset(ctypes.byref(header), data))


# --- putting it together -------------------------------------------------------------------------


def _layers(policy: SandboxPolicy) -> list[tuple[str, Callable[[], object]]]:
    landlock_abi: list[int] = []  # set once the base layer holds; the parts below only report

    def landlock() -> None:
        abi = _landlock.abi()
        rules = _landlock.readable(policy.plugin) if policy.plugin else {"/dev/null": _landlock.READ}
        _landlock.restrict(abi, rules)
        landlock_abi.append(abi)

    def landlock_part(needs: int, what: str) -> None:
        if not landlock_abi:
            raise Skip("landlock not applied")
        if landlock_abi[0] < needs:
            raise Skip(f"Landlock ABI {landlock_abi[0]} has no {what} (needs ABI {needs})")

    return [
        ("runner_user", lambda: _runner_user(policy)),
        ("pdeathsig", lambda: _pdeathsig(policy)),
        ("rlimit_core", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))),
        ("rlimit_as", lambda: _limit(resource.RLIMIT_AS, policy.memory_mb * _MB)),
        # SIGXCPU at the soft limit names the cause in the exit status; SIGKILL a second later.
        ("rlimit_cpu", lambda: _limit(resource.RLIMIT_CPU, policy.cpu_seconds, grace=1)),
        ("rlimit_nofile", lambda: _limit(resource.RLIMIT_NOFILE, policy.open_files)),
        ("rlimit_fsize", lambda: _limit(resource.RLIMIT_FSIZE, policy.file_size_mb * _MB)),
        ("cgroup", lambda: _cgroup(policy)),
        ("cgroup_limits", lambda: _cgroup_limits(policy)),
        ("user_namespace", _user_namespace),
        ("net_namespace", _net_namespace),
        ("no_caps", _drop_caps),
        ("undumpable", lambda: prctl(_PR_SET_DUMPABLE, 0)),
        ("no_new_privs", lambda: prctl(_PR_SET_NO_NEW_PRIVS, 1)),
        ("landlock", landlock),
        ("landlock_read", lambda: landlock_part(1, "read rules") if policy.plugin else _skip("no plugin folder")),
        ("landlock_net", lambda: landlock_part(4, "network rules")),
        ("landlock_scope", lambda: landlock_part(6, "signal and abstract-socket scopes")),
        ("no_network", lambda: _seccomp.install(arch(), _seccomp.network_filter(arch()))),
        ("no_processes", lambda: _seccomp.install(arch(), _seccomp.process_filter(arch()))),
    ]


def _skip(reason: str) -> None:
    raise Skip(reason)


def _run(report: SandboxReport, name: str, layer: Callable[[], object]) -> None:
    try:
        layer()
    except HostGone:
        raise
    except Skip as skip:
        report.skipped[name] = str(skip)
    except (OSError, ValueError) as err:
        report.skipped[name] = str(err)
    else:
        report.applied.append(name)


def apply(policy: SandboxPolicy) -> SandboxReport:
    """Apply every layer up to the link that this kernel allows; raise HostGone if the host is gone."""
    report = SandboxReport()
    for name, layer in _layers(policy):
        _run(report, name, layer)
    return report


def seal(report: SandboxReport) -> None:
    """Refuse every new socket from now on (the link is connected); record it in ``report``."""
    _run(report, "no_new_sockets", lambda: _seccomp.install(arch(), _seccomp.socket_filter(arch())))

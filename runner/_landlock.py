"""The runner's Landlock ruleset: what it may read, where it may write, what it may reach.

Landlock is path-based: a rule names a file or a directory (and everything beneath it) by an open
descriptor, and the ruleset handles a set of rights; a handled right is refused everywhere no
rule grants it. The runner handles reading, executing and every write right, so it may:

- read (and execute) the Python installation (``sys.prefix`` and friends), the shared libraries
  and loader cache a C extension may need (``/usr/lib``, ``/lib``, ...), the time zone data;
- read the engine packages it already imported (``runner``, ``protocol``, ``sdk``,
  ``engine_proto``), and list (not read) the folders on ``sys.path`` outside the installation:
  a repository checkout holds the engine's config files beside those packages;
- read its plugin folder;
- read its own ``/proc/<pid>`` (``/proc/self`` resolved when the rule is made: no other
  process's), ``/dev/urandom`` and ``/dev/random``; read and write ``/dev/null``;

and nothing else: not ``/etc/shadow``, not the host's ``/proc/<pid>/cmdline``, not the config file
it names. ABI 4 adds TCP bind/connect (none allowed), ABI 6 signal and abstract-socket scopes.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from runner._syscalls import Skip, arch, syscall

__all__ = ["abi", "readable", "restrict"]

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_TRUNCATE, _IOCTL_DEV = 1 << 14, 1 << 15
# remove dir/file, make char/dir/reg/sock/fifo/block/sym: every right that changes the tree.
_CHANGE_TREE = sum(1 << bit for bit in range(4, 13))
_REFER = 1 << 13
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV  # the ones a file rule may carry
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_RULE_PATH_BENEATH = 1
_CREATE_RULESET_VERSION = 1 << 0
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446

READ = _READ_FILE | _READ_DIR
READ_EXEC = READ | _EXECUTE
_SYSTEM = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache")
_SYSTEM_READ = ("/etc/localtime", "/usr/share/zoneinfo", "/dev/urandom", "/dev/random", "/proc/self")
_ENGINE_PACKAGES = ("runner", "protocol", "sdk", "engine_proto")


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def abi() -> int:
    arch()  # the landlock_* syscall numbers used here are checked for these arches only
    try:
        return syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError as err:
        raise Skip(f"kernel has no Landlock ({err.strerror})") from err


def _ruleset(version: int) -> _RulesetAttr:
    fs = READ_EXEC | _WRITE_FILE | _CHANGE_TREE
    fs |= (_REFER if version >= 2 else 0) | (_TRUNCATE if version >= 3 else 0) | (_IOCTL_DEV if version >= 5 else 0)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if version >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if version >= 6 else 0
    return _RulesetAttr(fs, net, scoped)


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def readable(plugin: Path) -> dict[str, int]:
    """Every path the runner may read, with the rights it gets there."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    rights: dict[str, int] = {str(p): READ_EXEC for p in prefixes}
    rights.update({path: READ_EXEC for path in _SYSTEM})
    rights.update({path: READ for path in _SYSTEM_READ})
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if _under(path, prefixes):
            continue
        rights.setdefault(str(path), _READ_DIR)  # a checkout: its names, not its files
        for package in _ENGINE_PACKAGES:
            if (path / package).is_dir():
                rights[str(path / package)] = READ
    rights[str(plugin.resolve())] = READ
    rights["/dev/null"] = READ | _WRITE_FILE | _TRUNCATE | _IOCTL_DEV
    return rights


def _add_rule(ruleset: int, path: str, allowed: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # not on this machine: nothing to allow
    try:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            allowed &= _FILE_RIGHTS
        rule = _PathBeneathAttr(allowed, fd)
        syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
    finally:
        os.close(fd)


def restrict(version: int, rules: Mapping[str, int]) -> None:
    """Enter a Landlock domain allowing only ``rules`` (path -> rights) of the handled rights."""
    attr = _ruleset(version)
    ruleset = syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    try:
        for path, allowed in rules.items():
            _add_rule(ruleset, path, allowed & attr.handled_access_fs)
        syscall(_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)

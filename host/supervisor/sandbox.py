"""The host's side of the runner sandbox: its own undumpability, and which layers each runner holds.

A runner applies its layers to itself before any strategy code is imported (``runner.sandbox``)
and reports them in its Hello: ``Hello.sandbox`` lists a layer's name when it held and
``"name: reason"`` when it did not. ``SandboxLayers.parse`` reads that list back into the record
the status API shows per runner.

The host's part is ``make_host_undumpable``, called once at start before any runner is spawned:
with ``PR_SET_DUMPABLE`` cleared, a process of the same uid (a runner) can neither ptrace the
host nor read its ``/proc/<pid>/environ`` or memory, where the host's credentials live. The
kernel then makes the host's ``/proc/<pid>`` entries root-owned; the host's own access to them
(``/proc/self/fd`` when spawning with ``close_fds``, ``/proc/self/stat`` for metrics) is still
allowed because the kernel always lets a process read its own entries. A process holding
CAP_SYS_PTRACE (root, unless the runner gives it up: see ``user_namespace`` and ``no_caps`` in
``runner.sandbox``) is not stopped by this.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import structlog

__all__ = ["SandboxLayers", "make_host_undumpable"]

log = structlog.get_logger("host.sandbox")

_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_SKIP_SEPARATOR = ": "


def make_host_undumpable() -> bool:
    """Clear this process's dumpable flag; True if it is now clear."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        log.warning("host_undumpable_failed", reason=os.strerror(code))
        return False
    held = bool(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
    log.info("host_undumpable", held=held)
    return held


@dataclass(frozen=True, slots=True)
class SandboxLayers:
    """Which sandbox layers one runner holds, and why the others did not apply."""

    applied: tuple[str, ...] = ()
    skipped: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, entries: Iterable[str]) -> SandboxLayers:
        """Read ``Hello.sandbox``: ``"name"`` is applied, ``"name: reason"`` is skipped for that reason."""
        applied: list[str] = []
        skipped: dict[str, str] = {}
        for entry in entries:
            name, separator, reason = entry.partition(_SKIP_SEPARATOR)
            if separator:
                skipped[name] = reason
            elif name:
                applied.append(name)
        return cls(tuple(applied), MappingProxyType(skipped))

    def holds(self, layer: str) -> bool:
        return layer in self.applied

    def to_status(self) -> dict[str, Any]:
        """The record as the status API shows it."""
        return {"applied": list(self.applied), "skipped": dict(self.skipped)}

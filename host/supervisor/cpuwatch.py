"""Reading a runner's CPU time from ``/proc``: the I/O half of the per-strategy CPU budget.

Model. ``cpu_seconds(pid)`` reads ``/proc/<pid>/stat`` once and returns utime + stime, which the
kernel keeps for the whole process: every thread it has or had, so background threads a plugin
starts are charged to it. One small read per runner per sample (the supervisor samples every
``cpu_sample_interval_s``, one second by default), on the event loop: it is a kernel-generated
page of a few hundred bytes, tens of microseconds, never blocking on a disk. A process that is
gone (or a pid that is not ours to read) answers None, and that sample is skipped; what the
samples mean is ``host.supervisor.fairshare.CpuBudget``'s to decide.

A cgroup per runner would give the same figure from ``cpu.stat`` (``usage_usec``); until runners
get one, /proc is what every Linux host has.
"""

from __future__ import annotations

import os

__all__ = ["cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Fields after the ")" that closes the command name: utime and stime are fields 14 and 15 of the
# line, the 12th and 13th after it (the name may hold spaces and parentheses, so split at the last).
_UTIME, _STIME = 11, 12


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and all its threads, or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            line = stat.read(4096)
    except OSError:
        return None
    return parse_stat(line)


def parse_stat(line: bytes) -> float | None:
    """utime + stime in seconds from one ``/proc/<pid>/stat`` line; None if it is not one."""
    _, paren, rest = line.rpartition(b")")
    fields = rest.split()
    if not paren or len(fields) <= _STIME:
        return None
    try:
        return (int(fields[_UTIME]) + int(fields[_STIME])) / _TICKS
    except ValueError:
        return None

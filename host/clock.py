"""The host's clocks: the only way host code learns the time.

Model. Policy code never calls ``time`` itself; it is given a clock and reads one of two readings:

- ``monotonic()``: seconds that never go backwards and do not jump when the wall clock is set.
  Intervals and deadlines only: the breaker's error window and backoff, risk's rate windows, a
  feed's silence, the watcher's debounce, order latency. Its zero is arbitrary, so a reading means
  nothing in another process or after a restart.
- ``time_ns()`` / ``now_ns()``: Unix epoch nanoseconds (UTC), on the same scale as the timestamps
  market data and fills carry. Anything dated: the UTC trading day risk counts in, a reference
  price's age, journal and snapshot stamps, the times a venue stamps on orders, fills and replies.
  The two names are one reading and every clock returns the same value from both: venues and
  matching say ``time_ns`` (after ``time.time_ns``), risk and the execution engine say ``now_ns``
  ("the engine's now", which in a backtest is not the machine's now).

A part asks for the narrowest protocol it reads: ``Clock`` (monotonic), ``WallClock`` (epoch), or
``Clocks`` (both, for risk, the execution engine and the assembly that hands one clock to all).

Two implementations; the clock (with the venue) is what differs between a live run and a replay.
``SystemClock`` reads the machine's clocks for a live or paper run; ``ReplayClock`` reads time off
the replayed events, so UTC days, price ages and rate windows follow the recording instead of the
machine. Neither needs a lock: the system clock has no state, and a replay clock is advanced and
read on the event loop only.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "WallClock", "Clocks", "SystemClock", "ReplayClock"]


class Clock(Protocol):
    """Monotonic seconds: for intervals and deadlines, never for dates."""

    def monotonic(self) -> float: ...


class WallClock(Protocol):
    """Unix epoch nanoseconds (UTC): the engine's now (replay time in a backtest)."""

    def time_ns(self) -> int:
        """Epoch ns now: what venues and matching stamp on orders, fills and replies."""
        ...

    def now_ns(self) -> int:
        """The same reading as ``time_ns``: what decides risk's UTC day and a price's age."""
        ...


class Clocks(Clock, WallClock, Protocol):
    """Both readings, for the parts that measure intervals and date things (risk, the execution engine)."""


class SystemClock:
    """The machine's clocks: ``time.monotonic`` and ``time.time_ns``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ns(self) -> int:
        return time.time_ns()

    def now_ns(self) -> int:
        return time.time_ns()


class ReplayClock:
    """Time as the replayed events tell it: every reading is the latest event's timestamp.

    ``advance`` is called with each event's timestamp before the event is handled; an older
    timestamp (events out of order) leaves the clock where it is, so it never goes backwards.
    ``monotonic`` is the same instant in seconds, so rate windows and deadlines run on replay time.
    Before the first event every reading is 0.
    """

    def __init__(self) -> None:
        self._now_ns = 0

    def advance(self, timestamp_ns: int) -> None:
        if timestamp_ns > self._now_ns:
            self._now_ns = timestamp_ns

    def now_ns(self) -> int:
        return self._now_ns

    def time_ns(self) -> int:
        return self._now_ns

    def monotonic(self) -> float:
        return self._now_ns / 1e9

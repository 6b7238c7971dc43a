"""Rejected orders in the log: the first of a run at once, then one count per interval, never a line each.

Model. A strategy stuck on a rule (a stale price, a position cap) can be refused many times a
second for hours; a log line each would be megabytes an hour that say one thing. Rejections are
logged per (strategy, reason):

- the first one after a quiet interval is logged at once as ``order_rejected`` (strategy, reason,
  detail: the rejection's message), as a single rejection always was;
- while more follow, one ``orders_rejected_summary`` per ``interval_s`` (default 10 s) says how many
  there were since the last line (``count``), over how long (``window_s``) and the latest message
  (``detail``);
- an interval with none closes the run: the next rejection is logged at once again.

So a (strategy, reason) costs at most one line per interval however fast it is refused, and the
counts add up: every rejection is in exactly one line's count (``order_rejected`` counts one).
Metrics are not this module's business: the caller still counts every rejection
(``orders_rejected_total{reason}``, ``risk_violations_total``) as it happens.

``RejectionTally`` is the pure core (time handed in, decisions returned). ``RejectionLog`` is the
shell the execution engine calls: it logs, and while a run is open it keeps one timer on the event
loop (``loop.call_later``) so a summary is written when its interval ends even if no rejection comes
after it. ``flush`` writes what is pending (at shutdown). Time is the injected ``Clock``; the timer
only says when to look. Owned by the event loop, not thread-safe. Memory: one small record per
(strategy, reason) with an open run; strategies are the configured ids and reasons a fixed set.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from host.clock import Clock

__all__ = ["RejectionLog", "RejectionTally", "Summary"]

log = structlog.get_logger("host.execution")

_DETAIL = 300  # characters of a rejection message that reach the log

Key = tuple[str, str]  # (strategy, reason)


@dataclass(frozen=True, slots=True)
class Summary:
    """Rejections of one (strategy, reason) not logged one by one: ``count`` over the last ``window_s``."""

    strategy: str
    reason: str
    count: int
    window_s: float
    detail: str  # the latest rejection's message


@dataclass(slots=True)
class _Run:
    since: float  # start of the current interval
    count: int = 0  # rejections since then not logged yet
    detail: str = ""


class RejectionTally:
    """Which rejections to log now and which to count: pure, time handed in."""

    def __init__(self, interval_s: float = 10.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s: must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self._runs: dict[Key, _Run] = {}

    def add(self, strategy: str, reason: str, detail: str, now: float) -> bool:
        """Count one rejection; True when it opens a run (log it at once), False when it is counted."""
        run = self._runs.get((strategy, reason))
        if run is None:
            self._runs[(strategy, reason)] = _Run(now)
            return True
        run.count += 1
        run.detail = detail
        return False

    def due(self, now: float) -> list[Summary]:
        """Summaries of the runs whose interval has ended; a run with nothing counted in it is closed."""
        out: list[Summary] = []
        for key, run in list(self._runs.items()):
            if now - run.since < self.interval_s:
                continue
            if run.count:
                out.append(Summary(key[0], key[1], run.count, now - run.since, run.detail))
                run.since, run.count = now, 0
            else:
                del self._runs[key]
        return out

    def flush(self, now: float) -> list[Summary]:
        """Every count not logged yet, and every run closed."""
        out = [Summary(key[0], key[1], run.count, now - run.since, run.detail)
               for key, run in self._runs.items() if run.count]  # fmt: skip
        self._runs.clear()
        return out

    def next_due(self) -> float | None:
        """When the earliest open run's interval ends (None: no run is open)."""
        return min((run.since + self.interval_s for run in self._runs.values()), default=None)


class RejectionLog:
    """Logs order rejections through a ``RejectionTally``; see the module docstring."""

    def __init__(self, clock: Clock, interval_s: float = 10.0) -> None:
        self._clock = clock
        self.tally = RejectionTally(interval_s)
        self._timer: asyncio.TimerHandle | None = None

    def rejected(self, strategy: str, reason: str, message: str) -> None:
        """One order refused: logged at once if it opens a run, else counted for the next summary."""
        now = self._clock.monotonic()
        detail = message[:_DETAIL]
        if self.tally.add(strategy, reason, detail, now):
            log.info("order_rejected", strategy=strategy, reason=reason, detail=detail)
        self._write(self.tally.due(now))
        self._arm(now)

    def flush(self) -> None:
        """Write every pending count now (the engine is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._write(self.tally.flush(self._clock.monotonic()))

    def _on_timer(self) -> None:
        self._timer = None
        now = self._clock.monotonic()
        self._write(self.tally.due(now))
        self._arm(now)

    def _arm(self, now: float) -> None:
        """Keep one timer for the earliest open run (none without a running loop: summaries then wait
        for the next rejection or ``flush``)."""
        due = self.tally.next_due()
        if due is None or self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(max(0.0, due - now), self._on_timer)

    @staticmethod
    def _write(summaries: list[Summary]) -> None:
        for s in summaries:
            log.info("orders_rejected_summary", strategy=s.strategy, reason=s.reason, count=s.count,
                     window_s=round(s.window_s, 3), detail=s.detail)  # fmt: skip

"""Timers: what a strategy asks for (``TimerRequest``) and the schedule that fires them (``TimerBook``).

Model. A strategy names its timers; ``Strategy.every(name, seconds)`` repeats, ``Strategy.at(name,
timestamp_ns)`` fires once, ``Strategy.cancel_timer(name)`` drops one, and scheduling a name again
replaces it. The requests leave the handler with its other outputs (the runner sends them to the
host in the batch result) and are applied to a ``TimerBook``: one schedule keyed by owner (a
strategy id) and name, pure, told the time by whoever drives it. The host drives one on its wall
clock live and on the replay clock in a replay; ``sdk.testing`` drives one by event time; the
rules live here once.

- ``every``: fires at ``anchor + k * interval`` (k = 1, 2, ...) with no drift, the anchor being
  the strategy's time when it asked (``Strategy.now_ns``). Asked before any event (``on_start``:
  the time is not known yet), it is anchored at the first time the book is driven after.
- ``due(now_ns)`` (a live driver, on the wall clock) returns the firings due at ``now_ns``,
  ordered by due time (then owner and name), each as the ``Timer`` the strategy receives, stamped
  with its due time. A repeating timer that fell behind by several periods (the host was late)
  fires once, at the latest period due, and the periods skipped are counted (``skipped``), never
  fired as a burst. A one-shot timer is gone once fired.
- ``step(now_ns)`` (a simulated clock: a replay, a backtest, ``sdk.testing``) fires everything due
  on the way to ``now_ns``, each period at its own time, as a live driver would have on a quiet
  market; a simulated clock is never late. Bounded (10,000 firings a step, then as ``due``).
- At most ``limit`` timers per owner (100); a request past it, an empty name or a non-positive
  interval is a ``TimerRejected`` (a ``ValidationError``: the host counts it as ``bad_signal``).
- ``next_due()`` is O(1): what a driver sleeps until (live) or compares an event's time with;
  ``on_sooner`` tells a sleeping driver that it must look again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

from sdk.errors import ValidationError
from sdk.events import Timer

__all__ = ["DEFAULT_TIMER_LIMIT", "TimerBook", "TimerRejected", "TimerRequest"]

DEFAULT_TIMER_LIMIT = 100
_NAME_LIMIT = 200
_NS_PER_SECOND = 1_000_000_000


class TimerRejected(ValidationError):
    """A timer request the schedule does not take: names the timer and the rule."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__("timer", "name", reason)
        self.name = name

    def __str__(self) -> str:
        return f"timer {self.name!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class TimerRequest:
    """One request of a strategy: ``every_ns`` > 0 repeats, ``at_ns`` fires once, neither cancels.

    ``anchor_ns`` is the strategy's time when it asked (0: not known yet, before any event).
    """

    name: str
    every_ns: int = 0
    at_ns: int | None = None
    anchor_ns: int = 0

    @property
    def cancel(self) -> bool:
        return self.every_ns == 0 and self.at_ns is None

    @staticmethod
    def every(name: str, seconds: float, anchor_ns: int) -> TimerRequest:
        _check_name(name)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise TimerRejected(name, f"interval must be a number of seconds, got {seconds!r}")
        interval = round(seconds * _NS_PER_SECOND)
        if interval <= 0:
            raise TimerRejected(name, f"interval must be > 0 seconds, got {seconds!r}")
        return TimerRequest(name, every_ns=interval, anchor_ns=anchor_ns)

    @staticmethod
    def at(name: str, timestamp_ns: int) -> TimerRequest:
        _check_name(name)
        if isinstance(timestamp_ns, bool) or not isinstance(timestamp_ns, int) or timestamp_ns < 0:
            raise TimerRejected(name, f"time must be Unix epoch nanoseconds (an int >= 0), got {timestamp_ns!r}")
        return TimerRequest(name, at_ns=timestamp_ns)

    @staticmethod
    def cancelling(name: str) -> TimerRequest:
        _check_name(name)
        return TimerRequest(name)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise TimerRejected(str(name), f"name must be a non-empty string, got {name!r}")
    if len(name) > _NAME_LIMIT:
        raise TimerRejected(name[:40] + "...", f"name is {len(name)} characters, at most {_NAME_LIMIT}")


@dataclass(slots=True)
class _Scheduled:
    every_ns: int  # 0: one-shot
    anchor_ns: int  # every: periods count from here; 0 = anchored at the next drive
    next_ns: int  # the next due time (0 while not anchored)


class TimerBook:
    """Every owner's timers: apply requests, ask what is due (see the module docstring)."""

    def __init__(self, limit: int = DEFAULT_TIMER_LIMIT, on_sooner: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self._on_sooner = on_sooner  # told when a driver must look again: something is due sooner, or to anchor
        self._timers: dict[tuple[str, str], _Scheduled] = {}
        self._unanchored: set[tuple[str, str]] = set()
        self._next: int | None = None
        self.skipped: dict[tuple[str, str], int] = {}  # periods of a repeating timer never fired, by (owner, name)
        self.last_skipped: list[tuple[str, str, int]] = []  # (owner, name, periods) skipped by the last due()

    def __len__(self) -> int:
        return len(self._timers)

    def names(self, owner: str) -> list[str]:
        return sorted(name for o, name in self._timers if o == owner)

    def apply(self, owner: str, request: TimerRequest) -> None:
        """Schedule, replace or cancel ``owner``'s timer; TimerRejected past the limit or for a bad request."""
        key = (owner, request.name)
        _check_name(request.name)
        if request.cancel:
            self._remove(key)
            return
        if key not in self._timers and sum(1 for o, _ in self._timers if o == owner) >= self.limit:
            raise TimerRejected(request.name, f"more than {self.limit} timers for one strategy (cancel some first)")
        if request.at_ns is not None:
            if request.at_ns < 0:
                raise TimerRejected(request.name, f"time must be >= 0, got {request.at_ns}")
            self._set(key, _Scheduled(0, 0, request.at_ns))
        elif request.every_ns <= 0:
            raise TimerRejected(request.name, f"interval must be > 0 ns, got {request.every_ns}")
        else:
            anchor = request.anchor_ns
            self._set(key, _Scheduled(request.every_ns, anchor, anchor + request.every_ns if anchor > 0 else 0))

    def drop(self, owner: str) -> int:
        """Forget every timer of ``owner`` (its runner was replaced); how many there were."""
        keys = [key for key in self._timers if key[0] == owner]
        for key in keys:
            self._remove(key)
        return len(keys)

    def next_due(self) -> int | None:
        """The earliest due time, None with nothing anchored (a timer asked for before any event waits for
        ``due`` to anchor it: a driver with unanchored timers should call ``due`` now, see ``waiting``)."""
        return self._next

    def next_due_of(self, owner: str) -> int | None:
        """The earliest due time of ``owner``'s timers: 0 while one waits to be anchored (it may fall due
        at the next drive), None without any."""
        times = [0 if key in self._unanchored else t.next_ns for key, t in self._timers.items() if key[0] == owner]
        return min(times, default=None)

    @property
    def waiting(self) -> bool:
        """Some repeating timer is still to be anchored by the next ``due``."""
        return bool(self._unanchored)

    def due(self, now_ns: int) -> list[tuple[str, Timer]]:
        """Firings due at ``now_ns`` as ``(owner, Timer)``, by due time; the schedule moves past them."""
        if self._unanchored:
            self._anchor(now_ns)
        if self._next is None or now_ns < self._next:
            return []
        self.last_skipped = []
        fired: list[tuple[int, str, str]] = []
        for key, timer in list(self._timers.items()):
            if timer.next_ns > now_ns:
                continue
            if timer.every_ns == 0:
                fired.append((timer.next_ns, *key))
                del self._timers[key]
                continue
            periods = (now_ns - timer.next_ns) // timer.every_ns  # whole periods past the one due
            if periods:
                self.skipped[key] = self.skipped.get(key, 0) + periods
                self.last_skipped.append((*key, periods))
            at = timer.next_ns + periods * timer.every_ns
            fired.append((at, *key))
            timer.next_ns = at + timer.every_ns
        self._recompute()
        return [(owner, Timer(name=name, timestamp_ns=at)) for at, owner, name in sorted(fired)]

    def step(self, now_ns: int, limit: int = 10_000) -> Iterator[tuple[str, Timer]]:
        """Simulated time moving to ``now_ns``: every firing on the way, each at its own due time.

        A simulated clock is never late, so no period is skipped (as a live driver waking at each
        due time fires them all on a quiet market), up to ``limit`` firings; past that, what is left
        fires as ``due`` would (once each, the rest counted as skipped), so a tiny interval over a
        long gap in the data cannot stall a replay. A generator: a request applied while a firing is
        handled (a cancel, a new timer) counts for the firings after it.
        """
        if self._unanchored:
            self._anchor(now_ns)
        count = 0
        while (at := self._next) is not None and at <= now_ns and count < limit:
            for firing in self.due(at):
                count += 1
                yield firing
        yield from self.due(now_ns)

    def _anchor(self, now_ns: int) -> None:
        for key in self._unanchored:
            timer = self._timers[key]
            timer.anchor_ns = now_ns
            timer.next_ns = now_ns + timer.every_ns
        self._unanchored.clear()
        self._recompute()

    def _set(self, key: tuple[str, str], timer: _Scheduled) -> None:
        before = self._next
        self._timers[key] = timer
        if timer.every_ns and timer.anchor_ns <= 0:
            self._unanchored.add(key)
        else:
            self._unanchored.discard(key)
        self._recompute()
        sooner = self._unanchored or (self._next is not None and (before is None or self._next < before))
        if sooner and self._on_sooner is not None:
            self._on_sooner()

    def _remove(self, key: tuple[str, str]) -> None:
        if self._timers.pop(key, None) is not None:
            self._unanchored.discard(key)
            self._recompute()

    def _recompute(self) -> None:
        self._next = min(self._anchored(), default=None)

    def _anchored(self) -> Iterator[int]:
        unanchored = self._unanchored
        return (t.next_ns for key, t in self._timers.items() if key not in unanchored)

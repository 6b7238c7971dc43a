"""Fair share of the machine and of the order rate: when a strategy's use becomes a charge.

Model. Two pure judges, one per strategy, owned by its ``ManagedStrategy`` and called on the event
loop (not thread-safe; no lock needed there). Each takes observations and the injected ``Clock``
and answers whether the strategy is to be charged; neither reads ``/proc``, logs or kills anything
(the CPU sampler in ``host.supervisor.cpuwatch`` and the strategy's loop do that).

- ``CpuBudget``: cumulative CPU seconds of the strategy's runner (all its threads), sampled about
  once a second. The share is the CPU used between the oldest sample still inside ``window_s`` and
  the newest one, divided by the wall time between them, in cores. It is judged only once the
  samples span the whole window (a start-up burst or one heavy batch averages out), and a new
  runner starts a new series (its process has its own counter). Over ``share`` -> ``CpuExceeded``.
- ``QuotaStrikes``: rejections of the strategy's orders by its own order-rate quota. One now and
  then is the quota doing its job; ``strikes`` within ``window_s`` means the strategy keeps sending
  past what it is told it may, and it is charged once (the count starts over after a charge and
  with every new runner).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from host.clock import Clock

__all__ = ["CpuBudget", "CpuExceeded", "QuotaStrikes"]

# The window is full when the samples span this much of it: samples come about a second apart,
# so the oldest one left inside the window is up to one interval younger than its edge.
_FULL = 0.9


@dataclass(frozen=True)
class CpuExceeded:
    """The runner used ``share`` cores on average over ``span_s`` seconds; its limit is ``limit``."""

    share: float
    limit: float
    span_s: float

    @property
    def reason(self) -> str:
        return f"cpu: {self.share:.2f} cores over {self.span_s:.1f} s > limit {self.limit:g}"


class CpuBudget:
    """One strategy's CPU use over a sliding window against its share of a core."""

    def __init__(self, share: float, window_s: float, clock: Clock) -> None:
        if not (math.isfinite(share) and share > 0):
            raise ValueError(f"share: must be a finite number > 0, got {share!r}")
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s: must be a finite number > 0, got {window_s!r}")
        self.share = share
        self.window_s = window_s
        self._clock = clock
        self._pid: int | None = None
        self._samples: deque[tuple[float, float]] = deque()  # (monotonic time, cumulative CPU seconds)

    def observe(self, pid: int, cpu_s: float) -> CpuExceeded | None:
        """A sample of runner ``pid``'s cumulative CPU time; ``CpuExceeded`` once it is over its share."""
        now = self._clock.monotonic()
        if pid != self._pid or (self._samples and cpu_s < self._samples[-1][1]):
            self.reset()
            self._pid = pid
        samples = self._samples
        samples.append((now, cpu_s))
        while len(samples) > 1 and samples[1][0] <= now - self.window_s:
            samples.popleft()  # keep one sample at or beyond the edge, so the span covers the window
        start, used = samples[0]
        span = now - start
        if span < self.window_s * _FULL:
            return None
        share = (cpu_s - used) / span
        if share <= self.share:
            return None
        return CpuExceeded(share=share, limit=self.share, span_s=span)

    def measured(self) -> float | None:
        """The share over the samples held now (None until two samples), for the status page."""
        if len(self._samples) < 2:
            return None
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else None

    def reset(self) -> None:
        """Forget the series (a new runner, or the old one was charged and is being replaced)."""
        self._pid = None
        self._samples.clear()


class QuotaStrikes:
    """Quota rejections of one strategy's orders: ``strikes`` within ``window_s`` is a charge."""

    def __init__(self, strikes: int, window_s: float, clock: Clock) -> None:
        if strikes < 1:
            raise ValueError(f"strikes: must be an integer >= 1, got {strikes!r}")
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s: must be a finite number > 0, got {window_s!r}")
        self.strikes = strikes
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def record(self) -> str | None:
        """One more quota rejection; the charge's reason when it makes ``strikes`` within the window."""
        now = self._clock.monotonic()
        times = self._times
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) < self.strikes:
            return None
        self._times.clear()
        return f"order_flood: {self.strikes} orders rejected by its order-rate quota within {self.window_s:g} s"

    def reset(self) -> None:
        self._times.clear()

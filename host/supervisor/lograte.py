"""How many of a strategy's log records reach the host's log: a token bucket, and its drop reports.

Model. One ``LogRateLimiter`` per strategy (kept across its runners). Each record asks ``admit``:
the bucket holds up to ``burst`` tokens and refills at ``rate_per_s``; a record that finds no token
is dropped and counted. Records dropped before they got here (the runner's per-message cap, a
record the host could not read, one naming another strategy) are added with ``dropped``.

Drops are reported, not logged one by one: ``report`` returns the count to name in a summary line
at most once per ``report_every_s`` (the first drops after a quiet window are reported at once, the
rest at the first ``report`` after the window ends), and ``flush`` returns what is left when the
strategy's runner ends. Pure: time is read only through the injected ``Clock``.
"""

from __future__ import annotations

from dataclasses import dataclass

from host.clock import Clock

__all__ = ["LogRateLimiter", "LogRatePolicy"]


@dataclass(frozen=True)
class LogRatePolicy:
    rate_per_s: float = 20.0  # records a second a strategy may log, sustained
    burst: int = 100  # records it may log at once after a quiet spell
    report_every_s: float = 10.0  # at most one "records dropped" summary line per window


class LogRateLimiter:
    """Token bucket of one strategy's log records, and the drops it has yet to report."""

    def __init__(self, policy: LogRatePolicy, clock: Clock) -> None:
        self.policy = policy
        self._clock = clock
        self._tokens = float(policy.burst)
        self._refilled_at = clock.monotonic()
        self._next_report = float("-inf")
        self.pending = 0  # dropped and not reported yet
        self.total_dropped = 0

    def admit(self) -> bool:
        """Whether one more record may be logged now (takes a token), else it is counted as dropped."""
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(float(self.policy.burst), self._tokens + elapsed * self.policy.rate_per_s)
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.dropped(1)
        return False

    def dropped(self, count: int) -> None:
        """``count`` records dropped before they reached the bucket."""
        self.pending += count
        self.total_dropped += count

    def report(self) -> int:
        """Drops to name in a summary line now; 0 when none, or when a report was made within the window."""
        now = self._clock.monotonic()
        if not self.pending or now < self._next_report:
            return 0
        self._next_report = now + self.policy.report_every_s
        return self.flush()

    def flush(self) -> int:
        """Every drop not reported yet (the strategy's runner ended)."""
        count, self.pending = self.pending, 0
        return count

"""What a runner may send that the host did not ask for, and when that becomes a charge.

Model. A runner answers what the host sends it: one result per batch (with that batch's seq), a
heartbeat echo per heartbeat, a snapshot per request. Anything else is a stray: a result for
another seq (late or forged), an unexpected message kind, a heartbeat nobody sent. A few strays
are honest (a reply that raced a deadline); a stream of them is a runner flooding its own link and
making the host parse, log and discard it. One ``StrayBudget`` per runner: a token bucket of
``burst`` strays refilled at ``rate_per_s``; the stray that finds the bucket empty is a flood,
charged to the strategy (the runner is then ended, so the host stops spending CPU on it).

Logging is bounded too: the first stray of a window is logged, the others in that window are only
counted, and the next line logged names how many were suppressed (``suppressed``). Pure: time is
read only through the injected ``Clock``.
"""

from __future__ import annotations

from dataclasses import dataclass

from host.clock import Clock

__all__ = ["Stray", "StrayBudget", "StrayPolicy"]


@dataclass(frozen=True)
class StrayPolicy:
    burst: int = 100  # strays a runner may send at once (late replies after a slow batch, echoes)
    rate_per_s: float = 20.0  # strays a second it may send, sustained
    log_every_s: float = 10.0  # at most one stray log line per runner per window


@dataclass(frozen=True, slots=True)
class Stray:
    """The verdict on one stray: whether it is past the budget, and whether to log it."""

    over_budget: bool
    log: bool
    suppressed: int  # strays not logged since the last line (name it in this line)


class StrayBudget:
    """The stray budget of one runner and the log lines its strays may cost."""

    def __init__(self, policy: StrayPolicy, clock: Clock) -> None:
        self.policy = policy
        self._clock = clock
        self._tokens = float(policy.burst)
        self._refilled_at = clock.monotonic()
        self._next_log = float("-inf")
        self._unlogged = 0
        self.total = 0

    def note(self) -> Stray:
        """Count one stray; its verdict."""
        now = self._clock.monotonic()
        self.total += 1
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(float(self.policy.burst), self._tokens + elapsed * self.policy.rate_per_s)
        self._refilled_at = now
        over = self._tokens < 1.0
        if not over:
            self._tokens -= 1.0
        if now < self._next_log and not over:
            self._unlogged += 1
            return Stray(over_budget=False, log=False, suppressed=0)
        self._next_log = now + self.policy.log_every_s
        suppressed, self._unlogged = self._unlogged, 0
        return Stray(over_budget=over, log=True, suppressed=suppressed)

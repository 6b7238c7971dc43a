"""Per-strategy circuit breaker and restart policy: what the supervisor does after a failure.

Model. One ``CircuitBreaker`` per strategy instance, owned and called by the supervisor on the event
loop (not thread-safe; it needs no lock there). It is a pure state machine: the supervisor reports
what happened (``record_failure``, ``record_success``, ``runner_started``, the operator's ``pause`` and
``resume``) and gets back a ``Decision``; the breaker itself spawns, kills, sleeps and logs nothing.
Time is read only through the injected ``Clock``, and nothing happens between calls: the error
window, the restart budget and the stable period are recomputed from the clock on every call, so
there are no timers to schedule or cancel.

States:

- ``CLOSED``: serving. ERRORs (the runner survives) are counted and trip the breaker at
  ``consecutive_failures`` in a row or ``window_failures`` within ``window_s``. TIMEOUT, CRASH, CPU,
  ORDER_FLOOD and PROTOCOL (a flooded stream) need a new runner, so they trip at once (CPU and
  ORDER_FLOOD are already judged over a window of their own before they are reported:
  ``host.supervisor.fairshare``).
- ``OPEN``: not serving. Either a restart is pending (the ``Restart`` said when; the supervisor
  calls ``runner_started()`` once the replacement is up, which moves to ``HALF_OPEN``), or it is
  held open (boot error, restart budget exhausted, operator pause) and only ``resume()`` lets a
  runner start again.
- ``HALF_OPEN``: a replacement is on trial. Its first success closes the breaker; any failure trips
  it again with the next, larger backoff.

Tripping returns ``Restart(after_s=backoff)`` while the restart budget (``restart_budget`` restarts
within ``budget_window_s``) allows, else ``Open``. The backoff step ``n`` counts restarts since the
last stable period: ``initial * multiplier**(n-1)`` capped at ``backoff_max_s``, then jittered by
``+-jitter``. A runner that has served ``stable_after_s`` with no failure resets the error counters
and the backoff step; the budget is its own sliding window, cleared only by ``resume()``.

While a restart is pending (OPEN, before ``runner_started()``): an ERROR is the rest of the batch
that tripped the breaker, so it is counted by kind and answered ``Continue`` (the restart already
decided covers it); a TIMEOUT or CRASH is the replacement failing before it could serve, so it
trips again with the next backoff. The supervisor reports one failure per lost runner. BOOT always
opens and never restarts: a plugin that cannot load or start fails the same way every time, so it
waits for a fix and ``resume()``.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TypeAlias

from host.clock import Clock

__all__ = [
    "FailureKind",
    "BreakerState",
    "BreakerPolicy",
    "Continue",
    "Restart",
    "Open",
    "Decision",
    "BreakerStatus",
    "CircuitBreaker",
    "backoff_delay",
]


class FailureKind(StrEnum):
    """What went wrong with a strategy, as the supervisor observed it."""

    ERROR = "error"  # the strategy raised in a handler (runner still alive)
    TIMEOUT = "timeout"  # missed its per-batch deadline (the runner is killed)
    CRASH = "crash"  # exited, was killed by a signal, or its stream broke
    BOOT = "boot"  # could not load / bad config / on_start raised: never restarted in a loop
    CPU = "cpu"  # used more than its CPU share over the window (the runner is replaced, like a crash)
    ORDER_FLOOD = "order_flood"  # kept sending past its order-rate quota (the runner is replaced)
    PROTOCOL = "protocol"  # flooded its stream with messages the host did not ask for (the runner is ended)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    consecutive_failures: int = 5  # ERRORs in a row that trip the breaker
    window_failures: int = 20  # or this many ERRORs ...
    window_s: float = 60.0  # ... within this many seconds
    backoff_initial_s: float = 0.5  # delay before the first restart since the last stable period
    backoff_max_s: float = 30.0  # cap on the delay before jitter
    backoff_multiplier: float = 2.0  # growth per consecutive restart
    jitter: float = 0.2  # +- fraction applied to each delay, so restarts of many strategies spread out
    restart_budget: int = 5  # at most this many restarts ...
    budget_window_s: float = 300.0  # ... within this window; past it the breaker stays OPEN until resume()
    stable_after_s: float = 60.0  # serving this long with no failure resets the counters and backoff

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field whose value makes no sense."""
        for name, rule, ok in self._rules():
            if not ok:
                raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}")

    def _rules(self) -> list[tuple[str, str, bool]]:
        initial, maximum = self.backoff_initial_s, self.backoff_max_s
        return [
            ("consecutive_failures", "must be an integer >= 1", _is_count(self.consecutive_failures)),
            ("window_failures", "must be an integer >= 1", _is_count(self.window_failures)),
            ("window_s", "must be a finite number > 0", _is_positive(self.window_s)),
            ("backoff_initial_s", "must be a finite number > 0", _is_positive(initial)),
            ("backoff_max_s", "must be finite and >= backoff_initial_s", _is_positive(maximum) and maximum >= initial),
            ("backoff_multiplier", "must be a finite number >= 1", _is_positive(self.backoff_multiplier)
             and self.backoff_multiplier >= 1),
            ("jitter", "must be in [0, 1)", _is_number(self.jitter) and 0 <= self.jitter < 1),
            ("restart_budget", "must be an integer >= 1", _is_count(self.restart_budget)),
            ("budget_window_s", "must be a finite number > 0", _is_positive(self.budget_window_s)),
            ("stable_after_s", "must be a finite number > 0", _is_positive(self.stable_after_s)),
        ]  # fmt: skip


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_positive(value: float) -> bool:
    return _is_number(value) and value > 0


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class Continue:
    """Nothing to do: keep serving."""


@dataclass(frozen=True)
class Restart:
    """Kill the runner if it is alive and start a fresh one after ``after_s``; call ``runner_started()`` then."""

    after_s: float
    reason: str


@dataclass(frozen=True)
class Open:
    """Stop the strategy and keep it stopped until an operator calls ``resume()``."""

    reason: str


Decision: TypeAlias = Continue | Restart | Open


@dataclass(frozen=True)
class BreakerStatus:
    state: BreakerState
    consecutive_failures: int  # ERRORs in a row since the last success, trip or stable period
    failures_in_window: int  # ERRORs within window_s
    restarts_in_budget: int  # restarts within budget_window_s
    total_restarts: int  # since this breaker was made
    failures_by_kind: Mapping[str, int]  # every failure reported, by FailureKind value (all kinds present)
    last_reason: str  # why the last decision was taken, or the operator's pause reason
    paused_by_operator: bool
    opened_at: float | None  # clock time the breaker last went OPEN; None unless OPEN


def backoff_delay(policy: BreakerPolicy, step: int, draw: float) -> float:
    """Delay before restart ``step`` (1-based) since the last stable period; ``draw`` is uniform in [0, 1)."""
    spread = 2.0 * min(max(draw, 0.0), 1.0) - 1.0
    return _capped_delay(policy, step) * (1.0 + policy.jitter * spread)


def _capped_delay(policy: BreakerPolicy, step: int) -> float:
    exponent = max(step - 1, 0)
    # Compared in log space so a long run of restarts cannot overflow multiplier**exponent.
    if exponent * math.log(policy.backoff_multiplier) >= math.log(policy.backoff_max_s / policy.backoff_initial_s):
        return policy.backoff_max_s
    return min(policy.backoff_max_s, policy.backoff_initial_s * policy.backoff_multiplier**exponent)


def _detail(reason: str) -> str:
    return f": {reason}" if reason else ""


def _drop_older(times: deque[float], cutoff: float) -> None:
    while times and times[0] <= cutoff:
        times.popleft()


class CircuitBreaker:
    """One strategy's breaker: takes what happened, returns what to do (see the module docstring)."""

    def __init__(self, policy: BreakerPolicy, clock: Clock, rng: Callable[[], float] = random.random) -> None:
        policy.validate()
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._state = BreakerState.CLOSED
        self._restart_pending = False
        self._paused = False
        self._consecutive = 0
        self._errors: deque[float] = deque()  # times of ERRORs still inside window_s
        self._restarts: deque[float] = deque()  # times of restarts still inside budget_window_s
        self._total_restarts = 0
        self._backoff_step = 0
        self._by_kind = dict.fromkeys((kind.value for kind in FailureKind), 0)
        self._last_reason = ""
        self._opened_at: float | None = None
        self._quiet_since: float | None = None  # last failure or runner start, whichever is later

    @property
    def state(self) -> BreakerState:
        return self._state

    def record_failure(self, kind: FailureKind, reason: str = "") -> Decision:
        """Charge a failure to this strategy and say what to do about it."""
        now = self._now()
        self._by_kind[kind.value] += 1
        if self._paused:
            return Open(f"{kind.value} while paused: {self._last_reason}; resume to restart")
        if kind is FailureKind.BOOT:
            return self._hold_open(
                now, f"boot error{_detail(reason)}; not restarted: fix the plugin or its config, then resume"
            )
        if self._state is BreakerState.OPEN:
            return self._while_open(now, kind, reason)
        self._quiet_since = now
        if self._state is BreakerState.HALF_OPEN:
            return self._trip(now, f"{kind.value} while half-open{_detail(reason)}")
        if kind is FailureKind.ERROR:
            return self._count_error(now, reason)
        return self._trip(now, f"{kind.value}{_detail(reason)}")

    def record_success(self) -> None:
        """A batch was answered in time and without error by this strategy."""
        self._now()
        if self._state is BreakerState.OPEN:
            return  # a late reply from a runner that is being replaced or stopped
        self._consecutive = 0
        self._state = BreakerState.CLOSED

    def runner_started(self) -> None:
        """A runner for this strategy is up (Ready): a pending restart moves OPEN -> HALF_OPEN."""
        now = self._now()
        if self._state is BreakerState.OPEN and not self._restart_pending:
            return  # held open: only resume() lets a runner start
        if self._restart_pending:
            self._restart_pending = False
            self._state = BreakerState.HALF_OPEN
            self._opened_at = None
        self._quiet_since = now

    def pause(self, reason: str = "paused by operator") -> None:
        """Operator: stop the strategy and never restart it automatically until ``resume()``."""
        now = self._now()
        self._paused = True
        self._hold_open(now, reason)

    def resume(self) -> None:
        """Operator: clear budget, counters and backoff and go HALF_OPEN; the supervisor starts a fresh runner."""
        now = self._now()
        self._paused = False
        self._restart_pending = False
        self._restarts.clear()
        self._reset_counters()
        self._state = BreakerState.HALF_OPEN
        self._opened_at = None
        self._quiet_since = now
        self._last_reason = "resumed by operator"

    def status(self) -> BreakerStatus:
        self._now()
        return BreakerStatus(
            state=self._state,
            consecutive_failures=self._consecutive,
            failures_in_window=len(self._errors),
            restarts_in_budget=len(self._restarts),
            total_restarts=self._total_restarts,
            failures_by_kind=MappingProxyType(dict(self._by_kind)),
            last_reason=self._last_reason,
            paused_by_operator=self._paused,
            opened_at=self._opened_at,
        )

    def _now(self) -> float:
        """Read the clock once and bring the time-based counters up to it."""
        now = self._clock.monotonic()
        _drop_older(self._errors, now - self._policy.window_s)
        _drop_older(self._restarts, now - self._policy.budget_window_s)
        if self._served_stably(now):
            self._reset_counters()
        return now

    def _served_stably(self, now: float) -> bool:
        if self._state is BreakerState.OPEN or self._quiet_since is None:
            return False
        return now - self._quiet_since >= self._policy.stable_after_s

    def _reset_counters(self) -> None:
        self._consecutive = 0
        self._errors.clear()
        self._backoff_step = 0

    def _count_error(self, now: float, reason: str) -> Decision:
        policy = self._policy
        self._consecutive += 1
        self._errors.append(now)
        summary = (
            f"error: {self._consecutive} in a row (limit {policy.consecutive_failures}), "
            f"{len(self._errors)} in {policy.window_s:g} s (limit {policy.window_failures}){_detail(reason)}"
        )
        if self._consecutive >= policy.consecutive_failures or len(self._errors) >= policy.window_failures:
            return self._trip(now, summary)
        self._last_reason = summary
        return Continue()

    def _while_open(self, now: float, kind: FailureKind, reason: str) -> Decision:
        if not self._restart_pending:
            return Open(f"{kind.value} while open: {self._last_reason}")
        if kind is FailureKind.ERROR:
            return Continue()  # more of the batch that tripped: the restart already decided covers it
        return self._trip(now, f"{kind.value} while restarting{_detail(reason)}")

    def _trip(self, now: float, why: str) -> Decision:
        policy = self._policy
        self._consecutive = 0
        self._errors.clear()
        if len(self._restarts) >= policy.restart_budget:
            return self._hold_open(
                now,
                f"restart budget exhausted: {len(self._restarts)} restarts in {policy.budget_window_s:g} s; "
                f"last failure {why}; resume to restart",
            )
        self._backoff_step += 1
        self._restarts.append(now)
        self._total_restarts += 1
        delay = backoff_delay(policy, self._backoff_step, self._rng())
        reason = (
            f"{why}; restart {len(self._restarts)} of {policy.restart_budget} in {policy.budget_window_s:g} s "
            f"(backoff step {self._backoff_step}) after {delay:.2f} s"
        )
        self._open(now, reason)
        self._restart_pending = True
        return Restart(after_s=delay, reason=reason)

    def _hold_open(self, now: float, reason: str) -> Open:
        self._open(now, reason)
        self._restart_pending = False
        return Open(reason)

    def _open(self, now: float, reason: str) -> None:
        if self._state is not BreakerState.OPEN:
            self._opened_at = now
        self._state = BreakerState.OPEN
        self._last_reason = reason

"""CircuitBreaker: thresholds, backoff, restart budget, half-open trials, stable resets, operator controls."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from host.supervisor.policy import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Continue,
    FailureKind,
    Open,
    Restart,
    backoff_delay,
)
from tests.helpers import ManualClock

NO_JITTER = 0.5  # a draw of 0.5 makes the jitter factor exactly 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make(clock: ManualClock) -> Callable[..., CircuitBreaker]:
    """Build a breaker on the fake clock with a fixed draw and policy overrides."""

    def build(draw: float = NO_JITTER, **overrides: object) -> CircuitBreaker:
        return CircuitBreaker(BreakerPolicy(**overrides), clock, rng=lambda: draw)  # type: ignore[arg-type]

    return build


@pytest.fixture
def breaker(make: Callable[..., CircuitBreaker]) -> CircuitBreaker:
    return make()


def errors(breaker: CircuitBreaker, count: int) -> list[object]:
    return [breaker.record_failure(FailureKind.ERROR, "boom") for _ in range(count)]


def restart_cycle(breaker: CircuitBreaker, kind: FailureKind = FailureKind.CRASH) -> object:
    """A failure that restarts, then the replacement starts: the breaker is left HALF_OPEN."""
    decision = breaker.record_failure(kind, "exit -9")
    breaker.runner_started()
    return decision


class TestBreakerPolicy:
    def test_defaults_are_valid(self) -> None:
        """The default policy passes its own validation."""
        BreakerPolicy().validate()

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("consecutive_failures", 0),
            ("consecutive_failures", -1),
            ("consecutive_failures", 2.5),
            ("window_failures", 0),
            ("window_s", 0.0),
            ("window_s", math.nan),
            ("backoff_initial_s", 0.0),
            ("backoff_initial_s", -0.5),
            ("backoff_max_s", 0.25),
            ("backoff_max_s", math.inf),
            ("backoff_multiplier", 0.5),
            ("jitter", 1.0),
            ("jitter", -0.1),
            ("restart_budget", 0),
            ("restart_budget", True),
            ("budget_window_s", -1.0),
            ("stable_after_s", 0.0),
        ],
    )
    def test_nonsense_is_rejected_naming_the_field(self, field: str, value: object) -> None:
        """validate() raises ValueError whose message starts with the offending field and shows its value."""
        policy = BreakerPolicy(**{field: value})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=rf"^{field}: must .*, got ") as caught:
            policy.validate()
        assert repr(value) in str(caught.value)

    def test_breaker_refuses_an_invalid_policy(self, clock: ManualClock) -> None:
        """A breaker cannot be built on a policy that fails validation."""
        with pytest.raises(ValueError, match=r"^jitter:"):
            CircuitBreaker(BreakerPolicy(jitter=2.0), clock)


class TestBackoff:
    @pytest.mark.parametrize(
        ("step", "delay"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 16.0), (7, 30.0), (8, 30.0)]
    )
    def test_delay_doubles_up_to_the_cap(self, step: int, delay: float) -> None:
        """Without jitter the delay is initial * multiplier**(step-1), capped at backoff_max_s."""
        assert backoff_delay(BreakerPolicy(), step, NO_JITTER) == pytest.approx(delay)

    @pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.8), (0.25, 0.9), (0.5, 1.0), (0.75, 1.1), (1.0, 1.2)])
    def test_jitter_scales_within_its_bounds(self, draw: float, factor: float) -> None:
        """The draw maps linearly onto a factor in [1 - jitter, 1 + jitter], also on a capped delay."""
        policy = BreakerPolicy()
        assert backoff_delay(policy, 1, draw) == pytest.approx(0.5 * factor)
        assert backoff_delay(policy, 10, draw) == pytest.approx(30.0 * factor)

    def test_a_very_long_run_of_restarts_stays_capped(self) -> None:
        """A step far past the cap gives the cap instead of overflowing the power."""
        assert backoff_delay(BreakerPolicy(backoff_multiplier=10.0), 100_000, NO_JITTER) == 30.0

    def test_multiplier_one_keeps_the_initial_delay(self) -> None:
        """With multiplier 1 every restart waits backoff_initial_s."""
        assert backoff_delay(BreakerPolicy(backoff_multiplier=1.0), 50, NO_JITTER) == 0.5

    def test_breaker_applies_its_rng_to_the_delay(self, make: Callable[..., CircuitBreaker]) -> None:
        """The breaker's Restart delay uses the injected rng's draw for jitter."""
        decision = make(draw=1.0).record_failure(FailureKind.CRASH)
        assert isinstance(decision, Restart)
        assert decision.after_s == pytest.approx(0.6)


class TestErrorThresholds:
    def test_one_error_short_of_consecutive_limit_continues(self, breaker: CircuitBreaker) -> None:
        """consecutive_failures - 1 ERRORs in a row are counted and answered Continue."""
        assert errors(breaker, 4) == [Continue()] * 4
        assert breaker.state is BreakerState.CLOSED
        assert breaker.status().consecutive_failures == 4

    def test_consecutive_limit_trips_to_restart(self, breaker: CircuitBreaker) -> None:
        """The ERROR that reaches consecutive_failures trips the breaker into a Restart."""
        errors(breaker, 4)
        decision = breaker.record_failure(FailureKind.ERROR, "ZeroDivisionError")
        assert isinstance(decision, Restart)
        assert decision.after_s == 0.5
        assert breaker.state is BreakerState.OPEN

    def test_trip_reason_names_kind_and_numbers(self, breaker: CircuitBreaker) -> None:
        """A trip's reason names the kind, the counts with their limits and the restart it orders."""
        decision = errors(breaker, 5)[-1]
        assert isinstance(decision, Restart)
        assert decision.reason == (
            "error: 5 in a row (limit 5), 5 in 60 s (limit 20): boom; "
            "restart 1 of 5 in 300 s (backoff step 1) after 0.50 s"
        )

    def test_success_breaks_the_run_of_errors(self, breaker: CircuitBreaker) -> None:
        """A success resets the consecutive count, so errors either side of it do not add up."""
        errors(breaker, 4)
        breaker.record_success()
        assert errors(breaker, 4) == [Continue()] * 4

    def test_one_error_short_of_window_limit_continues(self, make: Callable[..., CircuitBreaker]) -> None:
        """window_failures - 1 ERRORs inside the window, broken up by successes, are answered Continue."""
        breaker = make(window_failures=3)
        decisions = []
        for _ in range(2):
            decisions += errors(breaker, 1)
            breaker.record_success()
        assert decisions == [Continue()] * 2
        assert breaker.status().failures_in_window == 2

    def test_window_limit_trips_to_restart(self, make: Callable[..., CircuitBreaker]) -> None:
        """The ERROR that makes window_failures within window_s trips, even with successes in between."""
        breaker = make(window_failures=3)
        for _ in range(2):
            errors(breaker, 1)
            breaker.record_success()
        decision = breaker.record_failure(FailureKind.ERROR)
        assert isinstance(decision, Restart)
        assert "3 in 60 s (limit 3)" in decision.reason

    def test_errors_slide_out_of_the_window(self, make: Callable[..., CircuitBreaker], clock: ManualClock) -> None:
        """An ERROR window_s old no longer counts toward window_failures."""
        breaker = make(window_failures=3, consecutive_failures=100, stable_after_s=1000.0)
        errors(breaker, 2)
        clock.advance(60.0)
        assert breaker.status().failures_in_window == 0
        assert errors(breaker, 2) == [Continue()] * 2

    def test_window_counts_errors_younger_than_window_s(
        self, make: Callable[..., CircuitBreaker], clock: ManualClock
    ) -> None:
        """ERRORs less than window_s apart still add up to a trip."""
        breaker = make(window_failures=3, consecutive_failures=100, stable_after_s=1000.0)
        errors(breaker, 2)
        clock.advance(59.9)
        assert isinstance(breaker.record_failure(FailureKind.ERROR), Restart)

    def test_continue_records_the_counts_as_last_reason(self, breaker: CircuitBreaker) -> None:
        """A counted ERROR leaves its counts in status().last_reason for the operator."""
        errors(breaker, 2)
        assert breaker.status().last_reason == "error: 2 in a row (limit 5), 2 in 60 s (limit 20): boom"


class TestRunnerLost:
    @pytest.mark.parametrize("kind", [FailureKind.TIMEOUT, FailureKind.CRASH, FailureKind.CPU, FailureKind.ORDER_FLOOD])
    def test_first_failure_restarts_with_initial_backoff(self, breaker: CircuitBreaker, kind: FailureKind) -> None:
        """TIMEOUT, CRASH, CPU and ORDER_FLOOD need a new runner at once: Restart after backoff_initial_s."""
        decision = breaker.record_failure(kind, "deadline 0.5 s")
        assert isinstance(decision, Restart)
        assert decision.after_s == 0.5
        assert decision.reason.startswith(f"{kind.value}: deadline 0.5 s; restart 1 of 5")

    @pytest.mark.parametrize("kind", [FailureKind.CPU, FailureKind.ORDER_FLOOD])
    def test_repeated_charges_open_past_the_budget(self, breaker: CircuitBreaker, kind: FailureKind) -> None:
        """A hog charged again after each restart is held open once the restart budget is spent."""
        decisions = []
        for _ in range(6):
            decisions.append(breaker.record_failure(kind, "hog"))
            breaker.runner_started()
        assert [type(d) for d in decisions] == [Restart] * 5 + [Open]
        assert breaker.status().failures_by_kind[kind.value] == 6

    def test_restart_opens_until_the_replacement_starts(self, breaker: CircuitBreaker) -> None:
        """After a Restart the breaker is OPEN; runner_started() moves it to HALF_OPEN."""
        breaker.record_failure(FailureKind.CRASH)
        assert breaker.status().state is BreakerState.OPEN
        breaker.runner_started()
        assert breaker.status().state is BreakerState.HALF_OPEN

    def test_opened_at_is_the_trip_time(self, breaker: CircuitBreaker, clock: ManualClock) -> None:
        """status().opened_at is the clock time of the trip while OPEN, and None once HALF_OPEN."""
        breaker.record_failure(FailureKind.TIMEOUT)
        clock.advance(0.5)
        assert breaker.status().opened_at == 1000.0
        breaker.runner_started()
        assert breaker.status().opened_at is None

    def test_errors_after_the_trip_in_one_batch_are_absorbed(self, breaker: CircuitBreaker) -> None:
        """ERRORs reported after the one that tripped (the rest of its batch) answer Continue and use no budget."""
        decisions = errors(breaker, 8)
        assert [type(d) for d in decisions] == [Continue] * 4 + [Restart] + [Continue] * 3
        assert breaker.status().restarts_in_budget == 1
        assert breaker.state is BreakerState.OPEN

    @pytest.mark.parametrize("kind", [FailureKind.TIMEOUT, FailureKind.CRASH])
    def test_replacement_lost_before_it_started_trips_again(self, breaker: CircuitBreaker, kind: FailureKind) -> None:
        """A TIMEOUT or CRASH while a restart is pending (no runner_started yet) restarts with the next backoff."""
        breaker.record_failure(FailureKind.CRASH)
        decision = breaker.record_failure(kind, "no Ready within 5 s")
        assert isinstance(decision, Restart)
        assert decision.after_s == 1.0
        assert decision.reason.startswith(f"{kind.value} while restarting: no Ready within 5 s; restart 2 of 5")

    def test_late_success_while_restart_pending_is_ignored(self, breaker: CircuitBreaker) -> None:
        """A success from the runner being replaced does not close the breaker."""
        breaker.record_failure(FailureKind.CRASH)
        breaker.record_success()
        assert breaker.state is BreakerState.OPEN


class TestHalfOpen:
    def test_first_success_closes(self, breaker: CircuitBreaker) -> None:
        """In HALF_OPEN the replacement's first success closes the breaker."""
        restart_cycle(breaker)
        breaker.record_success()
        assert breaker.state is BreakerState.CLOSED

    @pytest.mark.parametrize("kind", [FailureKind.ERROR, FailureKind.TIMEOUT, FailureKind.CRASH])
    def test_any_failure_reopens_with_larger_backoff(self, breaker: CircuitBreaker, kind: FailureKind) -> None:
        """A failure in HALF_OPEN, even one ERROR, trips again with the next backoff step."""
        restart_cycle(breaker)
        decision = breaker.record_failure(kind, "again")
        assert isinstance(decision, Restart)
        assert decision.after_s == 1.0
        assert decision.reason.startswith(f"{kind.value} while half-open: again; restart 2 of 5")

    def test_backoff_keeps_growing_across_closed_periods(self, breaker: CircuitBreaker, clock: ManualClock) -> None:
        """Closing after a success does not reset the backoff: only a stable period does."""
        restart_cycle(breaker)
        breaker.record_success()
        clock.advance(10.0)
        decision = breaker.record_failure(FailureKind.CRASH)
        assert isinstance(decision, Restart)
        assert decision.after_s == 1.0

    def test_counters_start_fresh_after_a_trip(self, breaker: CircuitBreaker) -> None:
        """A trip clears the ERROR counts, so the closed replacement needs a full run of errors to trip."""
        errors(breaker, 5)
        breaker.runner_started()
        breaker.record_success()
        assert errors(breaker, 4) == [Continue()] * 4


class TestRestartBudget:
    def test_restart_within_budget(self, make: Callable[..., CircuitBreaker]) -> None:
        """restart_budget restarts inside budget_window_s are all allowed."""
        breaker = make(restart_budget=3)
        assert all(isinstance(restart_cycle(breaker), Restart) for _ in range(3))

    def test_restart_past_budget_opens_naming_the_numbers(self, breaker: CircuitBreaker) -> None:
        """The failure after restart_budget restarts opens, saying how many restarts in how long."""
        for _ in range(5):
            restart_cycle(breaker)
        decision = breaker.record_failure(FailureKind.CRASH, "exit 1")
        assert isinstance(decision, Open)
        assert decision.reason == (
            "restart budget exhausted: 5 restarts in 300 s; last failure crash while half-open: exit 1; "
            "resume to restart"
        )
        assert breaker.state is BreakerState.OPEN

    def test_exhausted_budget_stays_open(self, make: Callable[..., CircuitBreaker], clock: ManualClock) -> None:
        """Once the budget is exhausted, time passing, runner_started and more failures all leave it OPEN."""
        breaker = make(restart_budget=1)
        restart_cycle(breaker)
        breaker.record_failure(FailureKind.CRASH)
        clock.advance(10_000.0)
        breaker.runner_started()
        breaker.record_success()
        decision = breaker.record_failure(FailureKind.TIMEOUT)
        assert isinstance(decision, Open)
        assert decision.reason.startswith("timeout while open: restart budget exhausted: 1 restarts in 300 s")
        assert breaker.state is BreakerState.OPEN

    def test_budget_window_slides(self, make: Callable[..., CircuitBreaker], clock: ManualClock) -> None:
        """A restart budget_window_s old no longer counts against the budget."""
        breaker = make(restart_budget=2)
        restart_cycle(breaker)
        clock.advance(200.0)
        restart_cycle(breaker)
        clock.advance(100.0)
        assert breaker.status().restarts_in_budget == 1
        assert isinstance(breaker.record_failure(FailureKind.CRASH), Restart)

    def test_budget_counts_restarts_younger_than_the_window(
        self, make: Callable[..., CircuitBreaker], clock: ManualClock
    ) -> None:
        """Just inside budget_window_s the oldest restart still counts, so the budget is exhausted."""
        breaker = make(restart_budget=2)
        restart_cycle(breaker)
        clock.advance(200.0)
        restart_cycle(breaker)
        clock.advance(99.9)
        assert isinstance(breaker.record_failure(FailureKind.CRASH), Open)


class TestStablePeriod:
    def test_stable_period_resets_error_counts(self, breaker: CircuitBreaker, clock: ManualClock) -> None:
        """stable_after_s with no failure resets the consecutive and window counts."""
        errors(breaker, 4)
        clock.advance(60.0)
        assert breaker.status().consecutive_failures == 0
        assert breaker.status().failures_in_window == 0
        assert errors(breaker, 4) == [Continue()] * 4

    def test_just_short_of_stable_keeps_counting(self, breaker: CircuitBreaker, clock: ManualClock) -> None:
        """Less than stable_after_s since the last failure keeps the run of errors going."""
        errors(breaker, 4)
        clock.advance(59.0)
        assert isinstance(breaker.record_failure(FailureKind.ERROR), Restart)

    def test_stable_period_resets_backoff(self, breaker: CircuitBreaker, clock: ManualClock) -> None:
        """After a replacement serves stable_after_s without failure, the next restart waits backoff_initial_s."""
        restart_cycle(breaker)
        restart_cycle(breaker)
        breaker.record_success()
        clock.advance(60.0)
        decision = breaker.record_failure(FailureKind.CRASH)
        assert isinstance(decision, Restart)
        assert decision.after_s == 0.5

    def test_stable_period_counts_from_the_replacement_start(self, breaker: CircuitBreaker, clock: ManualClock) -> None:
        """Time spent OPEN waiting for the replacement is not serving, so it does not reset the backoff."""
        breaker.record_failure(FailureKind.CRASH)
        clock.advance(100.0)
        breaker.runner_started()
        clock.advance(30.0)
        decision = breaker.record_failure(FailureKind.CRASH)
        assert isinstance(decision, Restart)
        assert decision.after_s == 1.0

    def test_stable_period_keeps_the_budget(self, make: Callable[..., CircuitBreaker], clock: ManualClock) -> None:
        """A stable period resets the backoff but not the restarts counted in the budget window."""
        breaker = make(restart_budget=1)
        restart_cycle(breaker)
        breaker.record_success()
        clock.advance(60.0)
        assert isinstance(breaker.record_failure(FailureKind.CRASH), Open)


class TestBoot:
    def test_boot_error_opens_immediately(self, breaker: CircuitBreaker) -> None:
        """BOOT opens on the first occurrence, and the reason asks for a fix and a resume."""
        decision = breaker.record_failure(FailureKind.BOOT, "PluginLoadError: no module named 'mm'")
        assert decision == Open(
            "boot error: PluginLoadError: no module named 'mm'; not restarted: fix the plugin or its config, "
            "then resume"
        )
        assert breaker.state is BreakerState.OPEN

    def test_boot_error_never_restarts(self, breaker: CircuitBreaker, clock: ManualClock) -> None:
        """After BOOT, later failures answer Open, runner_started does nothing and no restart is counted."""
        breaker.record_failure(FailureKind.BOOT)
        clock.advance(1000.0)
        breaker.runner_started()
        assert isinstance(breaker.record_failure(FailureKind.CRASH), Open)
        assert breaker.state is BreakerState.OPEN
        assert breaker.status().total_restarts == 0

    @pytest.mark.parametrize("runner_started", [False, True])
    def test_boot_error_of_a_replacement_opens(self, breaker: CircuitBreaker, runner_started: bool) -> None:
        """A replacement that fails to boot opens the breaker, whether or not runner_started was called."""
        breaker.record_failure(FailureKind.CRASH)
        if runner_started:
            breaker.runner_started()
        assert isinstance(breaker.record_failure(FailureKind.BOOT), Open)
        breaker.runner_started()
        assert breaker.state is BreakerState.OPEN


class TestOperator:
    def test_pause_opens_and_records_who(self, breaker: CircuitBreaker) -> None:
        """pause() opens the breaker, marks it paused by the operator and keeps the given reason."""
        breaker.pause("maintenance")
        status = breaker.status()
        assert (status.state, status.paused_by_operator, status.last_reason) == (BreakerState.OPEN, True, "maintenance")
        assert status.opened_at == 1000.0

    @pytest.mark.parametrize("kind", list(FailureKind))
    def test_failure_while_paused_answers_open(self, breaker: CircuitBreaker, kind: FailureKind) -> None:
        """While paused every failure answers Open naming the kind and the pause, never Restart."""
        breaker.pause()
        assert breaker.record_failure(kind) == Open(f"{kind.value} while paused: paused by operator; resume to restart")

    def test_pause_cancels_a_pending_restart(self, breaker: CircuitBreaker) -> None:
        """Pausing during a restart's backoff keeps the breaker OPEN even if the replacement starts."""
        breaker.record_failure(FailureKind.CRASH)
        breaker.pause()
        breaker.runner_started()
        assert breaker.state is BreakerState.OPEN

    def test_resume_goes_half_open(self, breaker: CircuitBreaker) -> None:
        """resume() clears the pause and leaves the breaker HALF_OPEN for a fresh runner."""
        breaker.pause()
        breaker.resume()
        status = breaker.status()
        assert (status.state, status.paused_by_operator, status.opened_at) == (BreakerState.HALF_OPEN, False, None)

    def test_resume_clears_budget_counters_and_backoff(self, make: Callable[..., CircuitBreaker]) -> None:
        """After resume an exhausted breaker restarts again, from the initial backoff."""
        breaker = make(restart_budget=2)
        for _ in range(3):
            restart_cycle(breaker)
        breaker.resume()
        assert breaker.status().restarts_in_budget == 0
        decision = breaker.record_failure(FailureKind.CRASH)
        assert isinstance(decision, Restart)
        assert decision.after_s == 0.5

    def test_resume_keeps_the_totals(self, breaker: CircuitBreaker) -> None:
        """resume() does not erase history: total_restarts and failures_by_kind survive."""
        restart_cycle(breaker)
        breaker.resume()
        status = breaker.status()
        assert (status.total_restarts, status.failures_by_kind["crash"]) == (1, 1)


class TestStatus:
    def test_fresh_breaker(self, breaker: CircuitBreaker) -> None:
        """A new breaker is CLOSED with zero counts for every kind."""
        status = breaker.status()
        assert status.state is BreakerState.CLOSED
        kinds = ("error", "timeout", "crash", "boot", "cpu", "order_flood", "protocol")
        assert dict(status.failures_by_kind) == dict.fromkeys(kinds, 0)
        assert (status.consecutive_failures, status.total_restarts, status.opened_at) == (0, 0, None)

    def test_failures_by_kind_counts_every_report(self, breaker: CircuitBreaker) -> None:
        """failures_by_kind counts each reported failure by kind."""
        errors(breaker, 2)
        breaker.record_failure(FailureKind.TIMEOUT)
        breaker.record_failure(FailureKind.CRASH)
        breaker.record_failure(FailureKind.PROTOCOL)
        breaker.record_failure(FailureKind.BOOT)
        expected = {"error": 2, "timeout": 1, "crash": 1, "boot": 1, "cpu": 0, "order_flood": 0, "protocol": 1}
        assert dict(breaker.status().failures_by_kind) == expected

    def test_failures_by_kind_is_a_snapshot(self, breaker: CircuitBreaker) -> None:
        """A status taken earlier does not change when more failures are recorded."""
        status = breaker.status()
        errors(breaker, 1)
        assert status.failures_by_kind["error"] == 0

    def test_total_restarts_outlive_the_budget_window(self, breaker: CircuitBreaker, clock: ManualClock) -> None:
        """total_restarts keeps counting after restarts leave the budget window."""
        restart_cycle(breaker)
        clock.advance(400.0)
        restart_cycle(breaker)
        status = breaker.status()
        assert (status.restarts_in_budget, status.total_restarts) == (1, 2)

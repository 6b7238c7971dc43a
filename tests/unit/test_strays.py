"""The stray budget: unasked-for runner messages, when they become a charge, and what they may log."""

from __future__ import annotations

from host.strays import StrayBudget, StrayPolicy
from tests.helpers import ManualClock

POLICY = StrayPolicy(burst=5, rate_per_s=2.0, log_every_s=10.0)


class TestStrayBudget:
    def test_strays_within_the_burst_are_not_charged(self) -> None:
        """Up to ``burst`` strays at once are tolerated."""
        budget = StrayBudget(POLICY, ManualClock())
        assert not any(budget.note().over_budget for _ in range(5))

    def test_the_stray_past_the_burst_is_over_budget(self) -> None:
        """The first stray that finds the bucket empty is a flood."""
        budget = StrayBudget(POLICY, ManualClock())
        for _ in range(5):
            budget.note()
        assert budget.note().over_budget
        assert budget.total == 6

    def test_the_bucket_refills_with_time(self) -> None:
        """A sustained rate at or under ``rate_per_s`` is never charged."""
        clock = ManualClock()
        budget = StrayBudget(POLICY, clock)
        for _ in range(100):
            clock.advance(0.5)
            assert not budget.note().over_budget

    def test_one_log_line_per_window_names_the_suppressed(self) -> None:
        """The first stray of a window is logged; the next logged line names how many were not."""
        clock = ManualClock()
        budget = StrayBudget(StrayPolicy(burst=1000, rate_per_s=0.0, log_every_s=10.0), clock)
        verdicts = [budget.note() for _ in range(50)]
        assert [v.log for v in verdicts].count(True) == 1
        clock.advance(10.0)
        verdict = budget.note()
        assert verdict.log and verdict.suppressed == 49

    def test_the_charging_stray_is_always_logged(self) -> None:
        """The stray that goes over budget is logged even inside a quiet window (it ends the runner)."""
        budget = StrayBudget(StrayPolicy(burst=3, rate_per_s=0.0, log_every_s=10.0), ManualClock())
        for _ in range(3):
            budget.note()
        verdict = budget.note()
        assert verdict.over_budget and verdict.log and verdict.suppressed == 2

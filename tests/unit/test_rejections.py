"""Rejected orders are logged as the first of a run and then counts per interval, never a line each."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from host.execution.rejections import RejectionLog, RejectionTally, Summary
from tests.helpers import ManualClock, wait_until


def lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] in ("order_rejected", "orders_rejected_summary")]


def counted(logs: list[dict[str, Any]], strategy: str, reason: str) -> int:
    """How many rejections the log accounts for: one per order_rejected, count per summary."""
    total = 0
    for entry in lines(logs):
        if (entry["strategy"], entry["reason"]) == (strategy, reason):
            total += 1 if entry["event"] == "order_rejected" else entry["count"]
    return total


class TestRejectionTally:
    def test_the_first_rejection_opens_a_run_and_the_next_are_counted(self) -> None:
        """add() says True for the first of a (strategy, reason) and False for the ones after it."""
        tally = RejectionTally(10.0)
        assert tally.add("a", "stale", "m1", 0.0)
        assert not tally.add("a", "stale", "m2", 1.0)
        assert tally.add("a", "max_position_size", "m3", 1.0) and tally.add("b", "stale", "m4", 1.0)

    def test_a_summary_comes_when_the_interval_ends_with_the_count_and_latest_message(self) -> None:
        """Three more within 10 s: nothing due at 9.9 s, one summary of 3 at 10 s with the latest message."""
        tally = RejectionTally(10.0)
        tally.add("a", "stale", "first", 0.0)
        for n in range(3):
            tally.add("a", "stale", f"again {n}", 1.0 + n)
        assert tally.due(9.9) == []
        assert tally.due(10.0) == [Summary("a", "stale", 3, 10.0, "again 2")]

    def test_a_quiet_interval_closes_the_run(self) -> None:
        """An interval with no rejection closes the run: the next one opens a new run (logged at once)."""
        tally = RejectionTally(10.0)
        tally.add("a", "stale", "m", 0.0)
        assert tally.due(10.0) == [] and tally.next_due() is None
        assert tally.add("a", "stale", "m", 11.0)

    def test_flush_returns_every_pending_count_and_closes_every_run(self) -> None:
        """At shutdown what was counted and not yet logged comes out, whatever the interval."""
        tally = RejectionTally(10.0)
        tally.add("a", "stale", "m", 0.0)
        tally.add("a", "stale", "m", 1.0)
        tally.add("b", "stale", "m", 1.0)
        assert tally.flush(2.0) == [Summary("a", "stale", 1, 2.0, "m")]
        assert tally.next_due() is None

    def test_the_interval_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="interval_s"):
            RejectionTally(0.0)


class TestRejectionLog:
    def test_a_thousand_rejections_make_a_bounded_number_of_lines_that_add_up(self) -> None:
        """1,000 rejections of 2 strategies x 2 reasons over 60 s (10 s interval): 4 first lines and one
        summary per run per interval, 28 lines in all, whose counts add up to 1,000."""
        clock = ManualClock(0.0)
        rejections = RejectionLog(clock, interval_s=10.0)
        keys = [("alpha", "stale_reference_price"), ("alpha", "max_position_size"), ("beta", "stale_reference_price"),
                ("beta", "kill_switch")]  # fmt: skip
        with capture_logs() as logs:
            for n in range(1000):
                strategy, reason = keys[n % 4]
                rejections.rejected(strategy, reason, f"{reason}: number {n}")
                clock.advance(0.06)
            rejections.flush()
        assert len(lines(logs)) == 4 + 4 * 6
        assert sum(1 for entry in logs if entry["event"] == "order_rejected") == 4
        assert all(counted(logs, strategy, reason) == 250 for strategy, reason in keys)

    def test_the_first_rejection_is_logged_at_once_with_its_detail(self) -> None:
        """order_rejected carries strategy, reason and the message (cut at 300 characters), as before."""
        rejections = RejectionLog(ManualClock(0.0))
        with capture_logs() as logs:
            rejections.rejected("alpha", "max_quantity", "max_quantity: " + "x" * 400)
        [entry] = lines(logs)
        assert entry["event"] == "order_rejected" and (entry["strategy"], entry["reason"]) == ("alpha", "max_quantity")
        assert entry["detail"].startswith("max_quantity: ") and len(entry["detail"]) == 300

    async def test_a_summary_is_written_when_the_interval_ends_without_another_rejection(self) -> None:
        """On a running loop the last interval's count is written by a timer, not left for the next rejection."""
        clock = ManualClock(0.0)
        rejections = RejectionLog(clock, interval_s=0.05)
        with capture_logs() as logs:
            rejections.rejected("alpha", "stale", "m")
            rejections.rejected("alpha", "stale", "m")
            clock.advance(0.05)
            await wait_until(lambda: any(e["event"] == "orders_rejected_summary" for e in logs), timeout=5)
            [summary] = [entry for entry in logs if entry["event"] == "orders_rejected_summary"]
            assert summary["count"] == 1
            clock.advance(0.05)
            await wait_until(lambda: rejections.tally.next_due() is None, timeout=5)
        assert len(lines(logs)) == 2

"""The fair-share judges: a runner's CPU over a window, and repeated order-quota rejections."""

from __future__ import annotations

import os

import pytest

from host.supervisor.cpuwatch import parse_stat
from host.supervisor.fairshare import CpuBudget, CpuExceeded, QuotaStrikes
from tests.helpers import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def feed(budget: CpuBudget, clock: ManualClock, cores: float, seconds: int, pid: int = 7, start: float = 0.0) -> list:
    """One sample a second of a runner using ``cores``; the verdicts, in order."""
    verdicts = []
    used = start
    for i in range(seconds):
        if i:
            clock.advance(1.0)
            used += cores
        verdicts.append(budget.observe(pid, used))
    return verdicts


class TestCpuBudget:
    def test_under_share_is_never_charged(self, clock: ManualClock) -> None:
        """0.3 cores against a 0.5 share: nothing, however long."""
        budget = CpuBudget(0.5, 10.0, clock)
        assert feed(budget, clock, 0.3, 60) == [None] * 60

    def test_hog_charged_once_the_window_is_full(self, clock: ManualClock) -> None:
        """1.6 cores is judged only once the samples span the window, then reported with its share."""
        budget = CpuBudget(0.5, 10.0, clock)
        verdicts = feed(budget, clock, 1.6, 11)
        assert verdicts[:9] == [None] * 9  # 0..8 s span: not a full window yet
        over = verdicts[9]
        assert isinstance(over, CpuExceeded)
        assert over.share == pytest.approx(1.6) and over.limit == 0.5 and over.span_s == pytest.approx(9.0)
        assert over.reason == "cpu: 1.60 cores over 9.0 s > limit 0.5"

    def test_a_burst_averages_out(self, clock: ManualClock) -> None:
        """A second at a full core (start-up imports) inside an idle window is under 0.5 on average."""
        budget = CpuBudget(0.5, 10.0, clock)
        budget.observe(7, 0.0)
        clock.advance(1.0)
        budget.observe(7, 1.0)
        assert feed(budget, clock, 0.05, 30, start=1.0) == [None] * 30

    def test_window_slides(self, clock: ManualClock) -> None:
        """Old idle samples leave the window: a hog that starts late is charged ~a window later."""
        budget = CpuBudget(0.5, 10.0, clock)
        assert feed(budget, clock, 0.0, 30) == [None] * 30
        verdicts = feed(budget, clock, 1.0, 12, start=0.0)
        first = next(i for i, v in enumerate(verdicts) if v is not None)
        assert 5 <= first <= 11

    def test_new_runner_starts_a_new_series(self, clock: ManualClock) -> None:
        """Another pid (the replacement) is judged from its own first sample, not the old counter."""
        budget = CpuBudget(0.5, 10.0, clock)
        feed(budget, clock, 1.6, 5, pid=7)
        clock.advance(1.0)
        assert feed(budget, clock, 1.6, 9, pid=8) == [None] * 9
        assert budget.measured() == pytest.approx(1.6)

    def test_reset_forgets(self, clock: ManualClock) -> None:
        """After reset (a charge), the same runner needs a full window again."""
        budget = CpuBudget(0.5, 10.0, clock)
        feed(budget, clock, 1.6, 11)
        budget.reset()
        assert budget.measured() is None
        assert feed(budget, clock, 1.6, 9, start=100.0) == [None] * 9

    @pytest.mark.parametrize(("share", "window"), [(0.0, 10.0), (-1.0, 10.0), (0.5, 0.0), (float("nan"), 1.0)])
    def test_bad_settings_are_refused(self, clock: ManualClock, share: float, window: float) -> None:
        """A share or window that is not a finite number > 0 is a ValueError."""
        with pytest.raises(ValueError):
            CpuBudget(share, window, clock)


class TestQuotaStrikes:
    def test_strikes_within_window_charge_once(self, clock: ManualClock) -> None:
        """The Nth rejection within the window is a charge; the count then starts over."""
        strikes = QuotaStrikes(3, 10.0, clock)
        assert [strikes.record() for _ in range(2)] == [None, None]
        assert strikes.record() == "order_flood: 3 orders rejected by its order-rate quota within 10 s"
        assert [strikes.record() for _ in range(2)] == [None, None]

    def test_spread_out_rejections_are_not_charged(self, clock: ManualClock) -> None:
        """A rejection now and then (fewer than N in any window) is only a rejection."""
        strikes = QuotaStrikes(3, 10.0, clock)
        results = []
        for _ in range(20):
            results.append(strikes.record())
            clock.advance(5.0)
        assert results == [None] * 20

    def test_reset(self, clock: ManualClock) -> None:
        """A new runner starts with no strikes."""
        strikes = QuotaStrikes(2, 10.0, clock)
        strikes.record()
        strikes.reset()
        assert strikes.record() is None


class TestProcStat:
    def test_parses_utime_and_stime(self) -> None:
        """utime + stime (fields 14, 15) in clock ticks; a command name with spaces and ')' is skipped."""
        fields = ["S", *(str(n) for n in range(4, 53))]  # fields 3.. of the line
        fields[14 - 3], fields[15 - 3] = "250", "150"
        seconds = parse_stat(f"42 (we ird) name) {' '.join(fields)}".encode())
        assert seconds == pytest.approx(400 / os.sysconf("SC_CLK_TCK"))

    def test_garbage_is_none(self) -> None:
        """Something that is not a stat line is None, never an exception."""
        assert parse_stat(b"") is None
        assert parse_stat(b"1 (x) S 1 2") is None

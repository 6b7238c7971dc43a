"""PositionCheck: venue position messages judged against the ledger's positions, on a manual clock."""

from __future__ import annotations

import pytest

from host.execution.position_check import Cleared, Disagreement, Mismatch, PositionCheck
from tests.helpers import NOON, SECOND, ManualClocks

SETTLE = 1.0


@pytest.fixture
def clock() -> ManualClocks:
    return ManualClocks()


@pytest.fixture
def check(clock: ManualClocks) -> PositionCheck:
    return PositionCheck(clock, settle_s=SETTLE, log_every_s=10.0)


def mismatches(judged: list[Cleared | Mismatch]) -> list[Mismatch]:
    return [j for j in judged if isinstance(j, Mismatch)]


class TestAgreement:
    def test_a_position_equal_to_the_ledgers_agrees_at_once(self, check: PositionCheck) -> None:
        """The venue says what the ledger holds: agreed on arrival, nothing waits, nothing counted."""
        check.ledger("alpha", "BTCUSDT", 0.5)
        assert check.venue("alpha", "BTCUSDT", 0.5, ledger=0.5) == []
        assert (check.checked, check.agreed, check.disagreed, check.pending) == (1, 1, 0, 0)

    def test_float_noise_is_within_the_tolerance(self, check: PositionCheck) -> None:
        """0.1 + 0.2 summed by the ledger and 0.3 said by the venue are the same position."""
        check.ledger("alpha", "BTCUSDT", 0.1 + 0.2)
        check.venue("alpha", "BTCUSDT", 0.3, ledger=0.1 + 0.2)
        assert (check.agreed, check.pending) == (1, 0)

    def test_a_position_before_its_fill_agrees_once_the_fill_is_recorded(
        self, check: PositionCheck, clock: ManualClocks
    ) -> None:
        """The venue's position beats the fill that explains it (core NATS): it waits, and the fill settles it."""
        check.ledger("alpha", "BTCUSDT", 1.0)
        assert check.venue("alpha", "BTCUSDT", 2.0, ledger=1.0) == []
        assert check.pending == 1
        clock.advance(0.05)
        assert check.ledger("alpha", "BTCUSDT", 2.0) == []
        clock.advance(SETTLE * 5)
        assert check.expire() == []
        assert (check.agreed, check.disagreed, check.current) == (1, 0, 0)

    def test_a_position_after_two_fills_agrees_with_the_one_it_follows(
        self, check: PositionCheck, clock: ManualClocks
    ) -> None:
        """Two fills recorded before the first fill's position arrives: the ledger held it a moment ago."""
        for quantity in (1.0, 2.0, 3.0):
            check.ledger("alpha", "BTCUSDT", quantity)
            clock.advance(0.01)
        assert check.venue("alpha", "BTCUSDT", 2.0, ledger=3.0) == []
        assert check.venue("alpha", "BTCUSDT", 3.0, ledger=3.0) == []
        clock.advance(SETTLE * 5)
        assert check.expire() == []
        assert (check.agreed, check.disagreed) == (2, 0)

    def test_positions_two_ahead_of_the_fills_agree(self, check: PositionCheck, clock: ManualClocks) -> None:
        """Two venue positions arrive before either fill: each agrees when its own fill is recorded."""
        check.ledger("alpha", "BTCUSDT", 0.0)
        check.venue("alpha", "BTCUSDT", 1.0, ledger=0.0)
        check.venue("alpha", "BTCUSDT", 2.0, ledger=0.0)
        clock.advance(0.2)
        check.ledger("alpha", "BTCUSDT", 1.0)
        check.ledger("alpha", "BTCUSDT", 2.0)
        clock.advance(SETTLE)
        assert check.expire() == []
        assert (check.agreed, check.disagreed) == (2, 0)

    def test_a_pair_the_check_never_saw_is_compared_with_the_ledgers_quantity(self, check: PositionCheck) -> None:
        """A first venue message for a pair is compared with what the ledger holds (from before this run)."""
        assert check.venue("alpha", "ETHUSDT", 4.0, ledger=4.0) == []
        assert check.agreed == 1


class TestDisagreement:
    def test_a_position_the_ledger_never_held_disagrees_after_the_settle_time(
        self, check: PositionCheck, clock: ManualClocks
    ) -> None:
        """A venue restarted from zero: its position waits settle_s unexplained, then is one mismatch, current."""
        check.ledger("alpha", "BTCUSDT", 5.0)
        clock.advance(2.0)
        assert check.venue("alpha", "BTCUSDT", 1.0, ledger=5.0) == []
        clock.advance(SETTLE - 0.01)
        assert check.expire() == []
        clock.advance(0.01)
        judged = check.expire()
        assert judged == [Mismatch(Disagreement("alpha", "BTCUSDT", 5.0, 1.0, NOON + 2 * SECOND),
                                   current=True, log=True, unlogged=0)]  # fmt: skip
        assert (check.disagreed, check.current, check.pending) == (1, 1, 0)

    def test_the_ledger_quantity_reported_is_the_one_after_the_fills_of_that_moment(
        self, check: PositionCheck, clock: ManualClocks
    ) -> None:
        """A fill recorded while the message waited (not the one it names) moves the ledger figure reported."""
        check.ledger("alpha", "BTCUSDT", 5.0)
        check.venue("alpha", "BTCUSDT", 1.0, ledger=5.0)
        clock.advance(0.1)
        check.ledger("alpha", "BTCUSDT", 6.0)
        clock.advance(SETTLE)
        [mismatch] = mismatches(check.expire())
        assert (mismatch.disagreement.ledger, mismatch.disagreement.venue) == (6.0, 1.0)

    def test_a_fill_after_the_window_explains_nothing(self, check: PositionCheck, clock: ManualClocks) -> None:
        """The ledger reaching the venue's figure later than settle_s after the message does not excuse it."""
        check.ledger("alpha", "BTCUSDT", 0.0)
        check.venue("alpha", "BTCUSDT", 2.0, ledger=0.0)
        clock.advance(SETTLE + 0.5)
        check.ledger("alpha", "BTCUSDT", 2.0)  # before expire() ran: still too late
        assert len(mismatches(check.expire())) == 1

    def test_a_quantity_held_longer_ago_than_the_window_does_not_excuse(
        self, check: PositionCheck, clock: ManualClocks
    ) -> None:
        """The ledger held 1.0 once, 5 s before: a venue saying 1.0 now is not explained by that."""
        check.ledger("alpha", "BTCUSDT", 1.0)
        clock.advance(0.1)
        check.ledger("alpha", "BTCUSDT", 2.0)
        clock.advance(5.0)
        check.venue("alpha", "BTCUSDT", 1.0, ledger=2.0)
        clock.advance(SETTLE)
        assert len(mismatches(check.expire())) == 1

    def test_an_agreeing_message_clears_the_current_mismatch(self, check: PositionCheck, clock: ManualClocks) -> None:
        """After a mismatch, a venue message that agrees ends it; the disagreement stays as the pair's latest."""
        check.ledger("alpha", "BTCUSDT", 5.0)
        check.venue("alpha", "BTCUSDT", 1.0, ledger=5.0)
        clock.advance(SETTLE)
        check.expire()
        assert check.venue("alpha", "BTCUSDT", 5.0, ledger=5.0) == [Cleared("alpha", "BTCUSDT", 5.0)]
        assert check.current == 0
        [pair] = check.pairs()
        assert (pair.strategy, pair.symbol, pair.disagreements, pair.current) == ("alpha", "BTCUSDT", 1, False)
        assert (pair.latest.ledger, pair.latest.venue) == (5.0, 1.0)

    def test_a_late_verdict_on_an_older_message_does_not_override_a_newer_one(
        self, check: PositionCheck, clock: ManualClocks
    ) -> None:
        """An old message found wrong after a newer one agreed is counted, but the pair is not in mismatch."""
        check.ledger("alpha", "BTCUSDT", 5.0)
        check.venue("alpha", "BTCUSDT", 1.0, ledger=5.0)
        check.venue("alpha", "BTCUSDT", 5.0, ledger=5.0)
        clock.advance(SETTLE)
        [mismatch] = mismatches(check.expire())
        assert mismatch.current is False
        assert (check.disagreed, check.current) == (1, 0)

    def test_current_mismatches_count_pairs(self, check: PositionCheck, clock: ManualClocks) -> None:
        """Two strategies' positions and three wrong messages: 3 disagreements, 2 pairs in mismatch now."""
        check.venue("alpha", "BTCUSDT", 1.0, ledger=5.0)
        check.venue("alpha", "BTCUSDT", 2.0, ledger=5.0)
        check.venue("beta", "ETHUSDT", -1.0, ledger=0.0)
        clock.advance(SETTLE)
        assert len(mismatches(check.expire())) == 3
        assert (check.disagreed, check.current) == (3, 2)
        assert [(p.strategy, p.symbol, p.disagreements, p.latest.venue) for p in check.pairs()] == [
            ("alpha", "BTCUSDT", 2, 2.0), ("beta", "ETHUSDT", 1, -1.0),
        ]  # fmt: skip

    def test_log_lines_are_rate_limited_per_pair(self, check: PositionCheck, clock: ManualClocks) -> None:
        """One log line per pair per log_every_s; the next line says how many went unlogged meanwhile."""
        logged = []
        for _ in range(4):
            check.venue("alpha", "BTCUSDT", 1.0, ledger=5.0)
            clock.advance(SETTLE)
            logged += [(m.log, m.unlogged) for m in mismatches(check.expire())]
        clock.advance(10.0)
        check.venue("alpha", "BTCUSDT", 1.0, ledger=5.0)
        clock.advance(SETTLE)
        logged += [(m.log, m.unlogged) for m in mismatches(check.expire())]
        assert logged == [(True, 0), (False, 0), (False, 0), (False, 0), (True, 3)]


class TestBounds:
    def test_pairs_are_bounded_and_the_least_recent_goes(self, clock: ManualClocks) -> None:
        """Past max_pairs the least recently touched pair is forgotten, its mismatch with it."""
        check = PositionCheck(clock, settle_s=SETTLE, max_pairs=2)
        for symbol in ("AAA", "BBB", "CCC"):
            check.venue("alpha", symbol, 1.0, ledger=0.0)
        clock.advance(SETTLE)
        assert [m.disagreement.symbol for m in mismatches(check.expire())] == ["BBB", "CCC"]
        check.venue("alpha", "DDD", 1.0, ledger=0.0)
        assert check.current == 1
        assert [p.symbol for p in check.pairs()] == ["CCC"]

    def test_waiting_messages_are_bounded_per_pair(self, clock: ManualClocks) -> None:
        """Past max_pending waiting messages the oldest is judged at once."""
        check = PositionCheck(clock, settle_s=SETTLE, max_pending=2)
        judged = [check.venue("alpha", "BTCUSDT", float(q), ledger=0.0) for q in (1, 2, 3)]
        assert judged[:2] == [[], []]
        assert [m.disagreement.venue for m in mismatches(judged[2])] == [1.0]
        assert check.pending == 2

    @pytest.mark.parametrize("kwargs", [{"settle_s": 0}, {"tolerance": -1}, {"max_pairs": 0}, {"max_pending": 0}])
    def test_bad_settings_are_refused(self, clock: ManualClocks, kwargs: dict[str, float]) -> None:
        """A window of 0, a negative tolerance or no room for pairs or messages is a ValueError."""
        with pytest.raises(ValueError, match="PositionCheck"):
            PositionCheck(clock, **kwargs)  # type: ignore[arg-type]

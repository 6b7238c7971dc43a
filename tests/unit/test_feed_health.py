"""FeedHealth: per-symbol sequence gaps, out-of-order updates, resets and staleness, on a fake clock."""

from __future__ import annotations

import pytest

from host.feeds.health import FeedHealth, Gap, Numbering, SymbolHealth
from sdk.events import Book, Tick, Trade
from tests.helpers import ManualClock

STALE_AFTER = 5.0


def tick(sequence: int, symbol: str = "BTCUSDT") -> Tick:
    return Tick(
        symbol=symbol,
        timestamp_ns=1_700_000_000_000_000_000,
        bid_price=100.0,
        bid_size=1.0,
        ask_price=100.5,
        ask_size=1.0,
        last_price=None,
        sequence=sequence,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def health(clock: ManualClock) -> FeedHealth:
    return FeedHealth(STALE_AFTER, clock)


def observe_all(health: FeedHealth, sequences: list[int], symbol: str = "BTCUSDT") -> list[Gap]:
    return [gap for s in sequences if (gap := health.observe(tick(s, symbol))) is not None]


def only(health: FeedHealth) -> SymbolHealth:
    (status,) = health.status()
    return status


class TestSequences:
    def test_consecutive_sequences_are_no_gap(self, health: FeedHealth) -> None:
        """1, 2, 3, 4 follow on: no Gap, nothing counted, the last sequence is 4."""
        assert observe_all(health, [1, 2, 3, 4]) == []
        status = only(health)
        assert (status.last_sequence, status.gaps, status.missing, status.out_of_order) == (4, 0, 0, 0)

    def test_first_numbered_update_sets_the_baseline(self, health: FeedHealth) -> None:
        """A stream first seen at 100 is not 99 updates missing: where it starts is no gap."""
        assert observe_all(health, [100, 101]) == []
        assert only(health).gaps == 0

    def test_jump_ahead_is_a_gap_with_the_number_missing(self, health: FeedHealth) -> None:
        """2 then 6: one Gap, 3 updates (3, 4, 5) missing."""
        gaps = observe_all(health, [1, 2, 6, 7])
        assert gaps == [Gap("BTCUSDT", 2, 6)]
        assert gaps[0].missing == 3 and not gaps[0].out_of_order
        status = only(health)
        assert (status.gaps, status.missing, status.last_sequence) == (1, 3, 7)

    def test_gaps_add_up(self, health: FeedHealth) -> None:
        """Each jump counts once and the missing updates of all jumps are summed."""
        observe_all(health, [1, 3, 4, 10])
        status = only(health)
        assert (status.gaps, status.missing) == (2, 1 + 5)

    def test_late_update_is_out_of_order_and_keeps_the_high_water_mark(self, health: FeedHealth) -> None:
        """1, 2, 4, 3, 5: 3 arrives late (out of order), and 5 after 4 is no second gap."""
        gaps = observe_all(health, [1, 2, 4, 3, 5])
        assert gaps == [Gap("BTCUSDT", 2, 4), Gap("BTCUSDT", 4, 3)]
        assert gaps[1].out_of_order and gaps[1].missing == 0
        status = only(health)
        assert (status.gaps, status.missing, status.out_of_order, status.last_sequence) == (1, 1, 1, 5)

    def test_duplicate_is_counted_as_out_of_order(self, health: FeedHealth) -> None:
        """The same sequence twice: the second is out of order (a duplicate)."""
        gaps = observe_all(health, [1, 2, 2, 3])
        assert gaps == [Gap("BTCUSDT", 2, 2)]
        assert only(health).out_of_order == 1

    def test_sequence_zero_is_never_checked(self, health: FeedHealth) -> None:
        """Sequence 0 means not numbered: no gap, no out of order, and the baseline is unchanged."""
        assert observe_all(health, [5, 0, 0, 6]) == []
        status = only(health)
        assert (status.updates, status.last_sequence, status.gaps, status.out_of_order) == (4, 6, 0, 0)

    def test_restart_at_one_is_a_reset_not_out_of_order(self, health: FeedHealth) -> None:
        """500 then 1, 2: the publisher started over; counted as a reset, the new stream is the baseline."""
        assert observe_all(health, [499, 500, 1, 2, 3]) == []
        status = only(health)
        assert (status.resets, status.out_of_order, status.last_sequence) == (1, 0, 3)

    def test_symbols_are_numbered_independently(self, health: FeedHealth) -> None:
        """Each symbol has its own sequence: interleaving two streams is no gap."""
        for s in range(1, 5):
            assert health.observe(tick(s, "BTCUSDT")) is None
            assert health.observe(tick(s + 100, "ETHUSDT")) is None
        assert health.observe(tick(7, "ETHUSDT")) == Gap("ETHUSDT", 104, 7)

    def test_types_share_one_sequence_per_symbol(self, health: FeedHealth) -> None:
        """A tick and a trade of one symbol are numbered in one stream, as the seed publishes them."""
        health.observe(tick(1))
        assert (
            health.observe(
                Trade(
                    symbol="BTCUSDT",
                    timestamp_ns=1,
                    last_price=100.0,
                    volume=1.0,
                    volume_quote=None,
                    side=None,
                    sequence=2,
                )
            )
            is None
        )
        assert health.observe(tick(3)) is None

    @pytest.mark.parametrize(
        ("sequences", "expected"),
        [
            ([1, 2, 3], (0, 0, 0, 0)),
            ([1, 3], (1, 1, 0, 0)),
            ([1, 2, 1], (0, 0, 0, 1)),  # 1 after a higher one: the publisher started over
            ([1, 1], (0, 0, 1, 0)),  # 1 twice: a duplicate
            ([3, 2, 1], (0, 0, 1, 1)),
            ([10, 20, 15, 21], (1, 9, 1, 0)),
        ],
    )
    def test_counts(self, health: FeedHealth, sequences: list[int], expected: tuple[int, int, int, int]) -> None:
        """(gaps, missing, out_of_order, resets) for a table of sequences."""
        observe_all(health, sequences)
        status = only(health)
        assert (status.gaps, status.missing, status.out_of_order, status.resets) == expected


def book(sequence: int, symbol: str = "BTCUSDT") -> Book:
    return Book(
        symbol=symbol,
        timestamp_ns=1_700_000_000_000_000_000,
        bids=((100.0, 1.0),),
        asks=((100.5, 1.0),),
        last_price=None,
        sequence=sequence,
    )


def trade(sequence: int, symbol: str = "BTCUSDT") -> Trade:
    return Trade(
        symbol=symbol,
        timestamp_ns=1_700_000_000_000_000_000,
        last_price=100.0,
        volume=1.0,
        volume_quote=None,
        side=None,
        sequence=sequence,
    )


class TestStreams:
    """A publisher numbering its families apart (b25's book update ids, trade ids): one stream each."""

    def test_two_streams_of_one_symbol_are_checked_apart(self, health: FeedHealth) -> None:
        """Book ids in the millions and trade ids in the billions, interleaved: neither is a gap of the other."""
        for i in range(3):
            assert health.observe(book(51_234_567 + i), "book", Numbering.RISING) is None
            assert health.observe(trade(3_061_234_567 + i), "trade") is None
        status = only(health)
        assert (status.gaps, status.out_of_order, status.updates) == (0, 0, 6)

    def test_a_gap_names_its_stream(self, health: FeedHealth) -> None:
        """Trade ids 10, 11, 14: two trades missing in the trade stream, whatever the book stream did."""
        observed = [health.observe(trade(10), "trade"), health.observe(book(7), "book", Numbering.RISING),
                    health.observe(trade(11), "trade"), health.observe(trade(14), "trade")]  # fmt: skip
        assert observed == [None, None, None, Gap("BTCUSDT", 11, 14, "trade")]
        assert observed[-1] is not None and observed[-1].missing == 2
        assert (only(health).gaps, only(health).missing) == (1, 2)

    def test_the_seed_stream_is_untouched_by_another(self, health: FeedHealth) -> None:
        """A seed tick stream (stream "") goes on at +1 while a b25 stream of the same symbol runs beside it."""
        assert health.observe(tick(1)) is None
        assert health.observe(book(900), "book", Numbering.RISING) is None
        assert health.observe(tick(2)) is None
        assert health.observe(tick(4)) == Gap("BTCUSDT", 2, 4)


class TestRisingNumbering:
    """Numbers that only rise, by any step per message (b25's last_update_id): only a step back counts."""

    def observe(self, health: FeedHealth, sequences: list[int]) -> list[Gap]:
        return [g for s in sequences if (g := health.observe(book(s), "book", Numbering.RISING)) is not None]

    def test_jumps_ahead_are_no_gap(self, health: FeedHealth) -> None:
        """100, 117, 250, 251: every step ahead follows on; nothing counted, the last is 251."""
        assert self.observe(health, [100, 117, 250, 251]) == []
        status = only(health)
        assert (status.gaps, status.missing, status.out_of_order, status.last_sequence) == (0, 0, 0, 251)

    def test_a_step_back_is_out_of_order_and_keeps_the_high_water_mark(self, health: FeedHealth) -> None:
        """100, 200, 150, 201: 150 is late; 201 after it follows on from 200."""
        assert self.observe(health, [100, 200, 150, 201]) == [Gap("BTCUSDT", 200, 150, "book")]
        status = only(health)
        assert (status.gaps, status.out_of_order, status.last_sequence) == (0, 1, 201)

    def test_a_repeat_is_out_of_order(self, health: FeedHealth) -> None:
        """The same update id twice: a duplicate."""
        assert self.observe(health, [100, 100]) == [Gap("BTCUSDT", 100, 100, "book")]

    def test_zero_is_not_numbered(self, health: FeedHealth) -> None:
        """0 is never checked, as in every stream."""
        assert self.observe(health, [100, 0, 101]) == []


class TestStaleness:
    def test_fresh_until_stale_after_passes(self, health: FeedHealth, clock: ManualClock) -> None:
        """A symbol is fresh just before stale_after with no update, stale at it."""
        health.observe(tick(1))
        clock.advance(STALE_AFTER - 0.5)
        assert not health.is_stale("BTCUSDT")
        clock.advance(0.5)
        assert health.is_stale("BTCUSDT")

    def test_an_update_makes_it_fresh_again(self, health: FeedHealth, clock: ManualClock) -> None:
        """Any update, even an out-of-order one, resets the symbol's age."""
        health.observe(tick(5))
        clock.advance(STALE_AFTER * 2)
        health.observe(tick(3))
        assert not health.is_stale("BTCUSDT")
        assert only(health).age_s == 0.0

    def test_a_symbol_never_seen_is_stale(self, health: FeedHealth) -> None:
        """No data at all is no price to trade on."""
        assert health.is_stale("SOLUSDT")
        assert health.stale_symbols() == []

    def test_stale_symbols_lists_only_the_quiet_ones_sorted(self, health: FeedHealth, clock: ManualClock) -> None:
        """Two quiet symbols are listed by name; the one that just updated is not."""
        for symbol in ("XRPUSDT", "BTCUSDT", "ETHUSDT"):
            health.observe(tick(1, symbol))
        clock.advance(STALE_AFTER)
        health.observe(tick(2, "ETHUSDT"))
        assert health.stale_symbols() == ["BTCUSDT", "XRPUSDT"]

    def test_status_reports_age_and_stale_per_symbol(self, health: FeedHealth, clock: ManualClock) -> None:
        """status() gives every symbol seen, sorted, with its age and stale flag."""
        health.observe(tick(1, "ETHUSDT"))
        clock.advance(6.0)
        health.observe(tick(1, "BTCUSDT"))
        clock.advance(1.5)
        assert [(s.symbol, s.age_s, s.stale, s.updates) for s in health.status()] == [
            ("BTCUSDT", 1.5, False, 1),
            ("ETHUSDT", 7.5, True, 1),
        ]

    @pytest.mark.parametrize("stale_after", [0.0, -1.0, float("nan")])
    def test_stale_after_must_be_positive(self, clock: ManualClock, stale_after: float) -> None:
        """A stale_after that is not > 0 is refused, naming the argument."""
        with pytest.raises(ValueError, match="stale_after_s"):
            FeedHealth(stale_after, clock)

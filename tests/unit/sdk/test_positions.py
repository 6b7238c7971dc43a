"""Position accounting from fills, checked against hand-computed numbers."""

from __future__ import annotations

import pytest

from sdk import Fill, Position, Side
from sdk._positions import PositionBook, PositionState

BUY, SELL = Side.BUY, Side.SELL
TS = 1_704_164_645_000_000_000


def state_after(*fills: tuple[Side, float, float] | tuple[Side, float, float, float]) -> PositionState:
    state = PositionState("BTCUSDT")
    for fill in fills:
        state.apply(*fill)
    return state


def fill(side: Side, quantity: float, price: float, fee: float = 0.0, symbol: str = "BTCUSDT") -> Fill:
    return Fill(
        fill_id="f", order_id="o", symbol=symbol, side=side, price=price, quantity=quantity, timestamp_ns=TS, fee=fee
    )


class TestPositionState:
    def test_starts_flat(self) -> None:
        """A new state is flat with no P&L."""
        state = PositionState("BTCUSDT")
        assert (state.quantity, state.avg_entry_price, state.realized_pnl, state.fees) == (0.0, 0.0, 0.0, 0.0)

    def test_open_long(self) -> None:
        """Buying 2 @ 100 from flat is long 2 at 100, nothing realized."""
        state = state_after((BUY, 2, 100))
        assert (state.quantity, state.avg_entry_price, state.realized_pnl) == (2.0, 100.0, 0.0)

    def test_open_short(self) -> None:
        """Selling 2 @ 50 from flat is short 2 at 50."""
        state = state_after((SELL, 2, 50))
        assert (state.quantity, state.avg_entry_price) == (-2.0, 50.0)

    def test_add_to_long_weights_the_average(self) -> None:
        """Long 2 @ 100 plus 1 @ 130 is long 3 at (200 + 130) / 3 = 110."""
        state = state_after((BUY, 2, 100), (BUY, 1, 130))
        assert state.quantity == 3.0
        assert state.avg_entry_price == pytest.approx(110.0)
        assert state.realized_pnl == 0.0

    def test_add_to_short_weights_the_average(self) -> None:
        """Short 1 @ 50 plus 3 @ 42 is short 4 at (50 + 126) / 4 = 44."""
        state = state_after((SELL, 1, 50), (SELL, 3, 42))
        assert state.quantity == -4.0
        assert state.avg_entry_price == pytest.approx(44.0)

    def test_partial_close_realizes_pnl(self) -> None:
        """Long 3 @ 110, selling 1 @ 120 realizes (120 - 110) * 1 = 10 and keeps the entry price."""
        state = state_after((BUY, 2, 100), (BUY, 1, 130))
        realized = state.apply(SELL, 1, 120)
        assert realized == pytest.approx(10.0)
        assert state.quantity == 2.0
        assert state.avg_entry_price == pytest.approx(110.0)
        assert state.realized_pnl == pytest.approx(10.0)

    def test_full_close_at_a_loss(self) -> None:
        """Long 3 @ 110 sold 3 @ 100 realizes -30 and is flat with no entry price."""
        state = state_after((BUY, 2, 100), (BUY, 1, 130), (SELL, 3, 100))
        assert (state.quantity, state.avg_entry_price) == (0.0, 0.0)
        assert state.realized_pnl == pytest.approx(-30.0)

    def test_cover_short_at_a_profit(self) -> None:
        """Short 2 @ 50 bought back 2 @ 40 realizes (40 - 50) * 2 * -1 = +20."""
        state = state_after((SELL, 2, 50), (BUY, 2, 40))
        assert state.quantity == 0.0
        assert state.realized_pnl == pytest.approx(20.0)

    def test_flip_long_to_short(self) -> None:
        """Long 2 @ 100, selling 5 @ 90 realizes -20 on 2 and opens short 3 at 90."""
        state = state_after((BUY, 2, 100))
        realized = state.apply(SELL, 5, 90)
        assert realized == pytest.approx(-20.0)
        assert (state.quantity, state.avg_entry_price) == (-3.0, 90.0)

    def test_flip_short_to_long(self) -> None:
        """Short 1 @ 50, buying 4 @ 45 realizes +5 on 1 and opens long 3 at 45."""
        state = state_after((SELL, 1, 50))
        assert state.apply(BUY, 4, 45) == pytest.approx(5.0)
        assert (state.quantity, state.avg_entry_price) == (3.0, 45.0)

    def test_fees_reduce_realized_pnl(self) -> None:
        """Buy 1 @ 100 fee 0.5 then sell 1 @ 110 fee 0.5: realized 10 - 1 = 9, fees 1."""
        state = PositionState("BTCUSDT")
        assert state.apply(BUY, 1, 100, 0.5) == pytest.approx(-0.5)
        assert state.apply(SELL, 1, 110, 0.5) == pytest.approx(9.5)
        assert state.realized_pnl == pytest.approx(9.0)
        assert state.fees == pytest.approx(1.0)

    def test_fee_does_not_move_entry_price(self) -> None:
        """A fee is charged to realized P&L, not folded into the average entry price."""
        assert state_after((BUY, 1, 100, 2.0)).avg_entry_price == 100.0

    def test_float_residue_counts_as_flat(self) -> None:
        """Three buys of 0.1 closed by one sell of 0.3 leave exactly flat, not 5e-17."""
        state = state_after((BUY, 0.1, 100), (BUY, 0.1, 100), (BUY, 0.1, 100), (SELL, 0.3, 100))
        assert (state.quantity, state.avg_entry_price) == (0.0, 0.0)

    def test_last_price_is_the_latest_fill(self) -> None:
        """Each fill records its price as the latest known price."""
        assert state_after((BUY, 1, 100), (BUY, 1, 104)).last_price == 104.0


class TestUnrealizedPnl:
    @pytest.mark.parametrize(
        ("fills", "mark", "expected"),
        [
            ([(BUY, 2, 100)], 105.0, 10.0),  # (105 - 100) * 2
            ([(BUY, 2, 100)], 95.0, -10.0),
            ([(SELL, 3, 90)], 80.0, 30.0),  # (80 - 90) * -3
            ([(SELL, 3, 90)], 95.0, -15.0),
            ([(BUY, 2, 100), (SELL, 2, 110)], 200.0, 0.0),  # flat
        ],
    )
    def test_at_a_mark(self, fills: list[tuple[Side, float, float]], mark: float, expected: float) -> None:
        """Unrealized P&L is (mark - entry) * signed quantity."""
        assert state_after(*fills).unrealized_pnl(mark) == pytest.approx(expected)

    def test_defaults_to_last_price(self) -> None:
        """Without a mark, the latest known price is used: long 1 @ 100 then 1 @ 110 marks at 110 for +10."""
        assert state_after((BUY, 1, 100), (BUY, 1, 110)).unrealized_pnl() == pytest.approx(10.0)

    def test_no_price_means_no_unrealized(self) -> None:
        """A non-positive mark (no price known) gives 0 rather than a bogus loss."""
        assert state_after((BUY, 1, 100)).unrealized_pnl(0.0) == 0.0


class TestSnapshot:
    def test_snapshot_is_an_immutable_position(self) -> None:
        """A snapshot carries quantity, entry, mark, both P&Ls, time and strategy."""
        state = state_after((BUY, 2, 100), (SELL, 1, 110))
        position = state.snapshot(TS, "mm", mark=120.0)
        assert position == Position(
            symbol="BTCUSDT",
            quantity=1.0,
            avg_entry_price=100.0,
            timestamp_ns=TS,
            current_price=120.0,
            unrealized_pnl=20.0,
            realized_pnl=10.0,
            strategy="mm",
        )

    def test_snapshot_without_mark_uses_last_price(self) -> None:
        """Without a mark the snapshot values the position at the latest fill price."""
        position = state_after((BUY, 2, 100), (BUY, 2, 110)).snapshot(TS)
        assert position.current_price == 110.0
        assert position.unrealized_pnl == pytest.approx(20.0)


class TestPositionBook:
    def test_apply_fill_returns_the_new_position(self) -> None:
        """Applying a fill returns the symbol's position after it, stamped with the fill time and strategy."""
        book = PositionBook("mm")
        position = book.apply_fill(fill(BUY, 2, 100, fee=0.2))
        assert position == Position(
            symbol="BTCUSDT",
            quantity=2.0,
            avg_entry_price=100.0,
            timestamp_ns=TS,
            current_price=100.0,
            unrealized_pnl=0.0,
            realized_pnl=-0.2,
            strategy="mm",
        )

    def test_symbols_are_independent(self) -> None:
        """Fills in one symbol do not move another's position."""
        book = PositionBook()
        book.apply_fill(fill(BUY, 2, 100))
        book.apply_fill(fill(SELL, 1, 10, symbol="ETHUSDT"))
        assert book.state("BTCUSDT").quantity == 2.0
        assert book.state("ETHUSDT").quantity == -1.0

    def test_mark_sets_price_for_unrealized(self) -> None:
        """mark() records the latest market price used for unrealized P&L."""
        book = PositionBook()
        book.apply_fill(fill(BUY, 2, 100))
        book.mark("BTCUSDT", 103.0)
        assert book.state("BTCUSDT").unrealized_pnl() == pytest.approx(6.0)

    def test_unknown_symbol_is_flat(self) -> None:
        """Asking for a symbol never traded gives a flat state."""
        assert PositionBook().state("XRPUSDT").quantity == 0.0

    def test_positions_is_a_copy(self) -> None:
        """positions() returns a new dict; changing it does not change the book."""
        book = PositionBook()
        book.apply_fill(fill(BUY, 1, 100))
        book.positions().clear()
        assert list(book.positions()) == ["BTCUSDT"]

"""Events and orders: validated on construction, immutable, with the helpers strategies rely on."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from sdk import (
    Book,
    Cancel,
    Candle,
    Fill,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    Side,
    Signal,
    Tick,
    TimeInForce,
    Timer,
    Trade,
    ValidationError,
)
from sdk._codec import FILL_FIELDS, MARKET_FIELDS, ORDER_UPDATE_FIELDS, POSITION_FIELDS, TIMER_FIELDS
from sdk._unchecked import unchecked

TS = 1_704_164_645_000_000_000  # 2024-01-02T03:04:05Z
NAN = math.nan
INF = math.inf

VALID: dict[type[Any], dict[str, Any]] = {
    Tick: {"symbol": "BTCUSDT", "timestamp_ns": TS, "bid_price": 100.0, "bid_size": 1.0, "ask_price": 101.0,
           "ask_size": 2.0},
    Trade: {"symbol": "BTCUSDT", "timestamp_ns": TS, "last_price": 100.0, "volume": 0.5},
    Book: {"symbol": "BTCUSDT", "timestamp_ns": TS, "bids": [[100.0, 1.0]], "asks": [[101.0, 2.0]]},
    Candle: {"symbol": "BTCUSDT", "timestamp_ns": TS, "open": 100.0, "high": 110.0, "low": 95.0, "close": 105.0},
    Fill: {"fill_id": "f1", "order_id": "o1", "symbol": "BTCUSDT", "side": Side.BUY, "price": 100.0,
           "quantity": 1.0, "timestamp_ns": TS},
    Position: {"symbol": "BTCUSDT", "quantity": 1.0, "avg_entry_price": 100.0, "timestamp_ns": TS},
    Timer: {"name": "minute", "timestamp_ns": TS},
    OrderUpdate: {"client_order_id": "order-1", "symbol": "BTCUSDT", "side": Side.BUY,
                  "status": OrderUpdateStatus.ACCEPTED, "quantity": 1.0, "timestamp_ns": TS},
    Signal: {"symbol": "BTCUSDT", "side": Side.BUY, "quantity": 1.0},
    Cancel: {"symbol": "BTCUSDT", "slot": "bid"},
}  # fmt: skip


def make(cls: type[Any], **changes: Any) -> Any:
    """A valid instance of ``cls`` with ``changes`` applied."""
    return cls(**{**VALID[cls], **changes})


def expect_invalid(cls: type[Any], field: str, value: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        make(cls, **{field: value})
    return caught.value


HEADED = [Tick, Trade, Book, Candle, Fill, Position, OrderUpdate]
MARKET = [Tick, Trade, Book, Candle]


class TestEveryEvent:
    @pytest.mark.parametrize("cls", list(VALID), ids=lambda c: c.__name__)
    def test_valid_values_construct(self, cls: type[Any]) -> None:
        """The baseline values of each type construct without error."""
        assert isinstance(make(cls), cls)

    @pytest.mark.parametrize("cls", list(VALID), ids=lambda c: c.__name__)
    def test_is_frozen(self, cls: type[Any]) -> None:
        """Events and orders are immutable."""
        event = make(cls)
        name = dataclasses.fields(event)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, name, "other")

    @pytest.mark.parametrize("cls", list(VALID), ids=lambda c: c.__name__)
    def test_is_slotted(self, cls: type[Any]) -> None:
        """Events and orders carry no per-instance __dict__."""
        assert not hasattr(make(cls), "__dict__")

    @pytest.mark.parametrize("cls", HEADED, ids=lambda c: c.__name__)
    @pytest.mark.parametrize("value", ["", None, 5, b"BTC"], ids=repr)
    def test_symbol_must_be_non_empty_text(self, cls: type[Any], value: Any) -> None:
        """A missing, empty or non-string symbol is rejected naming Type.symbol."""
        err = expect_invalid(cls, "symbol", value)
        assert (err.owner, err.field) == (cls.__name__, "symbol")
        assert str(err).startswith(f"{cls.__name__}.symbol: ")

    @pytest.mark.parametrize("cls", [*HEADED, Timer], ids=lambda c: c.__name__)
    @pytest.mark.parametrize("value", [1.5, "1704164645", True, None], ids=repr)
    def test_timestamp_must_be_integer_nanoseconds(self, cls: type[Any], value: Any) -> None:
        """timestamp_ns must be an int (a bool is not one)."""
        err = expect_invalid(cls, "timestamp_ns", value)
        assert str(err).startswith(f"{cls.__name__}.timestamp_ns: expected an integer")

    @pytest.mark.parametrize("cls", MARKET, ids=lambda c: c.__name__)
    @pytest.mark.parametrize("value", ["7", 7.0, True, None], ids=repr)
    def test_sequence_must_be_integer(self, cls: type[Any], value: Any) -> None:
        """A market event's sequence must be an int."""
        err = expect_invalid(cls, "sequence", value)
        assert (err.owner, err.field) == (cls.__name__, "sequence")

    @pytest.mark.parametrize("cls", [*HEADED, Timer], ids=lambda c: c.__name__)
    def test_time_is_utc_datetime_of_timestamp(self, cls: type[Any]) -> None:
        """.time is the UTC datetime of timestamp_ns."""
        assert make(cls).time == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    def test_error_is_a_value_error(self) -> None:
        """ValidationError is a ValueError, so generic bad-input handlers catch it."""
        assert isinstance(expect_invalid(Tick, "bid_price", -1), ValueError)


# (type, field, bad value, start of the reason)
NUMBER_FAILURES = [
    (Tick, "bid_price", 0, "must be > 0"),
    (Tick, "bid_price", -1.0, "must be > 0"),
    (Tick, "bid_price", NAN, "must be finite"),
    (Tick, "bid_price", INF, "must be finite"),
    (Tick, "bid_price", "100", "expected a number"),
    (Tick, "bid_price", True, "expected a number"),
    (Tick, "bid_price", None, "expected a number"),
    (Tick, "ask_price", 0.0, "must be > 0"),
    (Tick, "ask_price", -INF, "must be finite"),
    (Tick, "bid_size", -0.1, "must be >= 0"),
    (Tick, "ask_size", NAN, "must be finite"),
    (Tick, "ask_size", False, "expected a number"),
    (Tick, "last_price", 0, "must be > 0"),
    (Tick, "last_price", "1", "expected a number"),
    (Trade, "last_price", 0, "must be > 0"),
    (Trade, "volume", -1, "must be >= 0"),
    (Trade, "volume", "0.5", "expected a number"),
    (Trade, "volume_quote", -1, "must be >= 0"),
    (Trade, "side", "hold", "expected one of buy, sell"),
    (Trade, "side", 1, "expected one of buy, sell"),
    (Book, "last_price", -2, "must be > 0"),
    (Candle, "open", 0, "must be > 0"),
    (Candle, "high", NAN, "must be finite"),
    (Candle, "low", -1, "must be > 0"),
    (Candle, "close", "105", "expected a number"),
    (Candle, "volume", -1, "must be >= 0"),
    (Candle, "volume_quote", INF, "must be finite"),
    (Fill, "fill_id", "", "expected a non-empty string"),
    (Fill, "order_id", None, "expected a string"),
    (Fill, "fee_currency", 5, "expected a string"),
    (Fill, "side", "hold", "expected one of buy, sell"),
    (Fill, "side", None, "expected one of buy, sell"),
    (Fill, "price", 0, "must be > 0"),
    (Fill, "quantity", 0, "must be > 0"),
    (Fill, "quantity", -1, "must be > 0"),
    (Fill, "fee", NAN, "must be finite"),
    (Fill, "fee", "0.1", "expected a number"),
    (Fill, "strategy", 5, "expected a string"),
    (Position, "quantity", NAN, "must be finite"),
    (Position, "quantity", True, "expected a number"),
    (Position, "avg_entry_price", -1, "must be >= 0"),
    (Position, "current_price", -1, "must be >= 0"),
    (Position, "unrealized_pnl", INF, "must be finite"),
    (Position, "realized_pnl", "1", "expected a number"),
    (Position, "strategy", None, "expected a string"),
    (Timer, "name", "", "expected a non-empty string"),
    (Timer, "name", 3, "expected a non-empty string"),
    (OrderUpdate, "client_order_id", "", "expected a non-empty string"),
    (OrderUpdate, "side", "hold", "expected one of buy, sell"),
    (OrderUpdate, "status", "new", "expected one of accepted, partially_filled, filled, cancelled, expired, rejected"),
    (OrderUpdate, "quantity", 0, "must be > 0"),
    (OrderUpdate, "filled_quantity", -1, "must be >= 0"),
    (OrderUpdate, "remaining_quantity", NAN, "must be finite"),
    (OrderUpdate, "average_price", "1", "expected a number"),
    (OrderUpdate, "rule", None, "expected a string"),
    (OrderUpdate, "reason", 5, "expected a string"),
    (OrderUpdate, "slot", None, "expected a string"),
    (Cancel, "symbol", "", "expected a non-empty string"),
    (Cancel, "slot", "", "expected a non-empty string"),
]


class TestFieldValidation:
    @pytest.mark.parametrize(
        ("cls", "field", "value", "reason"),
        NUMBER_FAILURES,
        ids=[f"{c.__name__}.{f}={v!r}" for c, f, v, _ in NUMBER_FAILURES],
    )
    def test_bad_value_is_rejected_naming_type_and_field(
        self, cls: type[Any], field: str, value: Any, reason: str
    ) -> None:
        """A bad field value raises ValidationError whose message starts with Type.field and the rule."""
        err = expect_invalid(cls, field, value)
        assert (err.owner, err.field) == (cls.__name__, field)
        assert str(err).startswith(f"{cls.__name__}.{field}: {reason}")


class TestSide:
    def test_sign(self) -> None:
        """A buy adds +1 times its quantity to a position, a sell -1."""
        assert (Side.BUY.sign, Side.SELL.sign) == (1, -1)

    def test_opposite(self) -> None:
        """Each side's opposite is the other side."""
        assert (Side.BUY.opposite, Side.SELL.opposite) == (Side.SELL, Side.BUY)

    def test_members_equal_their_values(self) -> None:
        """Sides are their lower-case values as str: they look up and serialize as peers send them."""
        assert {"buy": 1, "sell": -1}[Side.SELL] == -1
        assert json.dumps([Side.BUY, Side.SELL]) == '["buy", "sell"]'


class TestEnumCoercion:
    @pytest.mark.parametrize("value", ["buy", "BUY", "Buy", Side.BUY])
    def test_signal_side_in_any_case(self, value: Any) -> None:
        """A signal's side is accepted in any letter case and stored as the Side member."""
        assert make(Signal, side=value).side is Side.BUY

    @pytest.mark.parametrize(("value", "expected"), [("LIMIT", OrderType.LIMIT), ("Stop_Limit", OrderType.STOP_LIMIT)])
    def test_signal_order_type_in_any_case(self, value: str, expected: OrderType) -> None:
        """A signal's order type is accepted in any letter case."""
        signal = make(
            Signal, order_type=value, price=10.0, stop_price=9.0 if expected is OrderType.STOP_LIMIT else None
        )
        assert signal.order_type is expected

    @pytest.mark.parametrize("value", ["IOC", "ioc", "Ioc"])
    def test_signal_time_in_force_in_any_case(self, value: str) -> None:
        """A signal's time in force is accepted in any letter case."""
        assert make(Signal, time_in_force=value).time_in_force is TimeInForce.IOC

    def test_fill_side_upper_case(self) -> None:
        """A fill's side sent as "SELL" becomes Side.SELL."""
        assert make(Fill, side="SELL").side is Side.SELL

    def test_trade_side_coerced(self) -> None:
        """A trade's aggressor side is coerced when given."""
        assert make(Trade, side="Sell").side is Side.SELL

    def test_trade_side_as_a_member_is_kept(self) -> None:
        """A trade built with a Side member (as the b25 decoder does) keeps it."""
        assert make(Trade, side=Side.BUY).side is Side.BUY

    def test_trade_side_may_be_absent(self) -> None:
        """A trade without an aggressor side keeps None."""
        assert make(Trade).side is None

    def test_other_enum_member_is_rejected(self) -> None:
        """A member of another enum is not taken for a side."""
        err = expect_invalid(Signal, "side", OrderType.MARKET)
        assert err.field == "side"


class TestTick:
    def test_mid_and_spread(self) -> None:
        """mid is the average of bid and ask; spread is ask minus bid."""
        tick = make(Tick, bid_price=100.0, ask_price=101.0)
        assert (tick.mid, tick.spread) == (100.5, 1.0)

    def test_zero_sizes_are_valid(self) -> None:
        """An empty side of the top of book (size 0) is allowed."""
        assert make(Tick, bid_size=0, ask_size=0).bid_size == 0

    def test_last_price_defaults_to_none(self) -> None:
        """A tick without a trade has no last price."""
        assert make(Tick).last_price is None

    def test_kind(self) -> None:
        """Each event class names its kind."""
        assert [c.kind for c in (Tick, Trade, Book, Candle, Fill, Position, Timer)] == [
            "tick", "trade", "book", "candle", "fill", "position", "timer",
        ]  # fmt: skip


class TestBook:
    def test_levels_become_tuples_of_floats(self) -> None:
        """Levels given as lists are stored as tuples of (price, size) floats."""
        book = make(Book, bids=[[100, 1], [99, 2]], asks=([101, 3],))
        assert book.bids == ((100.0, 1.0), (99.0, 2.0))
        assert book.asks == ((101.0, 3.0),)
        assert all(isinstance(x, float) for level in book.bids + book.asks for x in level)

    def test_best_levels_and_mid(self) -> None:
        """best_bid and best_ask are the first levels; mid averages their prices."""
        book = make(Book, bids=[[100, 1], [99, 2]], asks=[[102, 3], [103, 1]])
        assert (book.best_bid, book.best_ask, book.mid) == ((100.0, 1.0), (102.0, 3.0), 101.0)

    @pytest.mark.parametrize(("bids", "asks"), [([], [[101, 1]]), ([[100, 1]], []), ([], [])])
    def test_mid_is_none_with_an_empty_side(self, bids: list[Any], asks: list[Any]) -> None:
        """A book with no bids or no asks has no mid."""
        assert make(Book, bids=bids, asks=asks).mid is None

    def test_best_levels_none_when_empty(self) -> None:
        """An empty book has no best bid or ask."""
        book = make(Book, bids=[], asks=[])
        assert (book.best_bid, book.best_ask) == (None, None)

    def test_imbalance_over_depth(self) -> None:
        """Imbalance is (bid size - ask size) / total over the top `depth` levels."""
        book = make(Book, bids=[[100, 3], [99, 1], [98, 100]], asks=[[101, 1], [102, 1], [103, 100]])
        assert book.imbalance(depth=2) == pytest.approx((4 - 2) / 6)
        assert book.imbalance(depth=1) == pytest.approx((3 - 1) / 4)

    def test_imbalance_default_depth_is_five(self) -> None:
        """The default depth counts five levels per side."""
        bids = [[100 - i, 1] for i in range(6)]
        asks = [[101 + i, 1] for i in range(4)]
        assert make(Book, bids=bids, asks=asks).imbalance() == pytest.approx((5 - 4) / 9)

    @pytest.mark.parametrize(("bids", "asks", "expected"), [([[100, 2]], [], 1.0), ([], [[101, 2]], -1.0)])
    def test_imbalance_bounds(self, bids: list[Any], asks: list[Any], expected: float) -> None:
        """Only bids gives +1, only asks gives -1."""
        assert make(Book, bids=bids, asks=asks).imbalance() == expected

    def test_imbalance_of_empty_book_is_zero(self) -> None:
        """No size on either side is no imbalance (not a division by zero)."""
        assert make(Book, bids=[[100, 0]], asks=[]).imbalance() == 0.0

    @pytest.mark.parametrize(
        ("side", "levels", "field", "reason"),
        [
            ("bids", "x", "bids", "expected a list of [price, size]"),
            ("bids", None, "bids", "expected a list of [price, size]"),
            ("bids", [[100.0]], "bids[0]", "expected [price, size]"),
            ("bids", [[100.0, 1.0, 2.0]], "bids[0]", "expected [price, size]"),
            ("bids", [100.0], "bids[0]", "expected [price, size]"),
            ("bids", [[0, 1]], "bids[0].price", "must be > 0"),
            ("bids", [["100", 1]], "bids[0].price", "expected a number"),
            ("asks", [[101, 1], [102, -1]], "asks[1].size", "must be >= 0"),
            ("asks", [[101, 1], [102, NAN]], "asks[1].size", "must be finite"),
        ],
    )
    def test_bad_levels_are_rejected_naming_the_level(self, side: str, levels: Any, field: str, reason: str) -> None:
        """A malformed level is rejected naming Book.<side>[i].<part>."""
        err = expect_invalid(Book, side, levels)
        assert str(err).startswith(f"Book.{field}: {reason}")


class TestCandle:
    def test_flat_bar_is_valid(self) -> None:
        """A bar whose open, high, low and close are equal is valid."""
        candle = make(Candle, open=100.0, high=100.0, low=100.0, close=100.0)
        assert candle.high == candle.low

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"high": 99.0}, "high"),  # below open (100)
            ({"high": 104.0}, "high"),  # below close (105)
            ({"open": 100.0, "high": 100.0, "low": 101.0, "close": 100.0}, "high"),  # below low
            ({"low": 101.0}, "low"),  # above open
            ({"open": 108.0, "low": 106.0}, "low"),  # above close (105)
        ],
    )
    def test_high_and_low_must_enclose_the_bar(self, changes: dict[str, float], field: str) -> None:
        """high must be >= open, close and low; low must be <= open and close."""
        with pytest.raises(ValidationError) as caught:
            make(Candle, **changes)
        assert caught.value.field == field
        assert str(caught.value).startswith(f"Candle.{field}: must be")

    def test_volumes_default_to_none(self) -> None:
        """A candle without volumes keeps None for both."""
        candle = make(Candle)
        assert (candle.volume, candle.volume_quote) == (None, None)


class TestFill:
    def test_negative_fee_is_a_rebate(self) -> None:
        """A negative fee (a maker rebate) is accepted."""
        assert make(Fill, fee=-0.01).fee == -0.01

    def test_defaults(self) -> None:
        """A fill defaults to no fee and no strategy."""
        fill = make(Fill)
        assert (fill.fee, fill.strategy) == (0.0, "")


class TestPosition:
    @pytest.mark.parametrize(("quantity", "side"), [(2.0, Side.BUY), (-2.0, Side.SELL), (0.0, None)])
    def test_side_follows_quantity_sign(self, quantity: float, side: Side | None) -> None:
        """A long position's side is BUY, a short's SELL, a flat one's None."""
        assert make(Position, quantity=quantity).side is side


class TestTimer:
    def test_name_and_time(self) -> None:
        """A timer carries its name and time."""
        timer = make(Timer)
        assert (timer.name, timer.timestamp_ns) == ("minute", TS)


SIGNAL_FAILURES = [
    ({"symbol": ""}, "symbol", "expected a non-empty string"),
    ({"side": "hold"}, "side", "expected one of buy, sell"),
    ({"quantity": 0}, "quantity", "must be > 0"),
    ({"quantity": -1}, "quantity", "must be > 0"),
    ({"quantity": NAN}, "quantity", "must be finite"),
    ({"quantity": True}, "quantity", "expected a number"),
    ({"quantity": "1"}, "quantity", "expected a number"),
    ({"order_type": "iceberg"}, "order_type", "expected one of market, limit, stop, stop_limit"),
    ({"time_in_force": "day"}, "time_in_force", "expected one of gtc, ioc, fok"),
    ({"order_type": "limit"}, "price", "required for a limit order"),
    ({"order_type": "limit", "price": 0}, "price", "must be > 0"),
    ({"order_type": "limit", "price": NAN}, "price", "must be finite"),
    ({"price": 100.0}, "price", "must be None for a market order"),
    ({"stop_price": 90.0}, "stop_price", "must be None for a market order"),
    ({"order_type": "stop"}, "stop_price", "required for a stop order"),
    ({"order_type": "stop", "stop_price": -1}, "stop_price", "must be > 0"),
    ({"order_type": "stop", "stop_price": 90.0, "price": 89.0}, "price", "must be None for a stop order"),
    ({"order_type": "stop_limit", "stop_price": 90.0}, "price", "required for a stop_limit order"),
    ({"order_type": "stop_limit", "price": 89.0}, "stop_price", "required for a stop_limit order"),
    ({"order_type": "limit", "price": 100.0, "stop_price": 90.0}, "stop_price", "must be None for a limit order"),
    ({"priority": 0}, "priority", "must be 1..10"),
    ({"priority": 11}, "priority", "must be 1..10"),
    ({"priority": 5.0}, "priority", "expected an integer"),
    ({"priority": True}, "priority", "expected an integer"),
    ({"confidence": -0.01}, "confidence", "must be 0..1"),
    ({"confidence": 1.01}, "confidence", "must be 0..1"),
    ({"confidence": NAN}, "confidence", "must be finite"),
    ({"confidence": True}, "confidence", "expected a number"),
    ({"max_slippage": -0.1}, "max_slippage", "must be >= 0"),
    ({"metadata": {"reason": 1}}, "metadata", "keys and values must be str"),
    ({"metadata": {1: "x"}}, "metadata", "keys and values must be str"),
    ({"metadata": [("a", "b")]}, "metadata", "expected a mapping of str to str"),
    ({"metadata": None}, "metadata", "expected a mapping of str to str"),
    ({"slot": 5}, "slot", "expected a string"),
    ({"slot": None}, "slot", "expected a string"),
    ({"client_order_id": None}, "client_order_id", "expected a string"),
    ({"client_order_id": "has space"}, "client_order_id", "expected at most 36 of"),
    ({"client_order_id": "x" * 37}, "client_order_id", "expected at most 36 of"),
]


class TestSignal:
    @pytest.mark.parametrize(
        ("changes", "field", "reason"), SIGNAL_FAILURES, ids=[str(c) for c, _, _ in SIGNAL_FAILURES]
    )
    def test_bad_signal_is_rejected(self, changes: dict[str, Any], field: str, reason: str) -> None:
        """A signal breaking a rule raises ValidationError naming Signal.<field> and the rule."""
        with pytest.raises(ValidationError) as caught:
            make(Signal, **changes)
        assert (caught.value.owner, caught.value.field) == ("Signal", field)
        assert str(caught.value).startswith(f"Signal.{field}: {reason}")

    def test_defaults(self) -> None:
        """A signal defaults to a GTC market order, priority 5, full confidence, no metadata, no slot."""
        signal = make(Signal)
        assert signal.order_type is OrderType.MARKET
        assert signal.time_in_force is TimeInForce.GTC
        assert (signal.price, signal.stop_price, signal.max_slippage) == (None, None, None)
        assert (signal.priority, signal.confidence, dict(signal.metadata), signal.slot) == (5, 1.0, {}, "")

    def test_limit_order_with_price(self) -> None:
        """A limit order with a positive price is valid."""
        assert make(Signal, order_type=OrderType.LIMIT, price=99.5).price == 99.5

    def test_stop_order_with_stop_price(self) -> None:
        """A stop order with a stop price and no limit price is valid."""
        signal = make(Signal, order_type="stop", stop_price=90.0)
        assert (signal.price, signal.stop_price) == (None, 90.0)

    def test_stop_limit_order_with_both_prices(self) -> None:
        """A stop-limit order carries both prices."""
        signal = make(Signal, order_type="stop_limit", price=89.0, stop_price=90.0)
        assert (signal.price, signal.stop_price) == (89.0, 90.0)

    @pytest.mark.parametrize("priority", [1, 10])
    def test_priority_bounds_are_inclusive(self, priority: int) -> None:
        """Priorities 1 and 10 are both valid."""
        assert make(Signal, priority=priority).priority == priority

    @pytest.mark.parametrize("confidence", [0, 0.0, 0.5, 1])
    def test_confidence_bounds_are_inclusive(self, confidence: float) -> None:
        """Confidence 0 and 1 are both valid, and ints are numbers."""
        assert make(Signal, confidence=confidence).confidence == confidence

    def test_zero_slippage_is_valid(self) -> None:
        """A max slippage of 0 means none allowed, which is valid."""
        assert make(Signal, max_slippage=0.0).max_slippage == 0.0

    def test_metadata_is_read_only(self) -> None:
        """A signal's metadata cannot be changed after construction."""
        signal = make(Signal, metadata={"reason": "breakout"})
        with pytest.raises(TypeError):
            signal.metadata["reason"] = "other"

    def test_metadata_is_copied(self) -> None:
        """Changing the dict a signal was built from does not change the signal."""
        source = {"reason": "breakout"}
        signal = make(Signal, metadata=source)
        source["reason"] = "changed"
        assert signal.metadata == {"reason": "breakout"}

    def test_signal_with_metadata_is_hashable_and_equal_by_value(self) -> None:
        """Two signals built from equal values are equal, and a signal with metadata can be hashed."""
        first = make(Signal, metadata={"a": "b"})
        second = make(Signal, metadata={"a": "b"})
        assert first == second
        assert hash(first) == hash(second)

    def test_slot_names_a_working_order(self) -> None:
        """A signal keeps the slot it was given."""
        assert make(Signal, slot="bid").slot == "bid"

    @pytest.mark.parametrize("client_order_id", ["", "entry-1", "a1B2.c3_d4:e5/f6-", "x" * 36])
    def test_client_order_id_is_optional_and_exchange_shaped(self, client_order_id: str) -> None:
        """No id (the engine names the order) or up to 36 of the characters exchanges take."""
        assert make(Signal, client_order_id=client_order_id).client_order_id == client_order_id


class TestOrderUpdate:
    def test_constructor_takes_keywords_only(self) -> None:
        """Fields are named at construction, so an update reads like the JSON it stands for."""
        with pytest.raises(TypeError):
            OrderUpdate("order-1", "", "BTCUSDT", Side.BUY)  # type: ignore[call-arg]

    def test_defaults(self) -> None:
        """Strategy, slot, reason and rule default to "", quantities and price to 0."""
        update = make(OrderUpdate)
        assert (update.strategy, update.slot, update.reason, update.rule) == ("", "", "", "")
        assert (update.filled_quantity, update.remaining_quantity, update.average_price) == (0.0, 0.0, 0.0)
        assert update.kind == "order"

    def test_status_and_side_in_any_case(self) -> None:
        """Status and side are read like every SDK enum, from their values in any letter case."""
        update = make(OrderUpdate, status="REJECTED", side="SELL")
        assert (update.status, update.side) == (OrderUpdateStatus.REJECTED, Side.SELL)

    @pytest.mark.parametrize(
        ("status", "done"),
        [("accepted", False), ("partially_filled", False), ("filled", True), ("cancelled", True),
         ("expired", True), ("rejected", True)],
    )  # fmt: skip
    def test_done_once_nothing_of_the_order_works(self, status: str, done: bool) -> None:
        """done says the order will not fill any further (filled, cancelled, expired, rejected)."""
        assert make(OrderUpdate, status=status).done is done
        assert OrderUpdateStatus(status).done is done

    def test_status_is_its_value_as_text(self) -> None:
        """The status prints as its JSON value, as a strategy would log it."""
        assert f"{OrderUpdateStatus.PARTIALLY_FILLED}" == "partially_filled"


class TestCancel:
    def test_fields(self) -> None:
        """A cancel names the symbol and slot."""
        cancel = make(Cancel)
        assert (cancel.symbol, cancel.slot) == ("BTCUSDT", "bid")


class TestKeywordOnly:
    @pytest.mark.parametrize("cls", list(VALID), ids=lambda c: c.__name__)
    def test_positional_arguments_are_refused(self, cls: type[Any]) -> None:
        """Every event and signal constructor takes keywords only: positional values raise TypeError."""
        with pytest.raises(TypeError, match="positional"):
            cls(*VALID[cls].values())

    @pytest.mark.parametrize(
        ("cls", "json_fields"),
        [(Tick, MARKET_FIELDS), (Trade, MARKET_FIELDS), (Book, MARKET_FIELDS), (Candle, MARKET_FIELDS),
         (Fill, FILL_FIELDS | {"reconciled"}), (Position, POSITION_FIELDS), (Timer, TIMER_FIELDS),
         (OrderUpdate, ORDER_UPDATE_FIELDS)],
        ids=lambda c: getattr(c, "__name__", ""),
    )  # fmt: skip
    def test_field_names_are_the_json_names(self, cls: type[Any], json_fields: frozenset[str]) -> None:
        """Each field is named as the JSON-lines format names it; only the time is timestamp_ns (int) for timestamp.

        ``Fill.reconciled`` is the engine's own (a fill recovered from the venue's order state), never in JSON.
        """
        names = {"timestamp" if f.name == "timestamp_ns" else f.name for f in dataclasses.fields(cls)}
        assert names <= json_fields, sorted(names - json_fields)


class TestUnchecked:
    def test_builds_an_equal_event(self) -> None:
        """unchecked(cls)(*fields) gives the same value as the validating constructor."""
        values = {"symbol": "BTCUSDT", "timestamp_ns": TS, "bid_price": 100.0, "bid_size": 1.0, "ask_price": 101.0,
                  "ask_size": 2.0, "last_price": 100.5, "sequence": 7}  # fmt: skip
        assert unchecked(Tick)(*values.values()) == Tick(**values)

    def test_skips_validation(self) -> None:
        """Values are taken as given: for already-validated data only."""
        trade = unchecked(Trade)("BTCUSDT", TS, -1.0, 1.0, None, None, 0)
        assert trade.last_price == -1.0

    def test_result_is_still_frozen(self) -> None:
        """An unchecked event is as immutable as a checked one."""
        tick = unchecked(Tick)("BTCUSDT", TS, 100.0, 1.0, 101.0, 2.0, None, 0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            tick.bid_price = 1.0  # type: ignore[misc]

    def test_every_field_is_required(self) -> None:
        """Too few values is an error, not a half-built event."""
        with pytest.raises(TypeError):
            unchecked(Tick)("BTCUSDT", TS)

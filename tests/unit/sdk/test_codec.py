"""Decoding the seed system's JSON (market data, fills, positions) into SDK events."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from sdk import (
    Book,
    Candle,
    Fill,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    Side,
    Tick,
    Timer,
    Trade,
    ValidationError,
)
from sdk._codec import (
    decode_event,
    decode_fill,
    decode_market,
    decode_position,
    encode_fill,
    encode_market,
    encode_position,
    format_timestamp,
    load_events,
    parse_timestamp,
)
from tests import helpers

T0 = "2024-01-02T03:04:05Z"
T0_NS = 1_704_164_645_000_000_000  # 2024-01-01T00:00:00Z is 1_704_067_200 s; + 1 day 3 h 4 min 5 s


def market(**fields: Any) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "timestamp": T0, **fields}


go_market = functools.partial(helpers.go_market, timestamp=T0)


def fill_message(**fields: Any) -> dict[str, Any]:
    base = {"fill_id": "f-1", "order_id": "o-1", "symbol": "BTCUSDT", "side": "buy", "price": 100.0, "quantity": 2.0,
            "fee": 0.1, "timestamp": T0, "strategy": "mm"}  # fmt: skip
    return {**base, **fields}


def position_message(**fields: Any) -> dict[str, Any]:
    base = {"symbol": "BTCUSDT", "side": "long", "quantity": 2.0, "avg_entry_price": 100.0, "current_price": 101.0,
            "unrealized_pnl": 2.0, "realized_pnl": 0.5, "timestamp": T0, "strategy": "mm"}  # fmt: skip
    return {**base, **fields}


def expect_invalid(decode: Any, data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        decode(data)
    return caught.value


class TestDecodeMarket:
    def test_tick_with_numbers_as_strings(self) -> None:
        """A peer's tick with numbers and sequence as strings and an upper-case type decodes to a Tick."""
        tick = decode_market(market(type="TICK", sequence="7", bid_price="100.5", ask_price="101", bid_size="1.5",
                                    ask_size="2", last_price="100.75"))  # fmt: skip
        assert tick == Tick(
            symbol="BTCUSDT",
            timestamp_ns=T0_NS,
            bid_price=100.5,
            bid_size=1.5,
            ask_price=101.0,
            ask_size=2.0,
            last_price=100.75,
            sequence=7,
        )

    def test_absent_type_means_tick(self) -> None:
        """A message without a type is a tick."""
        assert isinstance(decode_market(market(bid_price=1, ask_price=2)), Tick)

    def test_empty_type_means_tick(self) -> None:
        """Go's zero value for type, "", is a tick."""
        assert isinstance(decode_market(market(type="", bid_price=1, ask_price=2)), Tick)

    def test_go_tick_with_zero_values(self) -> None:
        """A Go tick with every other field at zero/null decodes; zero sizes and last price are missing."""
        tick = decode_market(go_market("tick", bid_price=100.0, ask_price=101.0))
        assert tick == Tick(
            symbol="BTCUSDT",
            timestamp_ns=T0_NS,
            bid_price=100.0,
            bid_size=0.0,
            ask_price=101.0,
            ask_size=0.0,
            last_price=None,
            sequence=0,
        )

    def test_go_trade(self) -> None:
        """A trade keeps last_price, volume and volume_quote under their JSON names."""
        trade = decode_market(go_market("trade", last_price="100.5", volume="0.2", volume_quote="20.1", sequence=9))
        assert trade == Trade(
            symbol="BTCUSDT", timestamp_ns=T0_NS, last_price=100.5, volume=0.2, volume_quote=20.1, side=None, sequence=9
        )

    def test_trade_without_quote_volume(self) -> None:
        """A trade with zero quote volume has none."""
        trade = decode_market(go_market("trade", last_price=100.0, volume=1.0))
        assert isinstance(trade, Trade)
        assert trade.volume_quote is None

    def test_go_book_with_string_levels(self) -> None:
        """A book's levels sent as [["price", "size"], ...] decode to float pairs."""
        book = decode_market(go_market("book", bids=[["100.5", "1"], ["100", "2"]], asks=[["101", "3"]],
                                       last_price=100.7))  # fmt: skip
        assert isinstance(book, Book)
        assert book.bids == ((100.5, 1.0), (100.0, 2.0))
        assert book.asks == ((101.0, 3.0),)
        assert book.last_price == 100.7

    def test_book_with_null_levels_is_empty(self) -> None:
        """Null levels are an empty side."""
        book = decode_market(go_market("BOOK"))
        assert isinstance(book, Book)
        assert (book.bids, book.asks, book.last_price) == ((), (), None)

    def test_go_candle(self) -> None:
        """A candle takes open/high/low/close and both volumes."""
        candle = decode_market(go_market("candle", open="100", high="110", low="95", close="105", volume="3",
                                         volume_quote="315"))  # fmt: skip
        assert candle == Candle(
            symbol="BTCUSDT",
            timestamp_ns=T0_NS,
            open=100.0,
            high=110.0,
            low=95.0,
            close=105.0,
            volume=3.0,
            volume_quote=315.0,
            sequence=0,
        )

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"timestamp": T0, "bid_price": 1, "ask_price": 2}, "market_data.symbol: required"),
            ({"symbol": "BTCUSDT", "bid_price": 1, "ask_price": 2}, "market_data.timestamp: required"),
            (market(timestamp="", bid_price=1, ask_price=2), "market_data.timestamp: required"),
            (market(symbol="", bid_price=1, ask_price=2), "market_data.symbol: expected a non-empty string"),
            (market(bid_price=1, ask_price=2, foo=1), "market_data.foo: unknown field"),
            (market(bid_price=1, ask_price=2, type="quote"), "market_data.type: expected tick, trade, book or candle"),
            (market(bid_price=1, ask_price=2, type=3), "market_data.type: expected tick, trade, book or candle"),
            (market(ask_price=2), "market_data.bid_price: required"),
            (market(bid_price="", ask_price=2), "market_data.bid_price: required"),
            (market(bid_price="abc", ask_price=2), "market_data.bid_price: expected a number, got 'abc'"),
            (market(bid_price="nan", ask_price=2), "market_data.bid_price: must be finite"),
            (market(bid_price=True, ask_price=2), "market_data.bid_price: expected a number"),
            (market(bid_price=1, ask_price=2, sequence="x"), "market_data.sequence: expected an integer"),
            (market(bid_price=1, ask_price=2, sequence=1.5), "market_data.sequence: expected an integer"),
            (market(type="trade", volume=1), "market_data.last_price: required"),
            (market(type="candle", open=1, high=2, low=1), "market_data.close: required"),
            (market(type="book", bids="x"), "market_data.bids: expected a list of [price, size]"),
            (market(type="book", bids=[["x", "1"]]), "Book.bids[0].price: expected a number"),
            (market(timestamp="yesterday", bid_price=1, ask_price=2), "market_data.timestamp: expected RFC 3339 time"),
            (market(bid_price=0, ask_price=2), "Tick.bid_price: must be > 0"),
            (market(bid_price=101, ask_price=100), "market_data.bid_price: crossed market: bid_price 101.0 > ask"),
            (market(bid_price="100.01", ask_price="100"), "market_data.bid_price: crossed market"),
            (market(type="candle", open=100, high=90, low=80, close=85), "Candle.high: must be"),
        ],
    )
    def test_bad_message_is_rejected(self, data: dict[str, Any], message: str) -> None:
        """A malformed market message raises ValidationError naming the kind and field."""
        assert str(expect_invalid(decode_market, data)).startswith(message)

    def test_crossed_tick_names_both_prices(self) -> None:
        """A tick whose bid is above its ask is rejected with both prices in the message."""
        err = expect_invalid(decode_market, market(bid_price=50010, ask_price=50000))
        assert (err.owner, err.field) == ("market_data", "bid_price")
        assert "bid_price 50010.0 > ask_price 50000.0" in err.reason

    def test_locked_tick_is_accepted(self) -> None:
        """bid == ask (a locked market) is a valid tick."""
        tick = decode_market(market(bid_price="50000", ask_price=50000.0))
        assert isinstance(tick, Tick) and tick.bid_price == tick.ask_price == 50000.0

    def test_sequence_as_integral_float(self) -> None:
        """A sequence that arrives as a float with no fraction (JSON from some peers) is an int."""
        assert decode_market(market(bid_price=1, ask_price=2, sequence=12.0)).sequence == 12


class TestParseTimestamp:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2024-01-02T03:04:05Z", T0_NS),
            ("2024-01-02T03:04:05z", T0_NS),
            ("2024-01-02T03:04:05", T0_NS),  # no zone: UTC
            ("2024-01-02T03:04:05+00:00", T0_NS),
            ("2024-01-02T05:04:05+02:00", T0_NS),
            ("2024-01-01T21:34:05-05:30", T0_NS),
            ("2024-01-02T03:04:05.5Z", T0_NS + 500_000_000),
            ("2024-01-02T03:04:05.123Z", T0_NS + 123_000_000),
            ("2024-01-02T03:04:05.123456Z", T0_NS + 123_456_000),
            ("2024-01-02T03:04:05.123456789Z", T0_NS + 123_456_789),
            ("2024-01-02T03:04:05.000000001Z", T0_NS + 1),
            ("2024-01-02T05:04:05.123456789+02:00", T0_NS + 123_456_789),
            ("2024-01-02T03:04:05.123456789", T0_NS + 123_456_789),
            ("1970-01-01T00:00:00Z", 0),
        ],
    )
    def test_rfc3339(self, text: str, expected: int) -> None:
        """RFC 3339 text, with or without fraction (up to nanoseconds) and zone, gives epoch nanoseconds."""
        assert parse_timestamp("x", text) == expected

    @pytest.mark.parametrize(
        "texts",
        [
            ["2024-01-02T03:04:05.25+00:00", "2024-01-02T03:04:05.25Z", "2024-01-02T03:04:05.25"],
            ["2024-01-02T03:04:05.25Z", "2024-01-02T03:04:05.25+00:00", "2024-01-02T05:04:05.25+02:00"],
            ["2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05.25+00:00", "2024-01-01T21:34:05.25-05:30"],
        ],
    )
    def test_a_second_seen_before_reads_the_same_in_every_form(self, texts: list[str]) -> None:
        """Z, +00:00, no zone and other offsets of one instant agree, whichever form filled the second's cache."""
        for text in texts * 2:
            expected = T0_NS + (250_000_000 if ".25" in text else 0)
            assert parse_timestamp("x", text) == expected, text

    @pytest.mark.parametrize(
        ("number", "expected"),
        [
            (1_704_164_645, T0_NS),  # seconds
            (1_704_164_645.5, T0_NS + 500_000_000),  # fractional seconds
            (1_704_164_645_123, T0_NS + 123_000_000),  # milliseconds
            (1_704_164_645_123_456, T0_NS + 123_456_000),  # microseconds
            (1_704_164_645_123_456_789, T0_NS + 123_456_789),  # nanoseconds
            (0, 0),
        ],
    )
    def test_epoch_number_unit_by_size(self, number: float, expected: int) -> None:
        """Epoch numbers are read as s, ms, us or ns by their size, exactly for ints."""
        assert parse_timestamp("x", number) == expected

    @pytest.mark.parametrize(
        "value", ["", "yesterday", "2024-13-01T00:00:00Z", "2024-01-02T03:04:05.5x", True, None, []]
    )
    def test_bad_time_is_rejected(self, value: Any) -> None:
        """Text that is not a time, bools and non-numbers are rejected naming owner.timestamp."""
        with pytest.raises(ValidationError) as caught:
            parse_timestamp("fill", value)
        assert str(caught.value).startswith("fill.timestamp: ")


class TestDecodeFill:
    def test_seed_fill(self) -> None:
        """A seed fill decodes field for field."""
        assert decode_fill(fill_message()) == Fill(
            fill_id="f-1",
            order_id="o-1",
            symbol="BTCUSDT",
            side=Side.BUY,
            price=100.0,
            quantity=2.0,
            timestamp_ns=T0_NS,
            fee=0.1,
            strategy="mm",
        )

    def test_peer_fill_with_strings_and_upper_case(self) -> None:
        """Numbers as strings and an upper-case side are accepted."""
        fill = decode_fill(fill_message(side="SELL", price="99.5", quantity="1", fee="0.05"))
        assert (fill.side, fill.price, fill.quantity, fill.fee) == (Side.SELL, 99.5, 1.0, 0.05)

    def test_id_is_an_alias_for_fill_id(self) -> None:
        """A fill identified by `id` instead of `fill_id` is accepted."""
        data = fill_message(id="f-9")
        del data["fill_id"]
        assert decode_fill(data).fill_id == "f-9"

    def test_empty_fill_id_falls_back_to_id(self) -> None:
        """An empty fill_id (Go zero value) falls back to `id`."""
        assert decode_fill(fill_message(fill_id="", id="f-9")).fill_id == "f-9"

    def test_numeric_ids_become_text(self) -> None:
        """Integer ids are accepted as their decimal text."""
        fill = decode_fill(fill_message(fill_id=42, order_id=7))
        assert (fill.fill_id, fill.order_id) == ("42", "7")

    def test_account_monitor_fill(self) -> None:
        """The account monitor's fill, exactly as it sends it, decodes with no order and its fee currency kept."""
        data = json.loads(
            '{"id":"fill-test-001","symbol":"BTCUSDT","side":"BUY","quantity":"0.001","price":"50000.00",'
            '"fee":"0.05","fee_currency":"USDT","timestamp":"2025-10-06T10:00:01Z","strategy":"momentum"}'
        )
        assert decode_fill(data) == Fill(
            fill_id="fill-test-001",
            order_id="",
            symbol="BTCUSDT",
            side=Side.BUY,
            price=50000.0,
            quantity=0.001,
            timestamp_ns=1_759_744_801_000_000_000,
            fee=0.05,
            strategy="momentum",
            fee_currency="USDT",
        )

    def test_fill_without_order_id_or_fee_currency(self) -> None:
        """A fill naming no order decodes with order_id "" and fee_currency ""."""
        data = fill_message()
        del data["order_id"]
        fill = decode_fill(data)
        assert (fill.order_id, fill.fee_currency) == ("", "")

    def test_client_order_id_names_the_order_when_order_id_is_absent(self) -> None:
        """A peer's `client_order_id` (the id this engine gave the order) is the fill's order_id."""
        data = fill_message(client_order_id="c-1")
        del data["order_id"]
        assert decode_fill(data).order_id == "c-1"
        assert decode_fill(fill_message(client_order_id="c-1")).order_id == "o-1"

    @pytest.mark.parametrize("name", ["fee_asset", "commission_asset"])
    def test_fee_currency_under_other_names(self, name: str) -> None:
        """The order service's `fee_asset` and Binance's `commission_asset` are the fee currency too."""
        assert decode_fill(fill_message(**{name: "BNB"})).fee_currency == "BNB"

    @pytest.mark.parametrize(
        "extra",
        [
            {"fee_currency": "USDT"},
            {"exchange_order_id": "123456"},
            {"trade_id": 3061234567},
            {"is_maker": False},
            {"user_id": "u-1", "account_id": 7, "exchange": "binance"},
        ],
    )
    def test_informational_fields_are_accepted(self, extra: dict[str, Any]) -> None:
        """Fields peers add for information are accepted and change nothing else."""
        fill = decode_fill(fill_message(**extra))
        assert (fill.fill_id, fill.order_id, fill.quantity, fill.strategy) == ("f-1", "o-1", 2.0, "mm")

    def test_missing_fee_and_strategy(self) -> None:
        """A fill without fee or strategy has fee 0 and no strategy."""
        data = fill_message()
        del data["fee"], data["strategy"]
        fill = decode_fill(data)
        assert (fill.fee, fill.strategy) == (0.0, "")

    @pytest.mark.parametrize(
        ("changes", "removed", "message"),
        [
            ({}, "fill_id", "fill.fill_id: required"),
            ({}, "symbol", "fill.symbol: required"),
            ({}, "timestamp", "fill.timestamp: required"),
            ({}, "price", "fill.price: required"),
            ({}, "side", "fill.side: expected one of buy, sell"),
            ({"side": "long"}, None, "fill.side: expected one of buy, sell"),
            ({"quantity": "0"}, None, "Fill.quantity: must be > 0"),
            ({"price": "x"}, None, "fill.price: expected a number"),
            ({"fill_id": True}, None, "fill.fill_id: expected a non-empty string"),
            ({"venue": "x"}, None, "fill.venue: unknown field"),
            ({"fee_currency": "USDT", "quantiy": "1"}, None, "fill.quantiy: unknown field"),
            ({"fee_currency": ["USDT"]}, None, "fill.fee_currency: expected a non-empty string"),
        ],
    )
    def test_bad_fill_is_rejected(self, changes: dict[str, Any], removed: str | None, message: str) -> None:
        """A malformed fill raises ValidationError naming the field."""
        data = fill_message(**changes)
        if removed:
            del data[removed]
        assert str(expect_invalid(decode_fill, data)).startswith(message)


class TestDecodePosition:
    @pytest.mark.parametrize(
        ("side", "quantity", "expected"),
        [
            ("long", 2.0, 2.0),
            ("LONG", "2", 2.0),
            ("buy", 2.0, 2.0),
            ("short", 2.0, -2.0),
            ("SHORT", "-2", -2.0),
            ("Sell", 1.5, -1.5),
            ("flat", 0, 0.0),
            ("", 0, 0.0),
            ("", -3.0, -3.0),
            (None, 3.0, 3.0),
        ],
    )
    def test_side_signs_quantity(self, side: str | None, quantity: Any, expected: float) -> None:
        """long/buy is positive, short/sell negative, flat zero; with no side the quantity is already signed."""
        assert decode_position(position_message(side=side, quantity=quantity)).quantity == expected

    def test_absent_side_keeps_signed_quantity(self) -> None:
        """A position sent without a side field keeps its quantity's sign (a short stays short)."""
        data = position_message(quantity=-1.5)
        del data["side"]
        assert decode_position(data).quantity == -1.5

    def test_seed_position(self) -> None:
        """A seed position decodes field for field."""
        assert decode_position(position_message()) == Position(
            symbol="BTCUSDT",
            quantity=2.0,
            avg_entry_price=100.0,
            timestamp_ns=T0_NS,
            current_price=101.0,
            unrealized_pnl=2.0,
            realized_pnl=0.5,
            strategy="mm",
        )

    def test_informational_position_fields_are_accepted(self) -> None:
        """An exchange-style position with leverage, margin, mark and liquidation prices decodes as the seed's."""
        extra = {"id": "pos-1", "leverage": "10", "margin": "5", "margin_type": "isolated", "mark_price": "101",
                 "liquidation_price": "90.5", "notional": "202", "exchange": "binance", "updated_at": T0}  # fmt: skip
        assert decode_position(position_message(**extra)) == decode_position(position_message())

    def test_go_zero_values(self) -> None:
        """A flat position with every number at zero decodes."""
        position = decode_position(position_message(side="flat", quantity=0, avg_entry_price=0, current_price=0,
                                                    unrealized_pnl=0, realized_pnl=0))  # fmt: skip
        assert (position.quantity, position.avg_entry_price, position.side) == (0.0, 0.0, None)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"side": "sideways"}, "position.side: expected long, short, buy, sell or flat"),
            ({"side": 1}, "position.side: expected long, short, buy, sell or flat"),
            ({"quantity": None}, "position.quantity: required"),
            ({"timestamp": None}, "position.timestamp: required"),
            ({"symbol": None}, "position.symbol: expected a non-empty string"),
            ({"avg_entry_price": "-1"}, "Position.avg_entry_price: must be >= 0"),
            ({"leverage": 2, "quantiy": 2}, "position.quantiy: unknown field"),
            ({"avg_entry": 100}, "position.avg_entry: unknown field"),
        ],
    )
    def test_bad_position_is_rejected(self, changes: dict[str, Any], message: str) -> None:
        """A malformed position raises ValidationError naming the field."""
        assert str(expect_invalid(decode_position, position_message(**changes))).startswith(message)


class TestDecodeEvent:
    def test_market_data_by_type(self) -> None:
        """Market messages decode by their type."""
        assert isinstance(decode_event(market(type="candle", open=1, high=1, low=1, close=1)), Candle)

    @pytest.mark.parametrize("kind", ["fill", "FILL"])
    def test_fill(self, kind: str) -> None:
        """type fill (any case) decodes a fill."""
        assert isinstance(decode_event({"type": kind, **fill_message()}), Fill)

    def test_position(self) -> None:
        """type position decodes a position."""
        assert isinstance(decode_event({"type": "position", **position_message()}), Position)

    def test_timer(self) -> None:
        """type timer decodes a timer with its name and time."""
        assert decode_event({"type": "timer", "name": "minute", "timestamp": T0}) == Timer(
            name="minute", timestamp_ns=T0_NS
        )

    def test_timer_name_defaults(self) -> None:
        """A timer without a name is called "timer"."""
        assert decode_event({"type": "timer", "timestamp": T0}) == Timer(name="timer", timestamp_ns=T0_NS)

    def test_order_update(self) -> None:
        """type order decodes an order update, its fields by their own names, numbers also as strings."""
        message = {
            "type": "order", "client_order_id": "order-1", "strategy": "mm", "symbol": "BTCUSDT", "side": "BUY",
            "slot": "bid", "status": "partially_filled", "quantity": "2", "filled_quantity": 0.5,
            "remaining_quantity": 1.5, "average_price": 100.0, "timestamp": T0,
        }  # fmt: skip
        assert decode_event(message) == OrderUpdate(
            client_order_id="order-1", strategy="mm", symbol="BTCUSDT", side=Side.BUY, slot="bid",
            status=OrderUpdateStatus.PARTIALLY_FILLED, quantity=2.0, filled_quantity=0.5, remaining_quantity=1.5,
            average_price=100.0, timestamp_ns=T0_NS,
        )  # fmt: skip

    def test_rejected_order_update_with_its_rule(self) -> None:
        """A rejection carries its rule and reason; the optional numbers default to 0."""
        update = decode_event({
            "type": "order", "client_order_id": "order-2", "symbol": "BTCUSDT", "side": "sell",
            "status": "REJECTED", "quantity": 1, "rule": "max_position_size", "reason": "too big", "timestamp": T0,
        })  # fmt: skip
        assert isinstance(update, OrderUpdate)
        assert (update.status, update.rule, update.reason) == (
            OrderUpdateStatus.REJECTED,
            "max_position_size",
            "too big",
        )
        assert (update.filled_quantity, update.remaining_quantity, update.average_price) == (0.0, 0.0, 0.0)

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"type": "timer", "name": "m"}, "timer.timestamp: required"),
            ({"type": "timer", "timestamp": T0, "every": 60}, "timer.every: unknown field"),
            (
                {
                    "type": "order",
                    "symbol": "BTCUSDT",
                    "side": "buy",
                    "status": "filled",
                    "quantity": 1,
                    "timestamp": T0,
                },
                "order.client_order_id: required",
            ),
            (
                {
                    "type": "order",
                    "client_order_id": "o",
                    "symbol": "BTCUSDT",
                    "side": "buy",
                    "status": "working",
                    "quantity": 1,
                    "timestamp": T0,
                },
                "order.status: expected one of accepted",
            ),
            (
                {
                    "type": "order",
                    "client_order_id": "o",
                    "symbol": "BTCUSDT",
                    "side": "buy",
                    "status": "filled",
                    "quantity": 1,
                    "timestamp": T0,
                    "order_id": "x",
                },
                "order.order_id: unknown field",
            ),
            ([1, 2], "event.type: expected a JSON object, got list"),
            ("tick", "event.type: expected a JSON object, got str"),
        ],
    )
    def test_bad_event_is_rejected(self, data: Any, message: str) -> None:
        """A malformed event raises ValidationError naming what was wrong."""
        assert str(expect_invalid(decode_event, data)).startswith(message)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class TestLoadEvents:
    def test_reads_every_kind_in_order(self, tmp_path: Path) -> None:
        """Each JSON line becomes one event, in file order; blank lines are skipped."""
        path = write_lines(tmp_path / "events.jsonl", [
            json.dumps(market(bid_price="100", ask_price="101")),
            "",
            json.dumps(market(type="trade", last_price=100.5, volume=1)),
            json.dumps({"type": "fill", **fill_message()}),
            "   ",
            json.dumps({"type": "position", **position_message()}),
            json.dumps({"type": "timer", "timestamp": T0}),
        ])  # fmt: skip
        assert [type(e) for e in load_events(path)] == [Tick, Trade, Fill, Position, Timer]

    def test_accepts_a_str_path(self, tmp_path: Path) -> None:
        """The path may be given as a str."""
        path = write_lines(tmp_path / "events.jsonl", [json.dumps(market(bid_price=1, ask_price=2))])
        assert len(list(load_events(str(path)))) == 1

    def test_bad_line_names_its_number(self, tmp_path: Path) -> None:
        """A line that fails to decode raises naming the file, its line number and the problem."""
        path = write_lines(tmp_path / "events.jsonl", [
            json.dumps(market(bid_price=1, ask_price=2)),
            "",
            json.dumps(market(bid_price=1)),
        ])  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            list(load_events(path))
        assert caught.value.owner == f"{path}:3"
        assert "market_data.ask_price: required" in str(caught.value)

    def test_invalid_json_names_its_line(self, tmp_path: Path) -> None:
        """A line that is not JSON is reported with its line number."""
        path = write_lines(tmp_path / "events.jsonl", [json.dumps(market(bid_price=1, ask_price=2)), "{not json"])
        with pytest.raises(ValidationError) as caught:
            list(load_events(path))
        assert str(caught.value).startswith(f"{path}:2.")

    def test_events_before_the_bad_line_are_yielded(self, tmp_path: Path) -> None:
        """Loading is lazy: the good lines before a bad one are delivered first."""
        path = write_lines(tmp_path / "events.jsonl", [json.dumps(market(bid_price=1, ask_price=2)), "[]"])
        events = load_events(path)
        assert isinstance(next(events), Tick)
        with pytest.raises(ValidationError):
            next(events)


class TestEncoding:
    def test_market_events_round_trip_through_the_seed_format(self) -> None:
        """encode_market writes what decode_market reads back to an equal event, for every type."""
        from host.demo import demo_feed

        events = list(demo_feed(minutes=1.0))
        assert {e.kind for e in events} == {"tick", "trade", "book", "candle"}
        assert all(decode_market(encode_market(e)) == e for e in events)

    def test_fill_and_position_round_trip(self) -> None:
        """Fills keep every field; positions travel as side + unsigned quantity and come back signed."""
        fill = Fill(
            fill_id="f1",
            order_id="o1",
            symbol="BTCUSDT",
            side=Side.BUY,
            price=100.5,
            quantity=2.0,
            timestamp_ns=1_700_000_000_123_456_789,
            fee=0.1,
            strategy="mm",
        )
        assert decode_fill(encode_fill(fill)) == fill
        assert "fee_currency" not in encode_fill(fill)
        peer = Fill(
            fill_id="f2",
            order_id="",
            symbol="BTCUSDT",
            side=Side.SELL,
            price=100.5,
            quantity=2.0,
            timestamp_ns=1_700_000_000_123_456_789,
            fee=0.1,
            strategy="mm",
            fee_currency="USDT",
        )
        assert decode_fill(encode_fill(peer)) == peer
        short = Position(
            symbol="BTCUSDT",
            quantity=-2.0,
            avg_entry_price=10.0,
            timestamp_ns=1_700_000_000_000_000_001,
            current_price=11.0,
            unrealized_pnl=-2.0,
            realized_pnl=1.0,
            strategy="mm",
        )
        assert encode_position(short)["side"] == "short" and encode_position(short)["quantity"] == 2.0
        assert decode_position(encode_position(short)) == short

    def test_timestamps_keep_nanoseconds(self) -> None:
        """format_timestamp writes nine fraction digits that parse back exactly."""
        assert format_timestamp(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"

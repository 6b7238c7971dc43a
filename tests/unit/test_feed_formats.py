"""b25's three market data formats (compat/messages.md), decoded: good messages, each field's edges, bad ones."""

from __future__ import annotations

from typing import Any

import pytest

from host.config import MARKET_DATA_FORMATS
from host.feeds.formats import FORMATS, SEED, decode_b25_book, decode_b25_ticker, decode_b25_trade
from host.feeds.health import Numbering
from sdk.errors import ValidationError
from sdk.events import Book, Side, Tick, Trade

UPDATED_AT = "2026-11-26T12:00:00.123456+00:00"
UPDATED_AT_NS = 1_795_694_400_123_456_000
BOOK_US = 1_764_158_400_123_456
TRADE_MS = 1_764_158_400_123


def ticker(**fields: Any) -> dict[str, Any]:
    """b25's market_data:<SYMBOL> message, as compat/messages.md shows it."""
    message = {"symbol": "BTCUSDT", "last_price": 61837.635, "bid_price": 61837.63, "ask_price": 61837.64,
               "volume_24h": 0.0, "high_24h": 0.0, "low_24h": 0.0, "updated_at": UPDATED_AT}  # fmt: skip
    return _with(message, fields)


def book(**fields: Any) -> dict[str, Any]:
    """b25's orderbook:<SYMBOL> message: levels keyed by price strings, in the order serde writes a BTreeMap."""
    message = {"symbol": "BTCUSDT", "bids": {"61837.62": 0.4, "61837.63": 1.2}, "asks": {"61837.64": 0.8,
               "61837.65": 2.5}, "last_update_id": 51234567, "timestamp": BOOK_US, "initialized": True}  # fmt: skip
    return _with(message, fields)


def trade(**fields: Any) -> dict[str, Any]:
    """b25's trades:<SYMBOL> message."""
    message = {"symbol": "BTCUSDT", "trade_id": 3061234567, "price": 61837.64, "quantity": 0.0125,
               "timestamp": TRADE_MS, "is_buyer_maker": False}  # fmt: skip
    return _with(message, fields)


_DROP = object()


def _with(message: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``message`` with ``fields`` set, and those given as _DROP removed."""
    out = {**message, **fields}
    return {k: v for k, v in out.items() if v is not _DROP}


def invalid(decode: Any, data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        decode(data)
    return caught.value


class TestTicker:
    def test_the_documented_message(self) -> None:
        """bid/ask as they are, last = b25's mid, no sizes (0), no sequence (0), time from updated_at."""
        assert decode_b25_ticker(ticker()) == Tick(
            symbol="BTCUSDT",
            timestamp_ns=UPDATED_AT_NS,
            bid_price=61837.63,
            bid_size=0.0,
            ask_price=61837.64,
            ask_size=0.0,
            last_price=61837.635,
            sequence=0,
        )

    @pytest.mark.parametrize(
        ("updated_at", "expected"),
        [
            (UPDATED_AT, UPDATED_AT_NS),
            ("2026-11-26T12:00:00.123456Z", UPDATED_AT_NS),
            ("2026-11-26T12:00:00+00:00", UPDATED_AT_NS - 123_456_000),
            ("2026-11-26T13:00:00.123456+01:00", UPDATED_AT_NS),
            ("2026-11-26T12:00:00.123456789+00:00", UPDATED_AT_NS + 789),
        ],
    )
    def test_updated_at_forms(self, updated_at: str, expected: int) -> None:
        """RFC 3339 with or without fraction, Z or any offset, to the nanosecond."""
        assert decode_b25_ticker(ticker(updated_at=updated_at)).timestamp_ns == expected
        assert decode_b25_ticker(ticker(updated_at=updated_at)).timestamp_ns == expected  # the cached second too

    def test_numbers_as_strings_and_integers(self) -> None:
        """A price sent as a decimal string or a whole number is read as the float it is."""
        tick = decode_b25_ticker(ticker(bid_price="61837", ask_price=61838, last_price="61837.5"))
        assert (tick.bid_price, tick.ask_price, tick.last_price) == (61837.0, 61838.0, 61837.5)
        assert type(tick.bid_price) is float and type(tick.ask_price) is float

    @pytest.mark.parametrize("last", [_DROP, None, 0, 0.0])
    def test_no_last_price(self, last: object) -> None:
        """last_price absent, null or 0 (an empty book's zero value): no last price."""
        assert decode_b25_ticker(ticker(last_price=last)).last_price is None

    def test_a_locked_market_is_a_market(self) -> None:
        """bid == ask is accepted, as in the seed's format."""
        assert decode_b25_ticker(ticker(bid_price=100.0, ask_price=100.0)).spread == 0.0

    def test_24h_figures_are_not_read(self) -> None:
        """volume_24h, high_24h and low_24h may be absent or anything: b25 sends them as 0 and nothing reads them."""
        assert decode_b25_ticker(ticker(volume_24h=_DROP, high_24h="n/a", low_24h=None)).bid_price == 61837.63

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"symbol": _DROP}, "b25-ticker.symbol: required"),
            ({"symbol": ""}, "b25-ticker.symbol: expected a non-empty string, got ''"),
            ({"symbol": 7}, "b25-ticker.symbol: expected a non-empty string, got 7"),
            ({"bid_price": _DROP}, "b25-ticker.bid_price: required"),
            ({"ask_price": None}, "b25-ticker.ask_price: required"),
            ({"bid_price": 0}, "b25-ticker.bid_price: must be > 0, got 0"),
            ({"bid_price": -1.5}, "b25-ticker.bid_price: must be > 0, got -1.5"),
            ({"ask_price": "abc"}, "b25-ticker.ask_price: expected a number, got 'abc'"),
            ({"ask_price": "nan"}, "b25-ticker.ask_price: must be finite, got 'nan'"),
            ({"ask_price": True}, "b25-ticker.ask_price: expected a number, got True"),
            ({"ask_price": [1.0]}, "b25-ticker.ask_price: expected a number, got [1.0]"),
            ({"last_price": -2.0}, "b25-ticker.last_price: must be > 0, got -2.0"),
            ({"bid_price": 61837.65}, "b25-ticker.bid_price: crossed market: bid_price 61837.65 > ask_price"),
            ({"updated_at": _DROP}, "b25-ticker.updated_at: required"),
            ({"updated_at": ""}, "b25-ticker.updated_at: required"),
            ({"updated_at": "yesterday"}, "b25-ticker.updated_at: expected RFC 3339 time, got 'yesterday'"),
            ({"updated_at": ["2026"]}, "b25-ticker.updated_at: expected a number, got list"),
            ({"timestamp": UPDATED_AT}, "b25-ticker.timestamp: unknown field"),
            ({"bid_size": 1.0}, "b25-ticker.bid_size: unknown field"),
        ],
    )
    def test_bad_messages_name_the_field(self, fields: dict[str, Any], message: str) -> None:
        """Each bad field is named, with the format, the rule and the value."""
        assert str(invalid(decode_b25_ticker, ticker(**fields))).startswith(message)


class TestBook:
    def test_the_documented_message(self) -> None:
        """Levels best first (bids down, asks up), time from microseconds, last_update_id the sequence."""
        expected = Book(symbol="BTCUSDT", timestamp_ns=BOOK_US * 1000, bids=((61837.63, 1.2), (61837.62, 0.4)),
                        asks=((61837.64, 0.8), (61837.65, 2.5)), last_price=None, sequence=51234567)  # fmt: skip
        assert decode_b25_book(book()) == expected

    def test_levels_in_any_order_come_out_sorted(self) -> None:
        """The object's key order is not trusted: "100" vs "99.5" sorts by value, not as text."""
        decoded = decode_b25_book(book(bids={"99.5": 1.0, "100": 2.0, "98": 3.0}, asks={"101": 1.0, "100.5": 2.0}))
        assert decoded.bids == ((100.0, 2.0), (99.5, 1.0), (98.0, 3.0))
        assert decoded.asks == ((100.5, 2.0), (101.0, 1.0))

    def test_sizes_as_strings_and_integers_and_zero(self) -> None:
        """A size may be a decimal string or a whole number; 0 is a level with nothing left."""
        decoded = decode_b25_book(book(bids={"100": "1.5", "99": 2, "98": 0}, asks={"101": 0.1}))
        assert decoded.bids == ((100.0, 1.5), (99.0, 2.0), (98.0, 0.0))

    def test_empty_sides_are_a_book(self) -> None:
        """A side with no levels (a thin market) is an empty tuple, not an error."""
        decoded = decode_b25_book(book(bids={}, asks={"101": 1.0}))
        assert (decoded.bids, decoded.best_ask, decoded.mid) == ((), (101.0, 1.0), None)

    def test_initialized_absent_is_initialized(self) -> None:
        """The service's older versions have no initialized field: their books are taken."""
        assert decode_b25_book(book(initialized=_DROP)).sequence == 51234567

    def test_an_uninitialized_book_is_refused_naming_initialized(self) -> None:
        """initialized: false: levels may be missing, so nothing trades on it."""
        err = invalid(decode_b25_book, book(initialized=False))
        assert (err.owner, err.field) == ("b25-book", "initialized")
        assert "not synced to a snapshot" in str(err)

    def test_timestamp_and_update_id_forms(self) -> None:
        """A whole-number float or a digit string is taken for an integer."""
        decoded = decode_b25_book(book(timestamp=float(BOOK_US), last_update_id="51234568"))
        assert (decoded.timestamp_ns, decoded.sequence) == (BOOK_US * 1000, 51234568)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"symbol": _DROP}, "b25-book.symbol: required"),
            ({"initialized": "yes"}, "b25-book.initialized: expected true or false, got 'yes'"),
            ({"bids": _DROP}, "b25-book.bids: required"),
            ({"asks": [[61837.64, 0.8]]}, "b25-book.asks: expected an object of price: size, got list"),
            ({"bids": {"abc": 1.0}}, "b25-book.bids['abc']: expected a price, got 'abc'"),
            ({"bids": {"0": 1.0}}, "b25-book.bids['0']: price must be > 0 and finite, got '0'"),
            ({"bids": {"-5": 1.0}}, "b25-book.bids['-5']: price must be > 0 and finite"),
            ({"asks": {"inf": 1.0}}, "b25-book.asks['inf']: price must be > 0 and finite"),
            ({"asks": {"nan": 1.0}}, "b25-book.asks['nan']: price must be > 0 and finite"),
            ({"bids": {"100": -1.0}}, "b25-book.bids['100']: must be >= 0, got -1.0"),
            ({"bids": {"100": None}}, "b25-book.bids['100']: required"),
            ({"bids": {"100": "lots"}}, "b25-book.bids['100']: expected a number, got 'lots'"),
            ({"bids": {"100": 1.0, "100.00": 2.0}}, "b25-book.bids: a price is listed twice"),
            ({"bids": {"61837.65": 1.0}}, "b25-book.bids: crossed book: best bid 61837.65 > best ask 61837.64"),
            ({"timestamp": _DROP}, "b25-book.timestamp: required"),
            (
                {"timestamp": TRADE_MS},
                "b25-book.timestamp: expected Unix microseconds, got 1764158400123 (that reads as milliseconds)",
            ),
            (
                {"timestamp": BOOK_US * 1000},
                "b25-book.timestamp: expected Unix microseconds, got 1764158400123456000 (that reads as nanoseconds)",
            ),
            ({"timestamp": -BOOK_US}, "b25-book.timestamp: must be >= 0"),
            ({"timestamp": 9_300_000_000_000_000}, "b25-book.timestamp: after the year 2262"),
            ({"timestamp": UPDATED_AT}, "b25-book.timestamp: expected Unix microseconds as an integer, got '2026"),
            ({"timestamp": 1.5e15 + 0.5}, "b25-book.timestamp: expected Unix microseconds as an integer"),
            ({"last_update_id": _DROP}, "b25-book.last_update_id: required"),
            ({"last_update_id": -1}, "b25-book.last_update_id: must be in 0..2^63-1, got -1"),
            ({"last_update_id": 2**63}, "b25-book.last_update_id: must be in 0..2^63-1"),
            ({"last_update_id": True}, "b25-book.last_update_id: expected an integer, got True"),
            ({"last_update_id": "12a"}, "b25-book.last_update_id: expected an integer, got '12a'"),
            ({"depth": 20}, "b25-book.depth: unknown field"),
        ],
    )
    def test_bad_messages_name_the_field(self, fields: dict[str, Any], message: str) -> None:
        """Each bad field is named (a level by its key), with the rule and the value."""
        assert str(invalid(decode_b25_book, book(**fields))).startswith(message)


class TestTrade:
    def test_the_documented_message(self) -> None:
        """Price and quantity, time from milliseconds, trade_id the sequence; the buyer took: a buy."""
        expected = Trade(
            symbol="BTCUSDT",
            timestamp_ns=TRADE_MS * 1_000_000,
            last_price=61837.64,
            volume=0.0125,
            volume_quote=None,
            side=Side.BUY,
            sequence=3061234567,
        )
        assert decode_b25_trade(trade()) == expected

    @pytest.mark.parametrize(("maker", "side"), [(True, Side.SELL), (False, Side.BUY), (_DROP, None), (None, None)])
    def test_aggressor_side_from_is_buyer_maker(self, maker: object, side: Side | None) -> None:
        """The buyer's order rested (maker): the seller was the aggressor, and the reverse; absent: no side."""
        assert decode_b25_trade(trade(is_buyer_maker=maker)).side is side

    def test_a_zero_quantity_is_a_trade(self) -> None:
        """Quantity 0 is accepted, as the Trade event accepts it."""
        assert decode_b25_trade(trade(quantity=0)).volume == 0.0

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"symbol": None}, "b25-trade.symbol: required"),
            ({"price": 0.0}, "b25-trade.price: must be > 0, got 0.0"),
            ({"price": _DROP}, "b25-trade.price: required"),
            ({"quantity": -0.5}, "b25-trade.quantity: must be >= 0, got -0.5"),
            ({"quantity": "x"}, "b25-trade.quantity: expected a number, got 'x'"),
            ({"is_buyer_maker": "true"}, "b25-trade.is_buyer_maker: expected true or false, got 'true'"),
            ({"is_buyer_maker": 1}, "b25-trade.is_buyer_maker: expected true or false, got 1"),
            (
                {"timestamp": BOOK_US},
                "b25-trade.timestamp: expected Unix milliseconds, got 1764158400123456 (that reads as microseconds)",
            ),
            (
                {"timestamp": TRADE_MS // 1000},
                "b25-trade.timestamp: expected Unix milliseconds, got 1764158400 (that reads as seconds)",
            ),
            ({"trade_id": _DROP}, "b25-trade.trade_id: required"),
            ({"trade_id": 1.5}, "b25-trade.trade_id: expected an integer, got 1.5"),
            ({"side": "buy"}, "b25-trade.side: unknown field"),
        ],
    )
    def test_bad_messages_name_the_field(self, fields: dict[str, Any], message: str) -> None:
        """Each bad field is named, with the rule and the value."""
        assert str(invalid(decode_b25_trade, trade(**fields))).startswith(message)


class TestTable:
    def test_the_config_names_exactly_these_formats(self) -> None:
        """host.config's MARKET_DATA_FORMATS (what a config may name) and the decoders here are one set."""
        assert set(FORMATS) == set(MARKET_DATA_FORMATS)

    def test_sequences_are_checked_in_a_stream_per_family(self) -> None:
        """Book update ids rise by any step, trade ids by 1, each in a stream apart from the seed's."""
        numbering = {name: (f.stream, f.numbering) for name, f in FORMATS.items()}
        assert numbering == {
            "seed": ("", Numbering.CONSECUTIVE), "b25-ticker": ("", Numbering.CONSECUTIVE),
            "b25-book": ("b25-book", Numbering.RISING), "b25-trade": ("b25-trade", Numbering.CONSECUTIVE),
        }  # fmt: skip

    @pytest.mark.parametrize(
        ("name", "error", "field"),
        [
            ("b25-book", ValidationError("b25-book", "bids['1.0']", "x"), "bids"),
            ("b25-book", ValidationError("Book", "sequence", "x"), "last_update_id"),
            ("b25-trade", ValidationError("Trade", "timestamp_ns", "x"), "timestamp"),
            ("b25-ticker", ValidationError("Tick", "timestamp_ns", "x"), "updated_at"),
            ("seed", ValidationError("Trade", "timestamp_ns", "x"), "timestamp"),
            ("seed", ValidationError("market_data", "bids[3].price", "x"), "bids"),
        ],
    )
    def test_an_error_is_counted_under_the_message_field(self, name: str, error: ValidationError, field: str) -> None:
        """The rejected metric's field label is the message's name of the field, whoever raised."""
        assert FORMATS[name].field_of(error) == field

    def test_the_seed_is_the_default(self) -> None:
        assert FORMATS["seed"] is SEED

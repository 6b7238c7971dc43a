"""Market data formats on Redis, by name: the seed's JSON and the three of b25's market-data service.

Model. A ``WireFormat`` is how one subscription's messages are read: a decoder from the parsed JSON
object to one SDK market event, how its sequence numbers run (``FeedHealth`` checks each format's
numbers as a stream of their own per symbol) and how a decoder's error names the message's field.
``redis.marketDataFormats`` names the format of each channel or pattern of
``redis.marketDataChannels``; the ones it does not name are the seed's. Pure functions, no state:
the feed calls them on the event loop, one message at a time.

The seed (``seed``): ``sdk._codec.decode_market``, every type, one sequence per symbol; its
``fast`` shortcut (``host.feeds.fastjson``, msgspec) decodes the messages it is sure of from their
bytes, the same events, and leaves the rest to orjson and ``decode_market``.

b25 (``compat/messages.md``). Its market-data service publishes three families of its own; none
has ``type``, and their fields are not the seed's:

- ``b25-ticker``, ``market_data:<SYMBOL>``, on every order-book change: a ``Tick`` of
  ``bid_price``/``ask_price``, ``last_price`` (b25's is the mid) and ``updated_at`` (RFC 3339). It
  has no sizes: the tick's ``bid_size``/``ask_size`` are 0, which is how an absent size reads in the
  seed's format too, and which the paper venue takes as "size not reported", not as an empty level
  (``host.execution.matching``). It has no sequence either (0: never checked for gaps).
  ``volume_24h``, ``high_24h`` and ``low_24h`` are accepted and not read (b25 sends them as 0).
- ``b25-book``, ``orderbook:<SYMBOL>``: the whole book as a ``Book``, the levels of the price-keyed
  objects sorted best first (bids descending, asks ascending); ``timestamp`` in Unix microseconds;
  ``last_update_id`` is the sequence, numbered ``RISING``: it counts the exchange's depth updates and
  the service publishes after each batch it applied, so it jumps by more than 1 per message as a
  matter of course; only a step back is counted (out of order). A book with
  ``initialized: false`` is rejected under the field ``initialized``: the service has not synced it
  to a snapshot yet, so levels may be missing and its touch may be wrong (or crossed); nothing trades
  on it and the symbol stays stale until an initialized book (or other data) arrives. A book without
  the field (the service's older versions) counts as initialized. A crossed book (best bid above best
  ask) is bad market data, as a crossed tick is in the seed's format.
- ``b25-trade``, ``trades:<SYMBOL>``: a ``Trade`` of ``price`` and ``quantity``; ``timestamp`` in
  Unix milliseconds (Binance's aggregate-trade time); ``trade_id`` is the sequence, numbered
  ``CONSECUTIVE``: a jump of more than 1 is trades missed. ``is_buyer_maker`` gives the aggressor:
  true means the buyer's order rested, so the seller took it (``Side.SELL``); false, ``Side.BUY``;
  absent, no side.

As in the seed's format, numbers may also come as decimal strings, a field neither in the format
nor informational is an error (a misspelt field may be a required one under a wrong name, and a
field b25 adds shows up at once, counted under its name), and every error is a ``ValidationError``
naming the format and the field. Epoch times are checked against their unit: a millisecond time on
a microsecond field (or the reverse) is refused with the unit it looks like, not read 1000x off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from host.feeds.fastjson import decode_seed
from host.feeds.health import Numbering
from sdk._codec import decode_market, parse_timestamp
from sdk.errors import ValidationError
from sdk.events import Book, Level, MarketEvent, Side, Tick, Trade

__all__ = ["FORMATS", "SEED", "WireFormat", "decode_b25_book", "decode_b25_ticker", "decode_b25_trade"]

_INF = math.inf
_INT64 = 2**63  # the protocol carries sequences and epoch ns as int64
# Epoch integers by unit as sdk._codec.parse_timestamp tells them apart: (unit, ns per unit, below this).
_UNITS = (("seconds", 10**9, 10**11), ("milliseconds", 10**6, 10**14), ("microseconds", 10**3, 10**17),
          ("nanoseconds", 1, _INF))  # fmt: skip
_TICKER, _BOOK, _TRADE = "b25-ticker", "b25-book", "b25-trade"
# The ticker's 24 h figures are accepted and not read (b25 sends them as 0).
_TICKER_FIELDS = frozenset({"symbol", "last_price", "bid_price", "ask_price", "updated_at", "volume_24h", "high_24h",
                            "low_24h"})  # fmt: skip
_BOOK_FIELDS = frozenset({"symbol", "bids", "asks", "last_update_id", "timestamp", "initialized"})
_TRADE_FIELDS = frozenset({"symbol", "trade_id", "price", "quantity", "timestamp", "is_buyer_maker"})


@dataclass(frozen=True, slots=True)
class WireFormat:
    """How the messages of one subscription are read."""

    owner: str  # what its decoder's errors name as the message ("b25-book.bids: ...")
    decode: Callable[[dict[str, Any]], MarketEvent]
    numbering: Numbering = Numbering.CONSECUTIVE
    # The FeedHealth stream its sequences are checked in: "" is the seed's one stream per symbol.
    stream: str = ""
    # The message's name of an event field, for errors the event's constructor raises.
    renames: Mapping[str, str] = field(default_factory=dict)
    # A shortcut from the message's bytes to its event (None: not sure, take orjson and ``decode``).
    fast: Callable[[bytes], MarketEvent | None] | None = None

    def field_of(self, err: ValidationError) -> str:
        """The message field ``err`` is about (``bids[3].price`` -> ``bids``), for the rejected metric."""
        name = err.field.split("[", 1)[0].split(".", 1)[0]
        return name if err.owner == self.owner else self.renames.get(name, name)


# --- the parts ------------------------------------------------------------------------------------


def _reject_unknown(owner: str, data: Mapping[str, Any], known: frozenset[str]) -> None:
    for key in data:
        if key not in known:
            raise ValidationError(owner, str(key), "unknown field")


def _symbol(owner: str, data: Mapping[str, Any]) -> str:
    value = data.get("symbol")
    if type(value) is str and value:
        return value
    reason = "required" if value is None else f"expected a non-empty string, got {value!r}"
    raise ValidationError(owner, "symbol", reason)


def _number(owner: str, name: str, value: object) -> float:
    """A finite number, also as a decimal string; ``name`` says where it was found."""
    if type(value) is float and -_INF < value < _INF:
        return value
    if value is None:
        raise ValidationError(owner, name, "required")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValidationError(owner, name, f"expected a number, got {value!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValidationError(owner, name, f"expected a number, got {value!r}")
    if not math.isfinite(number):
        raise ValidationError(owner, name, f"must be finite, got {value!r}")
    return number


def _price(owner: str, name: str, value: object) -> float:
    price = _number(owner, name, value)
    if price <= 0:
        raise ValidationError(owner, name, f"must be > 0, got {value!r}")
    return price


def _size(owner: str, name: str, value: object) -> float:
    size = _number(owner, name, value)
    if size < 0:
        raise ValidationError(owner, name, f"must be >= 0, got {value!r}")
    return size


def _whole(owner: str, name: str, value: object, expected: str) -> int:
    """An integer, also as a string of digits or a float with nothing after the point."""
    if type(value) is int:
        return value
    if value is None:
        raise ValidationError(owner, name, "required")
    if (isinstance(value, str) and value.isascii() and value.isdigit()) or (
        type(value) is float and value.is_integer()
    ):
        return int(value)
    raise ValidationError(owner, name, f"expected {expected}, got {value!r}")


def _sequence(owner: str, name: str, value: object) -> int:
    number = _whole(owner, name, value, "an integer")
    if 0 <= number < _INT64:
        return number
    raise ValidationError(owner, name, f"must be in 0..2^63-1, got {value!r}")


def _epoch_ns(owner: str, name: str, value: object, unit: str) -> int:
    """An epoch integer in ``unit`` (milliseconds or microseconds) -> ns; a number of another unit is refused."""
    number = _whole(owner, name, value, f"Unix {unit} as an integer")
    if number < 0:
        raise ValidationError(owner, name, f"must be >= 0, got {value!r}")
    found, scale = next((found, scale) for found, scale, below in _UNITS if number < below)
    if found != unit:
        raise ValidationError(owner, name, f"expected Unix {unit}, got {value!r} (that reads as {found})")
    nanos = number * scale
    if nanos >= _INT64:
        raise ValidationError(owner, name, f"after the year 2262 (epoch ns beyond int64), got {value!r}")
    return nanos


def _levels(owner: str, name: str, value: object, best_high: bool) -> tuple[Level, ...]:
    """A price-keyed object of sizes -> levels best first; a price twice (``"1.0"``, ``"1.00"``) is refused."""
    if type(value) is not dict:
        what = "required" if value is None else f"expected an object of price: size, got {type(value).__name__}"
        raise ValidationError(owner, name, what)
    levels: list[Level] = []
    for key, size in value.items():
        try:
            price = float(key)
        except ValueError:
            raise ValidationError(owner, f"{name}[{key!r}]", f"expected a price, got {key!r}") from None
        if not 0.0 < price < _INF:
            raise ValidationError(owner, f"{name}[{key!r}]", f"price must be > 0 and finite, got {key!r}")
        if type(size) is not float or not 0.0 <= size < _INF:
            size = _size(owner, f"{name}[{key!r}]", size)
        levels.append((price, size))
    levels.sort(reverse=best_high)
    if len({price for price, _ in levels}) != len(levels):
        raise ValidationError(owner, name, "a price is listed twice (under keys of the same value)")
    return tuple(levels)


# --- the decoders ---------------------------------------------------------------------------------


def decode_b25_ticker(data: dict[str, Any]) -> Tick:
    """``market_data:<SYMBOL>`` -> Tick: no sizes (0), no sequence (0), time from ``updated_at``."""
    o = _TICKER
    if not _TICKER_FIELDS.issuperset(data):
        _reject_unknown(o, data, _TICKER_FIELDS)
    symbol = _symbol(o, data)
    stamp = data.get("updated_at")
    if not stamp:
        raise ValidationError(o, "updated_at", "required")
    try:
        timestamp_ns = parse_timestamp(o, stamp)
    except ValidationError as err:
        raise ValidationError(o, "updated_at", err.reason) from None
    bid, ask = _price(o, "bid_price", data.get("bid_price")), _price(o, "ask_price", data.get("ask_price"))
    if bid > ask:
        raise ValidationError(o, "bid_price", f"crossed market: bid_price {bid!r} > ask_price {ask!r} "
                              "(the bid must not exceed the ask; bid == ask is accepted)")  # fmt: skip
    last = data.get("last_price")
    mid = None if last is None or last == 0 else _price(o, "last_price", last)
    return Tick(
        symbol=symbol,
        timestamp_ns=timestamp_ns,
        bid_price=bid,
        bid_size=0.0,
        ask_price=ask,
        ask_size=0.0,
        last_price=mid,
        sequence=0,
    )


def decode_b25_book(data: dict[str, Any]) -> Book:
    """``orderbook:<SYMBOL>`` -> Book, levels best first; an uninitialized book is refused (see the module)."""
    o = _BOOK
    if not _BOOK_FIELDS.issuperset(data):
        _reject_unknown(o, data, _BOOK_FIELDS)
    initialized = data.get("initialized", True)
    if initialized is not True:
        if initialized is False:
            raise ValidationError(o, "initialized", "false: the book is not synced to a snapshot yet (levels may be "
                                  "missing); skipped until it is")  # fmt: skip
        raise ValidationError(o, "initialized", f"expected true or false, got {initialized!r}")
    symbol = _symbol(o, data)
    timestamp_ns = _epoch_ns(o, "timestamp", data.get("timestamp"), "microseconds")
    sequence = _sequence(o, "last_update_id", data.get("last_update_id"))
    bids = _levels(o, "bids", data.get("bids"), best_high=True)
    asks = _levels(o, "asks", data.get("asks"), best_high=False)
    if bids and asks and bids[0][0] > asks[0][0]:
        raise ValidationError(o, "bids", f"crossed book: best bid {bids[0][0]!r} > best ask {asks[0][0]!r}")
    return Book(symbol=symbol, timestamp_ns=timestamp_ns, bids=bids, asks=asks, last_price=None, sequence=sequence)


def decode_b25_trade(data: dict[str, Any]) -> Trade:
    """``trades:<SYMBOL>`` -> Trade, the aggressor's side from ``is_buyer_maker``."""
    o = _TRADE
    if not _TRADE_FIELDS.issuperset(data):
        _reject_unknown(o, data, _TRADE_FIELDS)
    symbol = _symbol(o, data)
    timestamp_ns = _epoch_ns(o, "timestamp", data.get("timestamp"), "milliseconds")
    sequence = _sequence(o, "trade_id", data.get("trade_id"))
    price, quantity = _price(o, "price", data.get("price")), _size(o, "quantity", data.get("quantity"))
    maker = data.get("is_buyer_maker")
    if maker is None:
        side = None
    elif type(maker) is bool:
        side = Side.SELL if maker else Side.BUY
    else:
        raise ValidationError(o, "is_buyer_maker", f"expected true or false, got {maker!r}")
    return Trade(
        symbol=symbol,
        timestamp_ns=timestamp_ns,
        last_price=price,
        volume=quantity,
        volume_quote=None,
        side=side,
        sequence=sequence,
    )


# --- the table ------------------------------------------------------------------------------------

# Event fields named in a constructor's ValidationError, as the seed's message calls them.
_SEED_RENAMES = {"timestamp_ns": "timestamp"}

SEED = WireFormat("market_data", decode_market, renames=_SEED_RENAMES, fast=decode_seed)
FORMATS: Mapping[str, WireFormat] = {
    "seed": SEED,
    "b25-ticker": WireFormat(_TICKER, decode_b25_ticker, renames={"timestamp_ns": "updated_at"}),
    "b25-book": WireFormat(
        _BOOK,
        decode_b25_book,
        Numbering.RISING,
        stream=_BOOK,
        renames={"timestamp_ns": "timestamp", "sequence": "last_update_id"},
    ),
    "b25-trade": WireFormat(
        _TRADE,
        decode_b25_trade,
        Numbering.CONSECUTIVE,
        stream=_TRADE,
        renames={"timestamp_ns": "timestamp", "sequence": "trade_id"},
    ),
}

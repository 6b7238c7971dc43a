"""The seed's market data JSON decoded by msgspec straight into typed fields: the hot path's shortcut.

Model. ``SeedFastPath`` reads one message's bytes with a ``msgspec.json.Decoder`` into a struct
whose fields have the types the seed's peers use (numbers also as strings, ``type`` and ``side``
as text, book levels as pairs), rejecting unknown fields, and builds the SDK event from it with
the rules of ``sdk._codec.decode_market``. It only ever answers for a message it is sure of:
anything it does not handle (a bad or unusual value, an epoch-number timestamp, a field it does
not know, a message that is not a JSON object) gives ``None``, and the caller takes the existing
path, orjson and ``decode_market``, which decides and names the error. So a message means exactly
what it meant before; the shortcut only saves the dict and the generic checks (measured:
``bench/bench_decode.py``). ``tests/unit/test_fastjson.py`` feeds one corpus through both.

msgspec is a host-side dependency: the SDK keeps its own decoder and depends on pluggy only.
Pure: no state beyond the decoder and the codec's timestamp table; the feed calls it on the loop.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from sdk import _codec
from sdk._unchecked import unchecked
from sdk.events import Book, Candle, MarketEvent, Side, Tick, Trade

__all__ = ["SeedFastPath", "decode_seed"]

_OWNER = "market_data"
_INF = float("inf")
# orjson reads an integer beyond these as a float (and decode_market then rounds it); msgspec keeps
# it exact. Such a sequence is left to the existing path.
_INT_LOW, _INT_HIGH = -(2**63), 2**63

Number = float | str | None
Pair = tuple[float | str, float | str]


class _Market(msgspec.Struct, forbid_unknown_fields=True):
    """The seed's fields (``sdk._codec.MARKET_FIELDS``) as peers send them."""

    symbol: str
    timestamp: str
    sequence: int | str = 0
    type: str | None = None
    last_price: Number = None
    bid_price: Number = None
    ask_price: Number = None
    bid_size: Number = None
    ask_size: Number = None
    volume: Number = None
    volume_quote: Number = None
    bids: list[Pair] | None = None
    asks: list[Pair] | None = None
    open: Number = None
    high: Number = None
    low: Number = None
    close: Number = None
    side: str | None = None


class _Unsure(Exception):
    """The shortcut does not decide this message: the existing path does."""


def _required(value: Number) -> float:
    """``_codec._req``'s result for a value that passes it; ``_Unsure`` for anything else."""
    if type(value) is float and -_INF < value < _INF:
        return value
    number = _optional(value)
    if number is None:
        raise _Unsure
    return number


def _optional(value: Number) -> float | None:
    """``_codec._num(required=False)``: absent, null, "" and 0 are None; a string is read by ``float``."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        number = float(value)  # ValueError: the existing path names it
    else:
        number = value
    if number == 0:
        return None
    if not -_INF < number < _INF:
        raise _Unsure
    return number


def _sequence(value: int | str) -> int:
    """``_codec._int``: an integer, also as a string of digits; one beyond orjson's integers is left to it."""
    if type(value) is int:
        if _INT_LOW <= value < _INT_HIGH:
            return value
        raise _Unsure
    if type(value) is str and value.strip().lstrip("-").isdigit():
        return int(value)  # ValueError ("--7", "²"): the existing path raises it
    raise _Unsure


def _levels(pairs: list[Pair] | None) -> tuple[tuple[float, float], ...]:
    """``_codec._levels`` for levels it would pass on as numbers (a string that is not one: unsure)."""
    if pairs is None:
        return ()
    return tuple((p if type(p) is float else float(p), s if type(s) is float else float(s)) for p, s in pairs)


# Events are built without the frozen dataclass's __init__ (a slot store per field through
# object.__setattr__ is most of a checked build), then checked by the class's own __post_init__:
# its checks stay in one place (sdk/events.py), and one that fails raises, so the existing path
# decides and names the error.
_new_tick, _new_trade, _new_candle = unchecked(Tick), unchecked(Trade), unchecked(Candle)


def _tick(m: _Market, ts: int, seq: int) -> Tick:
    bid, ask, last = m.bid_price, m.ask_price, m.last_price
    if type(bid) is not float or type(ask) is not float:  # numbers as strings: the general rules
        bid, ask = _required(bid), _required(ask)
    if last is not None and (type(last) is not float or last == 0.0):
        last = _optional(last)
    if bid > ask:
        raise _Unsure  # crossed (the codec's rule, not Tick's): the existing path rejects it with its own words
    tick: Tick = _new_tick(m.symbol, ts, bid, _size(m.bid_size), ask, _size(m.ask_size), last, seq)
    tick.__post_init__()
    return tick


def _size(value: Number) -> float:
    """A tick's size: ``_optional(value) or 0.0`` (absent, null, "" and 0 are 0.0)."""
    if type(value) is float and value > 0.0:
        return value
    return _optional(value) or 0.0


_SIDES = {side.value: side for side in Side}  # KeyError (not a side): the existing path names it


def _trade(m: _Market, ts: int, seq: int) -> Trade:
    side = None if not m.side else _SIDES[m.side.lower()]
    trade: Trade = _new_trade(
        m.symbol, ts, _required(m.last_price), _required_size(m.volume), _optional(m.volume_quote), side, seq
    )
    trade.__post_init__()
    return trade


def _required_size(value: Number) -> float:
    """A required number that may be 0 (a trade's volume): ``_codec._req``."""
    if type(value) is float and -_INF < value < _INF:
        return value
    if type(value) is str and value.strip():
        number = float(value)
        if -_INF < number < _INF:
            return number
    raise _Unsure


def _book(m: _Market, ts: int, seq: int) -> Book:
    return Book(
        symbol=m.symbol, timestamp_ns=ts, bids=_levels(m.bids), asks=_levels(m.asks),
        last_price=_optional(m.last_price), sequence=seq,
    )  # fmt: skip


def _candle(m: _Market, ts: int, seq: int) -> Candle:
    candle: Candle = _new_candle(
        m.symbol, ts, _required(m.open), _required(m.high), _required(m.low), _required(m.close),
        _optional(m.volume), _optional(m.volume_quote), seq,
    )  # fmt: skip
    candle.__post_init__()
    return candle


_BUILDERS: dict[str, Callable[[_Market, int, int], MarketEvent]] = {
    "tick": _tick,
    "trade": _trade,
    "book": _book,
    "candle": _candle,
}


_SECONDS_NS = _codec._SECONDS_NS  # the codec's table of whole seconds already parsed (see parse_timestamp)


def _stamp(text: str) -> int:
    """``parse_timestamp``, with its fast path's commonest form (nine fraction digits and Z) read inline."""
    if len(text) == 30 and text[29] == "Z" and text[19] == ".":
        whole = _SECONDS_NS.get(text[:19])
        digits = text[20:29]
        if whole is not None and digits.isascii() and digits.isdigit():
            return whole + int(digits)
    return _codec.parse_timestamp(_OWNER, text)


class SeedFastPath:
    """Bytes of one seed message -> its market event, or None when the existing path must decide.

    ``candle_time`` reads a candle's timestamp first (a backtest's per-hour table: a minute candle
    file has a new second on every row); None from it falls back to ``parse_timestamp``.
    """

    __slots__ = ("_candle_time", "_decode")

    def __init__(self, candle_time: Callable[[str], int | None] | None = None) -> None:
        self._decode = msgspec.json.Decoder(_Market).decode
        self._candle_time = candle_time

    def __call__(self, payload: bytes) -> MarketEvent | None:
        try:
            m = self._decode(payload)
            kind = (m.type or "tick").lower()
            builder = _BUILDERS[kind]
            if not m.symbol:
                return None
            ts = None
            if m.type == "candle" and self._candle_time is not None:
                ts = self._candle_time(m.timestamp)
            # As the backtest reader did: its table's epoch ns go through the codec's rule for numbers.
            ts = _stamp(m.timestamp) if ts is None else _codec.parse_timestamp(_OWNER, ts)
            return builder(m, ts, _sequence(m.sequence))
        except Exception:  # any doubt, a bad value or a surprise: the existing path decides and names it
            return None


decode_seed = SeedFastPath()
"""The shortcut for the live feed (timestamps through the codec's per-second table)."""

"""Decoding the seed system's JSON messages (already parsed into dicts) into SDK events.

What peers really send is accepted: numbers as strings, enums in any letter case, RFC 3339
timestamps with or without fractional seconds and zone (no zone means UTC), ``id`` for
``fill_id``, Go-style zero values for fields a message kind does not use. Fills and positions may
also carry the informational fields peers of the same system add (``FILL_INFORMATIONAL``,
``POSITION_INFORMATIONAL``): they are accepted, and a fill's fee currency is kept. A field in
neither set (a misspelt ``quantiy``) is still an error: it may be a required field under a wrong
name. A fill without ``order_id`` (the account monitor's) decodes with ``order_id`` "": it is its
strategy's by the ``strategy`` field alone. A tick whose bid is above its ask is bad market data;
bid == ask (a locked market) is a market. Anything else raises ``ValidationError`` naming the
message kind and field. The host's feeds and ``sdk.testing`` both
decode through here, so a message means the same in a unit test as in production.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from sdk import _check as check
from sdk.errors import ValidationError
from sdk.events import Book, Candle, Event, Fill, OrderUpdate, OrderUpdateStatus, Position, Side, Tick, Timer, Trade

__all__ = [
    "decode_event",
    "decode_fill",
    "decode_market",
    "decode_order_update",
    "decode_position",
    "encode_fill",
    "encode_market",
    "encode_position",
    "format_timestamp",
    "load_events",
]

MARKET_FIELDS = frozenset(
    {
        "symbol", "timestamp", "sequence", "type", "last_price", "bid_price", "ask_price", "bid_size", "ask_size",
        "volume", "volume_quote", "bids", "asks", "open", "high", "low", "close", "side",
    }
)  # fmt: skip
# The fee's asset under the names peers use: the account monitor's, the order service's, Binance's.
_FEE_CURRENCY = ("fee_currency", "fee_asset", "commission_asset")
# Sent by peers, read by nobody here: the venue's ids of the order and the trade, who and where.
FILL_INFORMATIONAL = frozenset(
    {*_FEE_CURRENCY, "exchange_order_id", "trade_id", "is_maker", "user_id", "account_id", "exchange"}
)
FILL_FIELDS = frozenset(
    {
        "fill_id", "id", "order_id", "client_order_id", "symbol", "side", "price", "quantity", "fee", "timestamp",
        "strategy", *FILL_INFORMATIONAL,
    }
)  # fmt: skip
# What an account or exchange position adds; ``current_price``/``unrealized_pnl`` stay the ones read.
POSITION_INFORMATIONAL = frozenset(
    {
        "id", "user_id", "account_id", "exchange", "leverage", "margin", "margin_type", "isolated_margin",
        "liquidation_price", "mark_price", "notional", "updated_at",
    }
)  # fmt: skip
POSITION_FIELDS = frozenset(
    {
        "symbol", "side", "quantity", "avg_entry_price", "current_price", "unrealized_pnl", "realized_pnl",
        "timestamp", "strategy", *POSITION_INFORMATIONAL,
    }
)  # fmt: skip
TIMER_FIELDS = frozenset({"name", "timestamp"})
ORDER_UPDATE_FIELDS = frozenset(
    {
        "client_order_id", "strategy", "symbol", "side", "slot", "status", "quantity", "filled_quantity",
        "remaining_quantity", "average_price", "reason", "rule", "timestamp",
    }
)  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INF = math.inf
# The seconds' fraction; read here because datetime keeps microseconds only and Go sends nanoseconds.
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")
# Fast path of parse_timestamp (see there): epoch ns of "YYYY-MM-DDTHH:MM:SS" already parsed, in UTC.
_WHOLE_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_SECONDS_NS: dict[str, int] = {}
_SECONDS_KEPT = 4096


def _reject_unknown(owner: str, data: Mapping[str, Any], known: frozenset[str]) -> None:
    if known.issuperset(data):
        return
    for key in data:
        if key not in known:
            raise ValidationError(owner, str(key), "unknown field")


def _num(owner: str, data: Mapping[str, Any], name: str, *, required: bool = True) -> float | None:
    """A number, also sent as a decimal string; absent, null, "" and (when optional) 0 mean missing."""
    value = data.get(name)
    if type(value) is float and -_INF < value < _INF and (value or required):
        return value  # the common case, decided without the checks below
    if isinstance(value, str):
        try:
            value = float(value) if value.strip() else None
        except ValueError:
            raise ValidationError(owner, name, f"expected a number, got {value!r}") from None
    if value is None or (not required and value == 0):
        if required:
            raise ValidationError(owner, name, "required")
        return None
    return check.number(owner, name, value)


def _req(owner: str, data: Mapping[str, Any], name: str) -> float:
    value = _num(owner, data, name)
    assert value is not None
    return value


def _int(owner: str, data: Mapping[str, Any], name: str) -> int:
    value = data.get(name, 0)
    if type(value) is int:
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check.integer(owner, name, 0 if value is None else value)


def parse_timestamp(owner: str, value: object) -> int:
    """RFC 3339 text (any fraction digits, ``Z`` or offset, no zone = UTC) or epoch number -> epoch ns.

    Epoch numbers are read by size: s below 1e11, ms below 1e14, us below 1e17, else ns.
    """
    if isinstance(value, str):
        # Fast path for the seed's own form, "2024-08-08T23:54:14.087891Z" (fraction and Z optional;
        # or "+00:00" for Z, as b25's Rust service writes it), in a second seen before: the whole
        # seconds come from a table, only the fraction is read here.
        # Anything else, or a second not in the table yet, takes the full parse.
        whole_ns = _SECONDS_NS.get(value[:19])
        if whole_ns is not None:
            fraction_ns = _fraction_ns(value[19:])
            if fraction_ns is not None:
                return whole_ns + fraction_ns
        return _parse_rfc3339(owner, value)
    number = check.number(owner, "timestamp", value)
    for limit, scale in ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3)):
        if abs(number) < limit:
            # An int stays exact: a float cannot hold epoch nanoseconds (or ms scaled to ns) to the unit.
            return value * scale if isinstance(value, int) else round(number * scale)
    return value if isinstance(value, int) else round(number)


def _fraction_ns(rest: str) -> int | None:
    """What follows the whole seconds in the fast path's form ("", "Z", ".123", ".123Z", ".123+00:00") in ns;
    else None."""
    if rest[-1:] == "Z":
        rest = rest[:-1]
    elif rest[-6:] == "+00:00":
        rest = rest[:-6]
    if not rest:
        return 0
    digits = rest[1:]
    if rest[0] == "." and digits.isascii() and digits.isdigit():
        return int(digits[:9].ljust(9, "0"))
    return None


def _parse_rfc3339(owner: str, value: str) -> int:
    nanos = _parse_rfc3339_text(owner, value)
    head, fraction_ns = value[:19], _fraction_ns(value[19:])
    if fraction_ns is not None and _WHOLE_SECONDS.fullmatch(head):
        if len(_SECONDS_NS) >= _SECONDS_KEPT:
            _SECONDS_NS.clear()
        _SECONDS_NS[head] = nanos - fraction_ns
    return nanos


def _parse_rfc3339_text(owner: str, value: str) -> int:
    fraction = _FRACTION.search(value)
    whole = value if fraction is None else value[: fraction.start()] + value[fraction.end() :]
    try:
        parsed = datetime.fromisoformat(whole.strip().replace("z", "Z"))
    except ValueError:
        raise ValidationError(owner, "timestamp", f"expected RFC 3339 time, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - _EPOCH
    nanos = 0 if fraction is None else int(fraction.group(1)[:9].ljust(9, "0"))
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000 + nanos


def _timestamp(owner: str, data: Mapping[str, Any]) -> int:
    value = data.get("timestamp")
    if value is None or value == "":
        raise ValidationError(owner, "timestamp", "required")
    return parse_timestamp(owner, value)


def _symbol(owner: str, data: Mapping[str, Any]) -> str:
    if "symbol" not in data:
        raise ValidationError(owner, "symbol", "required")
    return check.text(owner, "symbol", data["symbol"])


def _levels(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError("market_data", name, f"expected a list of [price, size], got {value!r}")
    return [[n if type(n) is float else _str_num(n) for n in lv] if isinstance(lv, list) else lv for lv in value]


def _str_num(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def decode_market(data: Mapping[str, Any]) -> Tick | Trade | Book | Candle:
    """One market data message (``type`` tick, trade, book or candle; absent means tick)."""
    owner = "market_data"
    _reject_unknown(owner, data, MARKET_FIELDS)
    symbol = _symbol(owner, data)
    ts = _timestamp(owner, data)
    seq = _int(owner, data, "sequence")
    kind = data.get("type") or "tick"
    if not isinstance(kind, str):
        raise ValidationError(owner, "type", f"expected tick, trade, book or candle, got {kind!r}")
    builder = _MARKET_BUILDERS.get(kind.lower())
    if builder is None:
        raise ValidationError(owner, "type", f"expected tick, trade, book or candle, got {kind!r}")
    return builder(data, symbol, ts, seq)


def _tick(data: Mapping[str, Any], symbol: str, ts: int, seq: int) -> Tick:
    o = "market_data"
    bid, ask = _req(o, data, "bid_price"), _req(o, data, "ask_price")
    if bid > ask:
        raise ValidationError(o, "bid_price", f"crossed market: bid_price {bid!r} > ask_price {ask!r} "
                              "(the bid must not exceed the ask; bid == ask is accepted)")  # fmt: skip
    return Tick(
        symbol=symbol, timestamp_ns=ts, bid_price=bid, bid_size=_num(o, data, "bid_size", required=False) or 0.0,
        ask_price=ask, ask_size=_num(o, data, "ask_size", required=False) or 0.0,
        last_price=_num(o, data, "last_price", required=False), sequence=seq,
    )  # fmt: skip


def _trade(data: Mapping[str, Any], symbol: str, ts: int, seq: int) -> Trade:
    o = "market_data"
    side = data.get("side")  # the aggressor's, when the publisher says (buy/sell, any case)
    aggressor = None if side in (None, "") else check.member(o, "side", Side, side)
    return Trade(
        symbol=symbol, timestamp_ns=ts, last_price=_req(o, data, "last_price"), volume=_req(o, data, "volume"),
        volume_quote=_num(o, data, "volume_quote", required=False), side=aggressor, sequence=seq,
    )  # fmt: skip


def _book(data: Mapping[str, Any], symbol: str, ts: int, seq: int) -> Book:
    last = _num("market_data", data, "last_price", required=False)
    return Book(
        symbol=symbol,
        timestamp_ns=ts,
        bids=tuple(_levels(data, "bids")),
        asks=tuple(_levels(data, "asks")),
        last_price=last,
        sequence=seq,
    )


def _candle(data: Mapping[str, Any], symbol: str, ts: int, seq: int) -> Candle:
    o = "market_data"
    return Candle(
        symbol=symbol,
        timestamp_ns=ts,
        open=_req(o, data, "open"),
        high=_req(o, data, "high"),
        low=_req(o, data, "low"),
        close=_req(o, data, "close"),
        volume=_num(o, data, "volume", required=False),
        volume_quote=_num(o, data, "volume_quote", required=False),
        sequence=seq,
    )


_MARKET_BUILDERS: dict[str, Callable[[Mapping[str, Any], str, int, int], Tick | Trade | Book | Candle]] = {
    "tick": _tick,
    "trade": _trade,
    "book": _book,
    "candle": _candle,
}


def _text_field(owner: str, data: Mapping[str, Any], *names: str, required: bool = True) -> str:
    """The first of ``names`` present and not empty, as text (an integer id becomes its digits)."""
    for name in names:
        value = data.get(name)
        if value not in (None, ""):
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
            return check.text(owner, name, value)
    if required:
        raise ValidationError(owner, names[0], "required")
    return ""


def decode_fill(data: Mapping[str, Any]) -> Fill:
    """One fill from ``trading.fills`` (seed or peer format).

    ``order_id`` (else ``client_order_id``) may be absent: ``order_id`` is then "" and the fill is
    matched to its strategy by ``strategy``. The fee's currency is read from ``fee_currency`` (or
    ``fee_asset``, ``commission_asset``); the other ``FILL_INFORMATIONAL`` fields are accepted and ignored.
    """
    owner = "fill"
    _reject_unknown(owner, data, FILL_FIELDS)
    return Fill(
        fill_id=_text_field(owner, data, "fill_id", "id"),
        order_id=_text_field(owner, data, "order_id", "client_order_id", required=False),
        symbol=_symbol(owner, data),
        side=check.member(owner, "side", Side, data.get("side")),
        price=_req(owner, data, "price"),
        quantity=_req(owner, data, "quantity"),
        timestamp_ns=_timestamp(owner, data),
        fee=_num(owner, data, "fee", required=False) or 0.0,
        strategy=str(data.get("strategy") or ""),
        fee_currency=_text_field(owner, data, *_FEE_CURRENCY, required=False),
    )


_POSITION_SIGNS = {"buy": 1, "long": 1, "sell": -1, "short": -1, "flat": 0, "": 0}


def decode_position(data: Mapping[str, Any]) -> Position:
    """One position from ``trading.positions``; ``side`` (long/short/buy/sell/flat) signs the quantity.

    With no side the quantity is taken as already signed. ``POSITION_INFORMATIONAL`` fields are
    accepted and ignored.
    """
    owner = "position"
    _reject_unknown(owner, data, POSITION_FIELDS)
    side = data.get("side") or ""
    if not isinstance(side, str) or side.lower() not in _POSITION_SIGNS:
        raise ValidationError(owner, "side", f"expected long, short, buy, sell or flat, got {side!r}")
    quantity = _req(owner, data, "quantity")
    if side:
        quantity = abs(quantity) * _POSITION_SIGNS[side.lower()]
    return Position(
        symbol=_symbol(owner, data),
        quantity=quantity,
        avg_entry_price=_num(owner, data, "avg_entry_price", required=False) or 0.0,
        timestamp_ns=_timestamp(owner, data),
        current_price=_num(owner, data, "current_price", required=False) or 0.0,
        unrealized_pnl=_num(owner, data, "unrealized_pnl", required=False) or 0.0,
        realized_pnl=_num(owner, data, "realized_pnl", required=False) or 0.0,
        strategy=str(data.get("strategy") or ""),
    )


def decode_order_update(data: Mapping[str, Any]) -> OrderUpdate:
    """One order update (what ``on_order`` receives), its fields by their names, ``timestamp`` as for a fill."""
    owner = "order"
    _reject_unknown(owner, data, ORDER_UPDATE_FIELDS)
    return OrderUpdate(
        client_order_id=_text_field(owner, data, "client_order_id"),
        strategy=str(data.get("strategy") or ""),
        symbol=_symbol(owner, data),
        side=check.member(owner, "side", Side, data.get("side")),
        slot=str(data.get("slot") or ""),
        status=check.member(owner, "status", OrderUpdateStatus, data.get("status")),
        quantity=_req(owner, data, "quantity"),
        filled_quantity=_num(owner, data, "filled_quantity", required=False) or 0.0,
        remaining_quantity=_num(owner, data, "remaining_quantity", required=False) or 0.0,
        average_price=_num(owner, data, "average_price", required=False) or 0.0,
        reason=str(data.get("reason") or ""),
        rule=str(data.get("rule") or ""),
        timestamp_ns=_timestamp(owner, data),
    )


def decode_event(data: Mapping[str, Any]) -> Event:
    """Any event in a JSON-lines file: market data by ``type``, or ``type`` fill, position, timer or order."""
    if not isinstance(data, Mapping):
        raise ValidationError("event", "type", f"expected a JSON object, got {type(data).__name__}")
    kind = str(data.get("type") or "tick").lower()
    rest = {k: v for k, v in data.items() if k != "type"}
    if kind == "fill":
        return decode_fill(rest)
    if kind == "position":
        return decode_position(rest)
    if kind == "timer":
        _reject_unknown("timer", rest, TIMER_FIELDS)
        return Timer(name=str(rest.get("name") or "timer"), timestamp_ns=_timestamp("timer", rest))
    if kind == "order":
        return decode_order_update(rest)
    return decode_market(data)


def load_events(path: str | Path) -> Iterator[Event]:
    """Events from a JSON-lines file, one object a line; a bad line raises naming the line number."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield decode_event(json.loads(line))
            except (ValueError, ValidationError) as err:
                raise ValidationError(f"{path}:{number}", "line", str(err)) from None


# ---------------------------------------------------------------- encoding (the seed's format)


def format_timestamp(timestamp_ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds and a ``Z``: what the seed's peers parse."""
    seconds, nanos = divmod(timestamp_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def encode_market(event: Tick | Trade | Book | Candle) -> dict[str, Any]:
    """A market event as the seed's JSON object (``decode_market`` reads it back to an equal event)."""
    head: dict[str, Any] = {
        "symbol": event.symbol, "timestamp": format_timestamp(event.timestamp_ns), "sequence": event.sequence,
        "type": event.kind,
    }  # fmt: skip
    body: dict[str, Any]
    match event:
        case Tick():
            body = {"bid_price": event.bid_price, "bid_size": event.bid_size, "ask_price": event.ask_price,
                    "ask_size": event.ask_size, "last_price": event.last_price}  # fmt: skip
        case Trade():
            body = {"last_price": event.last_price, "volume": event.volume, "volume_quote": event.volume_quote}
            if event.side is not None:
                body["side"] = event.side.value
        case Book():
            body = {"bids": [list(level) for level in event.bids], "asks": [list(level) for level in event.asks],
                    "last_price": event.last_price}  # fmt: skip
        case Candle():
            body = {"open": event.open, "high": event.high, "low": event.low, "close": event.close,
                    "volume": event.volume, "volume_quote": event.volume_quote}  # fmt: skip
    head.update({key: value for key, value in body.items() if value is not None})
    return head


def encode_fill(fill: Fill) -> dict[str, Any]:
    """A fill as the seed publishes it on ``trading.fills`` (plus ``fee_currency`` when the fill has one)."""
    message = {
        "fill_id": fill.fill_id, "order_id": fill.order_id, "symbol": fill.symbol, "side": fill.side.value,
        "price": fill.price, "quantity": fill.quantity, "fee": fill.fee,
        "timestamp": format_timestamp(fill.timestamp_ns), "strategy": fill.strategy,
    }  # fmt: skip
    if fill.fee_currency:
        message["fee_currency"] = fill.fee_currency
    return message


def encode_position(position: Position) -> dict[str, Any]:
    """A position as the seed publishes it on ``trading.positions`` (side long/short/flat, quantity unsigned)."""
    side = "long" if position.quantity > 0 else "short" if position.quantity < 0 else "flat"
    return {
        "symbol": position.symbol, "side": side, "quantity": abs(position.quantity),
        "avg_entry_price": position.avg_entry_price, "current_price": position.current_price,
        "unrealized_pnl": position.unrealized_pnl, "realized_pnl": position.realized_pnl,
        "timestamp": format_timestamp(position.timestamp_ns), "strategy": position.strategy,
    }  # fmt: skip

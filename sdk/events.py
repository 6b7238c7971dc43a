"""Events a strategy receives and the orders it asks for.

Every type here is an immutable, slotted dataclass validated on construction: a bad value
raises ``ValidationError`` naming the type and field (``Tick.bid_price: must be > 0, got 0``).
Constructors take keywords only, named as the JSON-lines format names the fields
(``Tick(symbol="BTCUSDT", timestamp_ns=ts, bid_price=100.0, bid_size=1.0, ask_price=100.1,
ask_size=2.0)``), except that a time is ``timestamp_ns`` (an integer) where JSON has ``timestamp`` (text).
Times are Unix epoch nanoseconds (``timestamp_ns``); ``.time`` gives a UTC ``datetime``.
Enumerations accept their values in any letter case, as peers send ``"BUY"`` or ``"buy"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import ClassVar, Mapping

from sdk import _check as check
from sdk.errors import ValidationError

__all__ = [
    "Book",
    "Cancel",
    "Candle",
    "Event",
    "Fill",
    "MarketEvent",
    "OrderType",
    "OrderUpdate",
    "OrderUpdateStatus",
    "Position",
    "Side",
    "Signal",
    "Tick",
    "TimeInForce",
    "Timer",
    "Trade",
]


# str mixins, not StrEnum: StrEnum would change what str() and f-strings of these public members give.
class Side(str, Enum):  # noqa: UP042
    """An order's or a fill's side: ``buy`` or ``sell`` (accepted in any letter case)."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the sign a fill of this side adds to a position."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """SELL for BUY, BUY for SELL."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(str, Enum):  # noqa: UP042 (see Side)
    """How an order executes: at market, at a limit ``price``, or once ``stop_price`` trades (stop, stop-limit)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(str, Enum):  # noqa: UP042 (see Side)
    """How long an order works: good till cancelled, immediate or cancel (the rest), fill or kill (all or nothing)."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


def _time(timestamp_ns: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ns / 1e9, tz=UTC)


def _check_head(owner: str, symbol: object, timestamp_ns: object, sequence: object = 0) -> None:
    check.text(owner, "symbol", symbol)
    check.integer(owner, "timestamp_ns", timestamp_ns)
    check.integer(owner, "sequence", sequence)


# Fast paths. Market events are built ~50k times a second from the feed, and the checks that name
# the field at fault cost more than the rest of decoding. So each market type first asks one
# expression whether every field is a plain value well inside its rule (exact str, int or float,
# finite, > 0 or >= 0 as the rule says); only when it is not do the full checks run, and they alone
# decide and raise. A guard is never looser than the checks after it, so behaviour is unchanged.
_INF = math.inf


def _plain_head(symbol: object, timestamp_ns: object, sequence: object) -> bool:
    return type(symbol) is str and symbol != "" and type(timestamp_ns) is int and type(sequence) is int


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Best bid and ask (a Binance ``bookTicker``); ``last_price`` is the latest trade, if any."""

    symbol: str
    timestamp_ns: int
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    last_price: float | None = None
    sequence: int = 0
    kind: ClassVar[str] = "tick"

    def __post_init__(self) -> None:
        if (
            _plain_head(self.symbol, self.timestamp_ns, self.sequence)
            and type(self.bid_price) is float and 0.0 < self.bid_price < _INF
            and type(self.ask_price) is float and 0.0 < self.ask_price < _INF
            and type(self.bid_size) is float and 0.0 <= self.bid_size < _INF
            and type(self.ask_size) is float and 0.0 <= self.ask_size < _INF
            and (self.last_price is None or (type(self.last_price) is float and 0.0 < self.last_price < _INF))
        ):  # fmt: skip
            return
        _check_head("Tick", self.symbol, self.timestamp_ns, self.sequence)
        check.positive("Tick", "bid_price", self.bid_price)
        check.positive("Tick", "ask_price", self.ask_price)
        check.non_negative("Tick", "bid_size", self.bid_size)
        check.non_negative("Tick", "ask_size", self.ask_size)
        check.optional_positive("Tick", "last_price", self.last_price)

    @property
    def mid(self) -> float:
        """(bid + ask) / 2."""
        return (self.bid_price + self.ask_price) / 2

    @property
    def spread(self) -> float:
        """ask - bid (0 for a locked market)."""
        return self.ask_price - self.bid_price

    @property
    def time(self) -> datetime:
        """``timestamp_ns`` as a UTC ``datetime`` (to the microsecond)."""
        return _time(self.timestamp_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """One trade on the venue: ``last_price`` is its price, ``volume`` its quantity in the base asset and
    ``volume_quote`` in the quote asset (the JSON's names); ``side`` is the aggressor's (the taker's),
    None when the feed does not say."""

    symbol: str
    timestamp_ns: int
    last_price: float
    volume: float
    volume_quote: float | None = None
    side: Side | None = None
    sequence: int = 0
    kind: ClassVar[str] = "trade"

    def __post_init__(self) -> None:
        quote = self.volume_quote
        if (
            _plain_head(self.symbol, self.timestamp_ns, self.sequence)
            and type(self.last_price) is float and 0.0 < self.last_price < _INF
            and type(self.volume) is float and 0.0 <= self.volume < _INF
            and (quote is None or (type(quote) is float and 0.0 <= quote < _INF))
            and (self.side is None or type(self.side) is Side)
        ):  # fmt: skip
            return
        _check_head("Trade", self.symbol, self.timestamp_ns, self.sequence)
        check.positive("Trade", "last_price", self.last_price)
        check.non_negative("Trade", "volume", self.volume)
        check.optional_non_negative("Trade", "volume_quote", self.volume_quote)
        if self.side is not None:
            object.__setattr__(self, "side", check.member("Trade", "side", Side, self.side))

    @property
    def time(self) -> datetime:
        """``timestamp_ns`` as a UTC ``datetime`` (to the microsecond)."""
        return _time(self.timestamp_ns)


Level = tuple[float, float]


def _levels(field_name: str, levels: object) -> tuple[Level, ...]:
    if not isinstance(levels, (list, tuple)):
        raise ValidationError("Book", field_name, f"expected a list of [price, size], got {levels!r}")
    out = []
    for i, level in enumerate(levels):
        if (type(level) is list or type(level) is tuple) and len(level) == 2:
            price, size = level
            if type(price) is float and type(size) is float and 0.0 < price < _INF and 0.0 <= size < _INF:
                out.append((price, size))
                continue
        out.append(_level(field_name, i, level))
    return tuple(out)


def _level(field_name: str, i: int, level: object) -> Level:
    if not isinstance(level, (list, tuple)) or len(level) != 2:
        raise ValidationError("Book", f"{field_name}[{i}]", f"expected [price, size], got {level!r}")
    return (
        check.positive("Book", f"{field_name}[{i}].price", level[0]),
        check.non_negative("Book", f"{field_name}[{i}].size", level[1]),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Book:
    """Top levels of the order book, a full snapshot (not a diff): bids best first (descending), asks best first."""

    symbol: str
    timestamp_ns: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    last_price: float | None = None
    sequence: int = 0
    kind: ClassVar[str] = "book"

    def __post_init__(self) -> None:
        if not _plain_head(self.symbol, self.timestamp_ns, self.sequence):
            _check_head("Book", self.symbol, self.timestamp_ns, self.sequence)
        object.__setattr__(self, "bids", _levels("bids", self.bids))
        object.__setattr__(self, "asks", _levels("asks", self.asks))
        check.optional_positive("Book", "last_price", self.last_price)

    @property
    def best_bid(self) -> Level | None:
        """(price, size) of the best bid; None for an empty side."""
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        """(price, size) of the best ask; None for an empty side."""
        return self.asks[0] if self.asks else None

    @property
    def mid(self) -> float | None:
        """(best bid + best ask) / 2; None when a side is empty."""
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2

    def imbalance(self, depth: int = 5) -> float:
        """(bid size - ask size) / (bid size + ask size) over the top ``depth`` levels, in [-1, 1]."""
        bid = sum(size for _, size in self.bids[:depth])
        ask = sum(size for _, size in self.asks[:depth])
        total = bid + ask
        return 0.0 if total == 0 else (bid - ask) / total

    @property
    def time(self) -> datetime:
        """``timestamp_ns`` as a UTC ``datetime`` (to the microsecond)."""
        return _time(self.timestamp_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candle:
    """An OHLC bar. ``timestamp_ns`` is the bar's open time; ``volume`` is in the base asset."""

    symbol: str
    timestamp_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float | None = None
    volume_quote: float | None = None
    sequence: int = 0
    kind: ClassVar[str] = "candle"

    def __post_init__(self) -> None:
        o, h, lo, c = self.open, self.high, self.low, self.close
        if (
            _plain_head(self.symbol, self.timestamp_ns, self.sequence)
            and type(o) is float and type(h) is float and type(lo) is float and type(c) is float
            and 0.0 < lo <= o <= h < _INF and lo <= c <= h
            and (self.volume is None or (type(self.volume) is float and 0.0 <= self.volume < _INF))
            and (self.volume_quote is None or (type(self.volume_quote) is float and 0.0 <= self.volume_quote < _INF))
        ):  # fmt: skip
            return
        _check_head("Candle", self.symbol, self.timestamp_ns, self.sequence)
        for name in ("open", "high", "low", "close"):
            check.positive("Candle", name, getattr(self, name))
        if self.high < max(self.open, self.close, self.low):
            raise ValidationError("Candle", "high", f"must be >= open, close and low, got {self.high}")
        if self.low > min(self.open, self.close):
            raise ValidationError("Candle", "low", f"must be <= open and close, got {self.low}")
        check.optional_non_negative("Candle", "volume", self.volume)
        check.optional_non_negative("Candle", "volume_quote", self.volume_quote)

    @property
    def time(self) -> datetime:
        """``timestamp_ns`` as a UTC ``datetime`` (to the microsecond)."""
        return _time(self.timestamp_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """An execution of one of this strategy's orders.

    ``order_id`` is "" when the peer that reported the fill did not say which order it was (the
    account monitor's fills); such a fill is this strategy's by its ``strategy`` alone.
    ``fee_currency`` is the asset the fee was charged in ("USDT"), "" when not reported.
    ``reconciled`` marks a fill the host recovered from the venue's order state rather than
    received (its report was lost while the host was down): the quantity the venue says filled
    beyond the fills the host holds, at the price that makes the order's average the venue's, fee 0.
    """

    fill_id: str
    order_id: str
    symbol: str
    side: Side
    price: float
    quantity: float
    timestamp_ns: int
    fee: float = 0.0
    strategy: str = ""
    fee_currency: str = ""
    reconciled: bool = False
    kind: ClassVar[str] = "fill"

    def __post_init__(self) -> None:
        check.text("Fill", "fill_id", self.fill_id)
        check.string("Fill", "order_id", self.order_id)
        _check_head("Fill", self.symbol, self.timestamp_ns)
        object.__setattr__(self, "side", check.member("Fill", "side", Side, self.side))
        check.positive("Fill", "price", self.price)
        check.positive("Fill", "quantity", self.quantity)
        check.number("Fill", "fee", self.fee)
        check.string("Fill", "strategy", self.strategy)
        check.string("Fill", "fee_currency", self.fee_currency)
        if not isinstance(self.reconciled, bool):
            raise ValidationError("Fill", "reconciled", f"must be a bool, got {self.reconciled!r}")

    @property
    def time(self) -> datetime:
        """``timestamp_ns`` as a UTC ``datetime`` (to the microsecond)."""
        return _time(self.timestamp_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """This strategy's position in one symbol, as the host's books hold it.

    ``quantity`` is signed: > 0 long, < 0 short, 0 flat.
    """

    symbol: str
    quantity: float
    avg_entry_price: float
    timestamp_ns: int
    current_price: float = 0.0
    unrealized_pnl: float = 0.0
    realized_pnl: float = 0.0
    strategy: str = ""
    kind: ClassVar[str] = "position"

    def __post_init__(self) -> None:
        _check_head("Position", self.symbol, self.timestamp_ns)
        check.number("Position", "quantity", self.quantity)
        check.non_negative("Position", "avg_entry_price", self.avg_entry_price)
        check.non_negative("Position", "current_price", self.current_price)
        check.number("Position", "unrealized_pnl", self.unrealized_pnl)
        check.number("Position", "realized_pnl", self.realized_pnl)
        check.string("Position", "strategy", self.strategy)

    @property
    def side(self) -> Side | None:
        """BUY when long, SELL when short, None when flat."""
        if self.quantity > 0:
            return Side.BUY
        if self.quantity < 0:
            return Side.SELL
        return None

    @property
    def time(self) -> datetime:
        """``timestamp_ns`` as a UTC ``datetime`` (to the microsecond)."""
        return _time(self.timestamp_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timer:
    """A clock tick from the host (``name`` says which timer)."""

    name: str
    timestamp_ns: int
    kind: ClassVar[str] = "timer"

    def __post_init__(self) -> None:
        check.text("Timer", "name", self.name)
        check.integer("Timer", "timestamp_ns", self.timestamp_ns)

    @property
    def time(self) -> datetime:
        """``timestamp_ns`` as a UTC ``datetime`` (to the microsecond)."""
        return _time(self.timestamp_ns)


class OrderUpdateStatus(StrEnum):
    """Where one of the strategy's orders stands. ``done``: nothing of it works any more."""

    ACCEPTED = "accepted"  # working at the venue
    PARTIALLY_FILLED = "partially_filled"  # part filled, the rest still working
    FILLED = "filled"
    CANCELLED = "cancelled"  # by the strategy, a slot replacement, a kill switch or the strategy going down
    EXPIRED = "expired"  # its time in force ran out, or it was too old to send after a restart
    REJECTED = "rejected"  # no order came of the signal, or the venue refused it: ``rule`` says which

    @property
    def done(self) -> bool:
        """Filled, cancelled, expired or rejected: nothing of the order works any more."""
        return self is not OrderUpdateStatus.ACCEPTED and self is not OrderUpdateStatus.PARTIALLY_FILLED


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderUpdate:
    """What became of an order this strategy asked for, matched to its signal by ``client_order_id``.

    ``client_order_id`` is the one ``Strategy.emit`` returned (the ``Signal``'s own when it set
    one). ``quantity`` is the order's, which aggregation may have made smaller than the signal's;
    ``remaining_quantity`` is what still works at the venue (0 once ``status.done``). ``rule``
    names why a rejected signal became no order: a risk rule (``max_position_size``), an
    aggregation outcome (``netted``, ``merged``, ``outvoted``, ``no_consensus``, ``superseded``),
    ``queue_full``, ``observation``, ``ledger_unavailable``, ``venue_unavailable``, or ``venue``
    when the venue refused it; it is "" for every other status. ``reason`` is the rule's or the
    venue's message. A fill reaches ``on_fill`` (and its position ``on_position``) before the
    update it causes.
    """

    client_order_id: str
    strategy: str = ""
    symbol: str
    side: Side
    slot: str = ""
    status: OrderUpdateStatus
    quantity: float
    filled_quantity: float = 0.0
    remaining_quantity: float = 0.0
    average_price: float = 0.0
    reason: str = ""
    rule: str = ""
    timestamp_ns: int
    kind: ClassVar[str] = "order"

    def __post_init__(self) -> None:
        owner = "OrderUpdate"
        check.text(owner, "client_order_id", self.client_order_id)
        _check_head(owner, self.symbol, self.timestamp_ns)
        object.__setattr__(self, "side", check.member(owner, "side", Side, self.side))
        object.__setattr__(self, "status", check.member(owner, "status", OrderUpdateStatus, self.status))
        check.positive(owner, "quantity", self.quantity)
        for name in ("filled_quantity", "remaining_quantity", "average_price"):
            check.non_negative(owner, name, getattr(self, name))
        for name in ("strategy", "slot", "reason", "rule"):
            check.string(owner, name, getattr(self, name))

    @property
    def done(self) -> bool:
        """Nothing of the order works any more (filled, cancelled, expired or rejected)."""
        return self.status.done

    @property
    def time(self) -> datetime:
        """``timestamp_ns`` as a UTC ``datetime`` (to the microsecond)."""
        return _time(self.timestamp_ns)


MarketEvent = Tick | Trade | Book | Candle
"""Market data: what ``on_tick``, ``on_trade``, ``on_book`` and ``on_candle`` receive."""
Event = Tick | Trade | Book | Candle | Fill | Position | Timer | OrderUpdate
"""Anything a strategy receives (what ``sdk.testing.run_strategy`` takes a list of)."""

_EMPTY: Mapping[str, str] = MappingProxyType({})
_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9._:/-]{1,36}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """An order a strategy asks for. The host aggregates, risk-checks and executes it.

    ``slot`` names a working-order slot, per strategy and symbol: a signal in a non-empty slot
    replaces the strategy's working order in that slot for that symbol (the host cancels the
    old one first), so a quoting strategy
    keeps one order per side instead of piling them up.

    ``client_order_id`` names the order the signal becomes: every ``OrderUpdate`` about it carries
    it. Left "" (the usual), ``Strategy.emit`` gives the signal a fresh one and returns it. Set,
    it must be new (an id the engine has seen is rejected, rule ``duplicate_client_order_id``)
    and at most 36 of ``A-Z a-z 0-9 . _ : / -``, what exchanges take as a client order id.
    """

    symbol: str
    side: Side
    quantity: float
    order_type: OrderType = OrderType.MARKET
    price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    priority: int = 5
    max_slippage: float | None = None
    confidence: float = 1.0
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    slot: str = ""
    client_order_id: str = ""

    def __post_init__(self) -> None:
        if self._plain():  # the common shape, every check in one expression; anything else: the checks below
            if self.metadata is not _EMPTY:
                object.__setattr__(self, "metadata", _metadata(self.metadata))
            return
        check.text("Signal", "symbol", self.symbol)
        set_ = object.__setattr__
        set_(self, "side", check.member("Signal", "side", Side, self.side))
        set_(self, "order_type", check.member("Signal", "order_type", OrderType, self.order_type))
        set_(self, "time_in_force", check.member("Signal", "time_in_force", TimeInForce, self.time_in_force))
        check.positive("Signal", "quantity", self.quantity)
        self._check_prices()
        priority = check.integer("Signal", "priority", self.priority)
        if not 1 <= priority <= 10:
            raise ValidationError("Signal", "priority", f"must be 1..10, got {priority}")
        confidence = check.number("Signal", "confidence", self.confidence)
        if not 0.0 <= confidence <= 1.0:
            raise ValidationError("Signal", "confidence", f"must be 0..1, got {confidence}")
        check.optional_non_negative("Signal", "max_slippage", self.max_slippage)
        set_(self, "metadata", _metadata(self.metadata))
        check.string("Signal", "slot", self.slot)
        client_order_id = check.string("Signal", "client_order_id", self.client_order_id)
        if client_order_id and not _CLIENT_ORDER_ID.fullmatch(client_order_id):
            reason = f"expected at most 36 of A-Z a-z 0-9 . _ : / -, got {client_order_id!r}"
            raise ValidationError("Signal", "client_order_id", reason)

    def _plain(self) -> bool:
        """Every field already of its type and in range (as the checks would leave it): nothing to convert
        but the metadata, nothing to report. A market or limit order without stop or slippage limit."""
        kind, price, cid = self.order_type, self.price, self.client_order_id
        return (
            type(self.symbol) is str and self.symbol != "" and type(self.side) is Side
            and type(self.quantity) is float and 0.0 < self.quantity < _INF
            and type(self.time_in_force) is TimeInForce and self.stop_price is None and self.max_slippage is None
            and ((kind is OrderType.MARKET and price is None)
                 or (kind is OrderType.LIMIT and type(price) is float and 0.0 < price < _INF))
            and type(self.priority) is int and 1 <= self.priority <= 10
            and type(self.confidence) is float and 0.0 <= self.confidence <= 1.0
            and type(self.slot) is str
            and type(cid) is str and (cid == "" or _CLIENT_ORDER_ID.fullmatch(cid) is not None)
        )  # fmt: skip

    def _check_prices(self) -> None:
        kind = self.order_type
        needs_price = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_price:
            if self.price is None:
                raise ValidationError("Signal", "price", f"required for a {kind.value} order")
            check.positive("Signal", "price", self.price)
        elif self.price is not None:
            raise ValidationError("Signal", "price", f"must be None for a {kind.value} order, got {self.price}")
        if needs_stop:
            if self.stop_price is None:
                raise ValidationError("Signal", "stop_price", f"required for a {kind.value} order")
            check.positive("Signal", "stop_price", self.stop_price)
        elif self.stop_price is not None:
            raise ValidationError(
                "Signal", "stop_price", f"must be None for a {kind.value} order, got {self.stop_price}"
            )


def _metadata(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError("Signal", "metadata", f"expected a mapping of str to str, got {value!r}")
    if not value:
        return _EMPTY
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ValidationError("Signal", "metadata", f"keys and values must be str, got {key!r}: {item!r}")
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    """Ask the host to cancel this strategy's working order in ``slot`` for ``symbol``."""

    symbol: str
    slot: str

    def __post_init__(self) -> None:
        check.text("Cancel", "symbol", self.symbol)
        check.text("Cancel", "slot", self.slot)

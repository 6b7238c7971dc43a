"""Paper matching: orders against the last market state of each symbol, fills by fixed conventions.

Pure and synchronous: no I/O, no tasks, time only from the injected ``WallClock`` (fills and orders
are stamped with ``clock.time_ns()``; a backtest passes its replay clock). Not thread-safe; its
owner (``PaperVenue``, ``PaperVenueServer``) calls it from one event loop. Our own orders never
trade with each other, and our fills move no prices: the only market impact modelled is that a
fill uses up displayed size of the current snapshot, so two orders never both take the same size.

Market state, per symbol. A symbol is matched against the finest data it has shown: a **quote**
with sizes (a book, or a tick with a size) once one was seen, else **prices** (ticks without
sizes), else **trades**, else **candles**. Coarser events still update the last price and trigger
stops (which then fill against the live quote), but they fill nothing themselves on a finer symbol.

- tick / book: the *live quote*. A tick is one level a side (``bid_size``/``ask_size``), a book
  every level it carries, best first. It stays until the next quote of its detail or finer
  replaces it; fills take from its displayed sizes.
- a tick's size of 0 is a size not reported, not an empty level: the seed's format reads an absent
  size (and the Go service's zero value) as 0, and b25's ticker (``market_data:<SYMBOL>``) carries
  no sizes at all, while a venue's best bid or ask always shows a size. That level is unlimited,
  like a candle's. A tick with neither size is a *price* only: on a symbol that has shown a quote
  with sizes (b25's ``orderbook:<SYMBOL>`` beside its ticker) it moves the touch the stops look at
  and the last price, and stops it triggers fill against the live quote with sizes; on a symbol
  that shows nothing finer it is the live quote, unlimited on both sides. A book level of size 0
  is a level with nothing left.
- trade: the last price. On a trade-level symbol the trade is also the live quote: one level a
  side at the trade price, sized by the trade quantity.
- candle: never a live quote (its prices are history when it arrives). On a candle-level symbol a
  market order waits for the NEXT candle and fills at its open.

Prices. ``s = slippage_bps / 10_000``; slippage applies to market orders (and triggered stops)
only, and always against the order: a buy pays ``p * (1 + s)``, a sell gets ``p * (1 - s)``.

- market: fills on arrival against the live quote: a buy takes asks best first (a book is walked
  level by level, one fill per level at that level's price), a sell takes bids. With no live quote
  it waits and fills on the next event that is a price for it: a quote (walked as above), a trade
  on a trade-level symbol (at the trade price), a candle on a candle-level symbol (at its open).
- limit, marketable on arrival (buy: best ask <= limit; sell: best bid >= limit): fills like a
  market order but only at levels within the limit, at the level prices (better than or equal to
  the limit), no slippage. Whatever is left rests.
- resting limit, crossed by a later event: fills at the limit price exactly. A quote crosses a buy
  when its ask <= limit (sell: bid >= limit), taking the size of every level within the limit. A
  trade or candle must go strictly THROUGH the limit (buy: trade price < limit or candle low <
  limit; sell: > limit or high > limit), since a print at our price may have been ahead of us in
  the queue.
- stop (buy: triggers when a reference price >= stop; sell: <= stop). References: the best ask
  (buy) / best bid (sell) of a quote, ``last_price`` of a tick or book, a trade's price, a
  candle's high (buy) / low (sell) on a candle-level symbol. On arrival a stop is checked against
  the current touch and last price and may trigger at once. Once triggered, ``stop`` becomes a
  market order and ``stop_limit`` a limit order at ``price``, matched against the live quote as if
  arriving. A stop triggered inside a candle fills at ``max(open, stop)`` (buy) / ``min(open,
  stop)`` (sell) plus slippage; a stop_limit triggered inside a candle rests from the next event.

Sizes. With ``fill_at_touch_size`` (default) a fill takes at most the displayed size left at its
level (size 0 in a book or a trade: nothing there), so an order larger than the touch fills
partially and the rest waits (GTC) for later snapshots. Candles and a tick's unreported sizes
(0) have no size: unlimited. With ``fill_at_touch_size=False``
every level is unlimited and an order fills whole at the first level it may take.

Time in force, applied when an order becomes active (on arrival; for stops when triggered; for a
market order waiting for a price, when that price comes):

- GTC: the remainder rests until filled or cancelled.
- IOC: fill what is available now, cancel the remainder (status CANCELLED; ``filled_quantity``
  says how much filled; nothing available: CANCELLED with nothing filled).
- FOK: fill the whole quantity now or nothing (CANCELLED, no fill).

Orders of a symbol are matched in arrival order (FIFO, no price priority among our own orders).
Fees: every fill pays ``fee_rate * price * quantity`` (quote currency; a negative rate is a
rebate). Ids: the venue order id is ``{id_prefix}{n}`` (n counts from 1) and a fill's id is
``{venue order id}-{k}`` (its k-th fill), unique as long as ``id_prefix`` is unique per engine
instance; owners use a random prefix so a restarted venue never repeats a fill id.

Idempotency: ``submit`` of a client order id the engine holds (working, or finished within the
window below; rejected ones included) returns that order with ``duplicate=True``, no fill and no
change, and ``status``/``cancel`` answer for it.

Memory. Working orders are held until they finish; a finished order (filled, cancelled, rejected)
is then kept in a window of recently finished orders, so a client that lost a reply can still ask
for it or resend it under the same id: it is forgotten ``keep_finished_s`` (default 600 s) after it
finished, or earlier once ``keep_finished`` (default 10,000) newer orders have finished, whichever
comes first. A forgotten id is unknown: ``status`` gives None and a resend under it places a new order,
so a client must settle an order of unknown outcome within that window. Memory is therefore the
working orders plus at most ``keep_finished`` finished ones (~0.8 KB each), never the history.

Arrival (a backtest's causality, ``arrival`` given). Live, an order arrives when it is
submitted and meets the quote the strategy saw. In a backtest an order decided on one event may
fill no earlier than the next event of its symbol: ``submit`` accepts it and holds it on its way
(no fill), and it arrives with the first event of its symbol stamped at or after submit time +
``Arrival.delay_ns`` (the ``--latency``), matched as arriving against that event: a market order on
a quote fills at that event's touch, on a candle-level symbol at that candle's open; a limit rests
from there (filled when the price goes through it); a stop is checked from there. With
``candle_fill="close"`` a market order on a candle-level symbol fills at once at the close of the
last candle instead (the bar it was decided on; the latency does not apply), as backtesting
libraries' "trade on close" does. ``reach(strategy)`` tells a backtest which events may fill or
change that strategy's orders: by symbol, from when (orders on their way, market orders) and at
which prices (a resting limit: a price at or through it; a waiting stop: at or past its stop).

Not modelled: ``max_slippage``, ``priority``, ``reduce_only``, expiry.
Statuses used: ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from host.clock import WallClock
from host.orders import OrderIntent, OrderState, OrderStatus
from sdk.events import Book, Candle, Fill, MarketEvent, OrderType, Side, Tick, TimeInForce, Trade

__all__ = ["Arrival", "MatchResult", "MatchingEngine", "Reach"]

_EPS = 1e-9  # relative: a remainder below quantity * _EPS counts as filled
_INF = math.inf
_NEVER = 2**63  # later than any event time
Levels = list[list[float]]  # [[price, size left], ...] best first


@dataclass(frozen=True, slots=True)
class Arrival:
    """A backtest's order arrival (see Arrival in the module docstring)."""

    delay_ns: int = 0  # the --latency: an order arrives with its symbol's first event at or after submit + this
    candle_fill: str = "open"  # market orders on candles: the next bar's "open", or the decision bar's "close"

    def __post_init__(self) -> None:
        if self.delay_ns < 0:
            raise ValueError(f"latency: must be >= 0, got {self.delay_ns / 1e6:g} ms")
        if self.candle_fill not in ("open", "close"):
            raise ValueError(f"candle fill: 'open' or 'close', got {self.candle_fill!r}")


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What ``submit`` did: the order after the call and the fills it produced."""

    order: OrderState
    fills: tuple[Fill, ...] = ()
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Reach:
    """Which events of one symbol may change a strategy's working orders there (``reach``): any
    stamped at or after ``since``, and any showing a price at or below ``low`` or at or above ``high``.
    Every other event of the symbol leaves those orders as they are."""

    since: int = _NEVER  # an order on its way arrives with any event from then; a market order takes any
    low: float = -_INF  # the highest buy limit and sell stop: a price this low may fill or trigger one
    high: float = _INF  # the lowest sell limit and buy stop

    def touches(self, event: MarketEvent) -> bool:
        if event.timestamp_ns >= self.since:
            return True
        low, high = _span(event)
        return low <= self.low or high >= self.high


def _span(event: MarketEvent) -> tuple[float, float]:
    """The lowest and highest price ``event`` shows: what fills, triggers and moves a touch are made of
    (a book's deeper levels lie beyond its best; a bar's open and close within its range)."""
    if type(event) is Candle:
        return event.low, event.high
    last = getattr(event, "last_price", None)  # a trade's price; a tick's or book's last, when it has one
    prices = [] if last is None else [last]
    if type(event) is Tick:
        prices += (event.bid_price, event.ask_price)
    elif type(event) is Book:
        prices += (levels[0][0] for levels in (event.bids, event.asks) if levels)
    if not prices:
        return _INF, -_INF  # no price (an empty book): changes nothing that rests; time and market orders aside
    return min(prices), max(prices)


class _Detail(IntEnum):
    NONE = 0
    CANDLE = 1
    TRADE = 2
    PRICE = 3  # ticks without sizes
    QUOTE = 4  # books, and ticks with a size


class _Phase(Enum):
    TRIGGER = "waiting for its stop"
    PRICE = "market order waiting for a price"
    ARRIVING = "on its way to the venue (backtest)"
    RESTING = "resting"
    DONE = "terminal"


@dataclass(slots=True)
class _Pool:
    """Liquidity one side of the market offers our orders: asks for buys, bids for sells."""

    bids: Levels
    asks: Levels

    def side_for(self, side: Side) -> Levels:
        return self.asks if side is Side.BUY else self.bids


@dataclass(slots=True)
class _Market:
    detail: _Detail = _Detail.NONE
    quote: _Pool | None = None  # the live quote (tick/book, or trade on a trade-level symbol)
    touch_bid: float | None = None
    touch_ask: float | None = None
    last: float | None = None


@dataclass(slots=True)
class _Event:
    """How one market event may fill each phase of order (None: it does not)."""

    buy_refs: tuple[float, ...]
    sell_refs: tuple[float, ...]
    market_pool: _Pool | None = None  # waiting and resting market orders
    trigger_pool: _Pool | None = None  # stops triggered by this event
    rest_pool: _Pool | None = None  # resting limit orders
    rest_strict: bool = False
    candle: Candle | None = None


@dataclass(slots=True)
class _Order:
    intent: OrderIntent
    venue_order_id: str
    updated_ns: int
    status: OrderStatus = OrderStatus.ACCEPTED
    phase: _Phase = _Phase.RESTING
    reason: str = ""
    filled: float = 0.0
    notional: float = 0.0
    fill_count: int = 0
    arrive_ns: int = 0  # ARRIVING: it arrives with the first event of its symbol at or after this
    market: bool = field(init=False)  # market-like once active (market and stop)

    def __post_init__(self) -> None:
        self.market = self.intent.order_type in (OrderType.MARKET, OrderType.STOP)

    @property
    def remaining(self) -> float:
        left = self.intent.quantity - self.filled
        return 0.0 if left <= self.intent.quantity * _EPS else left

    @property
    def limit(self) -> float | None:
        return None if self.market else self.intent.price

    def state(self) -> OrderState:
        average = self.notional / self.filled if self.filled > 0 else 0.0
        return OrderState(
            intent=self.intent, status=self.status, venue_order_id=self.venue_order_id,
            filled_quantity=self.filled, average_price=average, reason=self.reason, updated_ns=self.updated_ns,
        )  # fmt: skip


def _within(price: float, limit: float | None, side: Side, strict: bool) -> bool:
    if limit is None:
        return True
    if side is Side.BUY:
        return price < limit if strict else price <= limit
    return price > limit if strict else price >= limit


def _available(levels: Levels, limit: float | None, side: Side, strict: bool) -> float:
    total = 0.0
    for price, size in levels:
        if not _within(price, limit, side, strict):
            break
        total += size
    return total


def _take(levels: Levels, want: float, limit: float | None, side: Side, strict: bool) -> Iterator[tuple[float, float]]:
    """Use up to ``want`` of the sizes within ``limit``, best level first; yield (level price, quantity)."""
    for level in levels:
        price, size = level
        if want <= 0 or not _within(price, limit, side, strict):
            return
        if size <= 0:
            continue
        quantity = min(want, size)
        level[1] = size - quantity
        want -= quantity
        yield price, quantity


def _refs(touch: float | None, last: float | None) -> tuple[float, ...]:
    """The prices a stop is checked against: the touch on its side, then the last price."""
    return tuple(price for price in (touch, last) if price is not None)


def _problem(intent: OrderIntent) -> str:
    """Why the engine refuses this intent, or ""."""
    if not intent.symbol:
        return "symbol: required"
    if not (math.isfinite(intent.quantity) and intent.quantity > 0):
        return f"quantity: must be a finite number > 0, got {intent.quantity}"
    kind = intent.order_type
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and not _positive(intent.price):
        return f"price: a {kind.value} order needs a price > 0, got {intent.price}"
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT) and not _positive(intent.stop_price):
        return f"stop_price: a {kind.value} order needs a stop_price > 0, got {intent.stop_price}"
    return ""


def _reach(order: _Order) -> Reach:
    """The events that may change one working order (the phases of ``_on_event`` and arrival)."""
    if order.phase is _Phase.ARRIVING:
        return Reach(since=order.arrive_ns)
    buy = order.intent.side is Side.BUY
    if order.phase is _Phase.TRIGGER:  # a buy stop triggers on a price >= its stop, a sell stop on one <=
        stop = order.intent.stop_price
        assert stop is not None  # checked by _problem
        return Reach(high=stop) if buy else Reach(low=stop)
    if order.phase is _Phase.PRICE or order.market:
        return Reach(since=0)  # a market order takes whatever the next price is
    limit = order.intent.price
    assert limit is not None  # a resting limit (or a triggered stop_limit) has its price
    return Reach(low=limit) if buy else Reach(high=limit)


def _is_stop(order: _Order) -> bool:
    return order.intent.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


class MatchingEngine:
    """Orders in, fills out; see the module docstring for every convention."""

    def __init__(
        self,
        fee_rate: float = 0.0,
        slippage_bps: float = 0.0,
        *,
        clock: WallClock,
        fill_at_touch_size: bool = True,
        id_prefix: str = "P-",
        keep_finished: int = 10_000,  # finished orders remembered at most (see Memory above)
        keep_finished_s: float = 600.0,  # ... and for at most this long after they finished
        arrival: Arrival | None = None,  # a backtest: orders arrive with a later event (see Arrival)
    ) -> None:
        if not math.isfinite(fee_rate):
            raise ValueError(f"fee_rate: must be a finite number, got {fee_rate!r}")
        if not (math.isfinite(slippage_bps) and 0 <= slippage_bps < 10_000):
            raise ValueError(f"slippage_bps: must be in [0, 10000), got {slippage_bps!r}")
        if keep_finished < 0 or not keep_finished_s >= 0:
            raise ValueError(f"keep_finished, keep_finished_s: must be >= 0, got {keep_finished}, {keep_finished_s}")
        self.arrival_delay_ns = None if arrival is None else arrival.delay_ns
        self.candle_fill = "open" if arrival is None else arrival.candle_fill
        self.fee_rate = fee_rate
        self.slippage = slippage_bps / 10_000
        self.fill_at_touch_size = fill_at_touch_size
        self.id_prefix = id_prefix
        self.clock = clock
        self._sequence = 0
        self._keep = keep_finished
        self._keep_ns = round(keep_finished_s * 1e9)
        self._orders: dict[str, _Order] = {}  # working and recently finished, by client order id
        self._finished: OrderedDict[str, int] = OrderedDict()  # client order id -> finished at (ns), oldest first
        self._by_venue_id: dict[str, str] = {}
        self._working: dict[str, dict[str, _Order]] = {}
        self._markets: dict[str, _Market] = {}

    # ------------------------------------------------------------------ queries

    def status(self, client_order_id: str) -> OrderState | None:
        self._forget_finished(self.clock.time_ns())
        order = self._orders.get(client_order_id)
        return None if order is None else order.state()

    def client_order_id(self, venue_order_id: str) -> str | None:
        return self._by_venue_id.get(venue_order_id)

    def working(self, symbol: str | None = None) -> list[OrderState]:
        books = self._working.values() if symbol is None else [self._working.get(symbol, {})]
        return [order.state() for book in books for order in book.values()]

    def orders(self) -> list[OrderState]:
        """The orders the engine holds (working and recently finished, rejected included), in arrival order."""
        return [order.state() for order in self._orders.values()]

    def __len__(self) -> int:
        """How many orders the engine holds: the working ones and the window of finished ones."""
        return len(self._orders)

    # ------------------------------------------------------------------ commands

    def submit(self, intent: OrderIntent) -> MatchResult:
        self._forget_finished(self.clock.time_ns())
        existing = self._orders.get(intent.client_order_id)
        if existing is not None:
            return MatchResult(existing.state(), (), duplicate=True)
        self._sequence += 1
        order = _Order(intent, f"{self.id_prefix}{self._sequence}", self.clock.time_ns())
        problem = "client_order_id: required" if not intent.client_order_id else _problem(intent)
        if problem:
            order.status, order.phase, order.reason = OrderStatus.REJECTED, _Phase.DONE, problem
            if intent.client_order_id:
                self._remember(order)
                self._retire(order)
            return MatchResult(order.state())
        self._remember(order)
        fills: list[Fill] = []
        market = self._market(intent.symbol)
        if self.arrival_delay_ns is None:
            self._arrive(order, market, fills)
        elif self.candle_fill == "close" and market.detail is _Detail.CANDLE and market.last is not None:
            if _is_stop(order):
                self._arrive(order, market, fills)
            else:  # at the close of the bar it was decided on
                self._activate(order, _Pool([[market.last, _INF]], [[market.last, _INF]]), fills)
        else:
            order.phase, order.arrive_ns = _Phase.ARRIVING, order.updated_ns + self.arrival_delay_ns
        if order.phase is not _Phase.DONE:
            self._working.setdefault(intent.symbol, {})[intent.client_order_id] = order
        return MatchResult(order.state(), tuple(fills))

    def cancel(self, client_order_id: str) -> OrderState | None:
        """Cancel a working order. Terminal orders come back unchanged; unknown ids give None."""
        self._forget_finished(self.clock.time_ns())
        order = self._orders.get(client_order_id)
        if order is None:
            return None
        if order.phase is not _Phase.DONE:
            self._finish(order, OrderStatus.CANCELLED, "cancelled on request")
            self._working.get(order.intent.symbol, {}).pop(client_order_id, None)
        return order.state()

    def on_market(self, event: MarketEvent) -> list[Fill]:
        """Update the symbol's market state and match its working orders; return the fills, in order."""
        market = self._market(event.symbol)
        book = self._working.get(event.symbol)
        if not book:  # nothing to match: the market state moves, how the event would fill is not worked out
            self._update(market, event, want=False)
            return []
        ctx = self._update(market, event)
        fills: list[Fill] = []
        if self.arrival_delay_ns is not None:
            for order in list(book.values()):
                if order.phase is _Phase.ARRIVING and order.arrive_ns <= event.timestamp_ns:
                    self._arrive_with(order, market, ctx, fills)
        if ctx is not None:
            for order in list(book.values()):
                if order.phase is not _Phase.ARRIVING:
                    self._on_event(order, ctx, fills)
        for order in list(book.values()):
            if order.phase is _Phase.DONE:
                del book[order.intent.client_order_id]
        return fills

    def reach(self, strategy: str) -> dict[str, Reach]:
        """What may change ``strategy``'s working orders, by symbol (see ``Reach``): a backtest lets the
        strategy see every other event without waiting for the host to step through it."""
        found: dict[str, Reach] = {}
        for symbol, book in self._working.items():
            for order in book.values():
                if order.intent.strategy == strategy and order.phase is not _Phase.DONE:
                    reach = _reach(order)
                    seen = found.get(symbol)
                    if seen is not None:
                        reach = Reach(
                            min(seen.since, reach.since), max(seen.low, reach.low), min(seen.high, reach.high)
                        )
                    found[symbol] = reach
        return found

    def touch(self, symbol: str, side: Side) -> float | None:
        """The best price an order of ``side`` arriving now would meet (the ask for a buy), or None
        when the symbol has no live quote; sizes already taken by our fills are not considered."""
        market = self._markets.get(symbol)
        levels = None if market is None or market.quote is None else market.quote.side_for(side)
        return levels[0][0] if levels else None

    # ------------------------------------------------------------------ market state

    def _market(self, symbol: str) -> _Market:
        market = self._markets.get(symbol)
        if market is None:
            market = self._markets[symbol] = _Market()
        return market

    def _size(self, size: float) -> float:
        return size if self.fill_at_touch_size else _INF

    def _update(self, market: _Market, event: MarketEvent, *, want: bool = True) -> _Event | None:
        """Apply ``event`` to the symbol's market state; how it may fill orders (None as well when not
        ``want``ed: a symbol without working orders, the per-event path of a quiet backtest)."""
        match event:
            case Tick():
                return self._on_tick(market, event, want)
            case Book():
                bids = [[price, self._size(size)] for price, size in event.bids]
                asks = [[price, self._size(size)] for price, size in event.asks]
                return self._on_quote(market, _Detail.QUOTE, bids, asks, event.last_price, want)
            case Trade():
                return self._on_trade(market, event, want)
            case Candle():
                return self._on_candle(market, event, want)
        raise TypeError(f"on_market: expected a Tick, Trade, Book or Candle, got {type(event).__name__}")

    def _on_tick(self, market: _Market, tick: Tick, want: bool) -> _Event | None:
        bid_size, ask_size = tick.bid_size, tick.ask_size
        if bid_size or ask_size:
            bids = [[tick.bid_price, self._size(bid_size or _INF)]]
            asks = [[tick.ask_price, self._size(ask_size or _INF)]]
            return self._on_quote(market, _Detail.QUOTE, bids, asks, tick.last_price, want)
        if market.detail <= _Detail.PRICE:
            return self._on_quote(market, _Detail.PRICE, [[tick.bid_price, _INF]], [[tick.ask_price, _INF]],
                                  tick.last_price, want)  # fmt: skip
        # A price on a symbol with sizes: the touch and last price move, the live quote stays.
        market.touch_bid, market.touch_ask = tick.bid_price, tick.ask_price
        if tick.last_price is not None:
            market.last = tick.last_price
        if not want:
            return None
        return _Event(buy_refs=_refs(tick.ask_price, tick.last_price), sell_refs=_refs(tick.bid_price, tick.last_price),
                      trigger_pool=market.quote)  # fmt: skip

    def _on_quote(
        self, market: _Market, detail: _Detail, bids: Levels, asks: Levels, last: float | None, want: bool
    ) -> _Event | None:
        pool = market.quote = _Pool(bids, asks)
        market.detail = detail
        market.touch_bid = bids[0][0] if bids else None
        market.touch_ask = asks[0][0] if asks else None
        if last is not None:
            market.last = last
        if not want:
            return None
        return _Event(
            buy_refs=_refs(market.touch_ask, last), sell_refs=_refs(market.touch_bid, last),
            market_pool=pool, trigger_pool=pool, rest_pool=pool,
        )  # fmt: skip

    def _on_trade(self, market: _Market, trade: Trade, want: bool) -> _Event | None:
        market.last = trade.last_price
        refs = (trade.last_price,)
        if market.detail >= _Detail.PRICE:
            return _Event(refs, refs, trigger_pool=market.quote) if want else None
        size = self._size(trade.volume)
        pool = market.quote = _Pool([[trade.last_price, size]], [[trade.last_price, size]])
        market.detail = _Detail.TRADE
        if not want:
            return None
        return _Event(refs, refs, market_pool=pool, trigger_pool=pool, rest_pool=pool, rest_strict=True)

    def _on_candle(self, market: _Market, candle: Candle, want: bool) -> _Event | None:
        market.last = candle.close
        if market.detail > _Detail.CANDLE:
            return None
        market.detail = _Detail.CANDLE
        if not want:
            return None
        return _Event(
            buy_refs=(candle.high,), sell_refs=(candle.low,),
            market_pool=_Pool([[candle.open, _INF]], [[candle.open, _INF]]),
            rest_pool=_Pool([[candle.high, _INF]], [[candle.low, _INF]]), rest_strict=True, candle=candle,
        )  # fmt: skip

    # ------------------------------------------------------------------ order life

    def _arrive(self, order: _Order, market: _Market, fills: list[Fill]) -> None:
        if order.intent.order_type not in (OrderType.STOP, OrderType.STOP_LIMIT):
            self._activate(order, market.quote, fills)
            return
        buy = order.intent.side is Side.BUY
        touch = market.touch_ask if buy else market.touch_bid
        refs = tuple(p for p in (touch, market.last) if p is not None)
        if self._triggered(order, refs):
            self._activate(order, market.quote, fills)
        else:
            order.phase = _Phase.TRIGGER

    def _arrive_with(self, order: _Order, market: _Market, ctx: _Event | None, fills: list[Fill]) -> None:
        """An order on its way arrives with this event (already applied to ``market``)."""
        if ctx is not None and ctx.candle is not None:
            # A bar's prices are history by its close: the order meets the bar from its open, in the
            # loop over working orders (market: at the open; stop: its high/low; limit: through it).
            order.phase = _Phase.TRIGGER if _is_stop(order) else _Phase.PRICE if order.market else _Phase.RESTING
            if not order.market and not _is_stop(order) and order.intent.time_in_force is not TimeInForce.GTC:
                self._finish(order, OrderStatus.CANCELLED, f"{order.intent.time_in_force.value}: not marketable")
            return
        self._arrive(order, market, fills)

    def _triggered(self, order: _Order, refs: tuple[float, ...]) -> bool:
        stop = order.intent.stop_price
        assert stop is not None  # checked by _problem
        if order.intent.side is Side.BUY:
            return any(ref >= stop for ref in refs)
        return any(ref <= stop for ref in refs)

    def _on_event(self, order: _Order, ctx: _Event, fills: list[Fill]) -> None:
        side = order.intent.side
        if order.phase is _Phase.TRIGGER:
            if self._triggered(order, ctx.buy_refs if side is Side.BUY else ctx.sell_refs):
                self._activate(order, self._trigger_pool(order, ctx), fills)
        elif order.phase is _Phase.PRICE:
            if ctx.market_pool is not None:
                self._activate(order, ctx.market_pool, fills)
        elif order.market:
            if ctx.market_pool is not None:
                self._take_into(order, ctx.market_pool.side_for(side), None, False, fills)
        elif ctx.rest_pool is not None:
            limit = order.intent.price
            for _, quantity in _take(ctx.rest_pool.side_for(side), order.remaining, limit, side, ctx.rest_strict):
                self._fill(order, limit or 0.0, quantity, fills)

    def _trigger_pool(self, order: _Order, ctx: _Event) -> _Pool | None:
        if ctx.candle is None:
            return ctx.trigger_pool
        if not order.market:
            return None  # a stop_limit triggered inside a bar rests from the next event
        stop = order.intent.stop_price or 0.0
        open_ = ctx.candle.open
        price = max(open_, stop) if order.intent.side is Side.BUY else min(open_, stop)
        return _Pool([[price, _INF]], [[price, _INF]])

    def _activate(self, order: _Order, pool: _Pool | None, fills: list[Fill]) -> None:
        """The order becomes live: match it as on arrival, then apply its time in force."""
        if order.market and pool is None:
            order.phase = _Phase.PRICE
            return
        tif, side, limit = order.intent.time_in_force, order.intent.side, order.limit
        if pool is not None:
            levels = pool.side_for(side)
            if tif is TimeInForce.FOK and _available(levels, limit, side, False) < order.remaining * (1 - _EPS):
                self._finish(order, OrderStatus.CANCELLED, "fok: the whole quantity was not available")
                return
            self._take_into(order, levels, limit, False, fills)
        if order.phase is _Phase.DONE:
            return
        if tif is not TimeInForce.GTC:
            self._finish(order, OrderStatus.CANCELLED, f"{tif.value}: remainder {order.remaining:g} cancelled")
            return
        order.phase = _Phase.RESTING

    def _take_into(self, order: _Order, levels: Levels, limit: float | None, strict: bool, fills: list[Fill]) -> None:
        """Take liquidity at the level prices (market orders pay slippage)."""
        side = order.intent.side
        slip = 0.0 if limit is not None else self.slippage * side.sign
        for price, quantity in _take(levels, order.remaining, limit, side, strict):
            self._fill(order, price * (1 + slip), quantity, fills)

    def _fill(self, order: _Order, price: float, quantity: float, fills: list[Fill]) -> None:
        now = self.clock.time_ns()
        intent = order.intent
        order.fill_count += 1
        order.filled += quantity
        order.notional += price * quantity
        order.updated_ns = now
        fill = Fill(
            fill_id=f"{order.venue_order_id}-{order.fill_count}", order_id=order.venue_order_id,
            symbol=intent.symbol, side=intent.side, price=price, quantity=quantity, timestamp_ns=now,
            fee=self.fee_rate * price * quantity, strategy=intent.strategy,
        )  # fmt: skip
        fills.append(fill)
        if order.remaining == 0.0:
            self._finish(order, OrderStatus.FILLED, "")
        else:
            order.status = OrderStatus.PARTIALLY_FILLED

    def _finish(self, order: _Order, status: OrderStatus, reason: str) -> None:
        order.status, order.phase, order.reason = status, _Phase.DONE, reason
        order.updated_ns = self.clock.time_ns()
        self._retire(order)

    def _remember(self, order: _Order) -> None:
        self._orders[order.intent.client_order_id] = order
        self._by_venue_id[order.venue_order_id] = order.intent.client_order_id

    def _retire(self, order: _Order) -> None:
        """A remembered order finished: it joins the window of finished orders, the oldest may leave it."""
        self._finished[order.intent.client_order_id] = order.updated_ns
        self._forget_finished(order.updated_ns)

    def _forget_finished(self, now_ns: int) -> None:
        finished, orders = self._finished, self._orders
        while finished and (len(finished) > self._keep or now_ns - next(iter(finished.values())) > self._keep_ns):
            client_order_id, _ = finished.popitem(last=False)
            forgotten = orders.pop(client_order_id)
            self._by_venue_id.pop(forgotten.venue_order_id, None)

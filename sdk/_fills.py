"""The deterministic fill model of ``sdk.testing``: working orders, and how market events fill them.

Pure: ``Matcher`` takes signals, cancels and market events and returns the order updates and fills
they cause; ``sdk.testing.run_strategy`` delivers them. Rules (see ``FillModel``):
- A signal is accepted when placed; it can fill no earlier than the next market event of its
  symbol (``match`` only looks at orders placed before that event).
- Market orders: a tick at the touch (buy at the ask, sell at the bid), a book at its best level,
  a trade at its price, a candle at its open (the bar after the decision's), or, with
  ``at="close"``, a market order decided on a candle at that candle's close (``close``).
- Limit orders, as the engine's paper venue (``host.execution.matching``) fills them in a
  backtest. On the first market event of their symbol (their arrival) a limit the market already
  reaches is *marketable* and fills at the market's price, which is at or better than the limit:
  a buy when the ask (a tick's, a book's best) or the trade price is at or below the limit, at that
  price; a sell when the bid or the trade price is at or above it. Otherwise it rests, and fills
  at its limit exactly once a later event crosses it: a quote that reaches it (ask <= limit for a
  buy, bid >= limit for a sell: that much is offered at our price), or a trade or candle that goes
  strictly through it (a trade price or candle low below a buy's limit, a trade price or high
  above a sell's), since a print at our price may have been ahead of us in the queue. A candle is
  never a quote: a limit arriving on one rests, and that candle may fill it only by going through.
- Every fill is the order's whole quantity (no partial fills, sizes are not looked at).
  ``slippage_bps`` moves a market order's price against it; ``fee_bps`` of the notional is the fee.
- IOC and FOK limits not filled by the first market event of their symbol are cancelled. Stop
  orders are rejected (rule ``fill_model``): this model does not trigger stops.
- A signal in a non-empty slot first cancels the order working in that slot for its symbol; a
  ``Cancel`` cancels it. A client order id used before is rejected (``duplicate_client_order_id``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from sdk.errors import ConfigError
from sdk.events import (
    Book,
    Cancel,
    Candle,
    Fill,
    MarketEvent,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Side,
    Signal,
    Tick,
    TimeInForce,
    Trade,
)

__all__ = ["FillModel", "Matcher"]

_BPS = 1e-4


@dataclass(frozen=True, slots=True, kw_only=True)
class FillModel:
    """How ``sdk.testing.run_strategy`` fills the strategy's orders (``fills=FillModel(...)``).

    ``at``: where a market order decided on a candle fills: ``"next_open"`` (the next bar's open,
    the default) or ``"close"`` (the deciding bar's own close). Ticks, books and trades always fill
    a market order at the next one's price. ``fee_bps``: fee per fill in basis points of its
    notional (10 = 0.1 %). ``slippage_bps``: how much worse than the quoted price a market order
    fills, in basis points (limits take none: they fill at the limit or better).
    """

    at: Literal["next_open", "close"] = "next_open"
    fee_bps: float = 0.0
    slippage_bps: float = 0.0

    def __post_init__(self) -> None:
        if self.at not in ("next_open", "close"):
            raise ConfigError("FillModel.at", f"must be 'next_open' or 'close', got {self.at!r}")
        for name in ("fee_bps", "slippage_bps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ConfigError(f"FillModel.{name}", f"must be a number >= 0 (basis points), got {value!r}")


@dataclass(slots=True)
class _Order:
    signal: Signal
    placed_at: int  # index of the event during which it was placed: it matches only later events
    arrived: bool = False  # a market event of its symbol has been matched with it: a limit now rests


FillAndUpdate = tuple[Fill, OrderUpdate]


class Matcher:
    """One strategy's working orders under a ``FillModel``; ids are ``fill-1``, ``fill-2``, ..."""

    def __init__(self, model: FillModel, strategy_id: str) -> None:
        self.model = model
        self.strategy_id = strategy_id
        self._working: dict[str, _Order] = {}  # by client order id, in the order placed
        self._slots: dict[tuple[str, str], str] = {}  # (symbol, slot) -> client order id
        self._seen: set[str] = set()
        self._fills = 0

    def place(self, signal: Signal, now_ns: int, index: int) -> list[OrderUpdate]:
        """The updates placing ``signal`` causes: the slot's old order cancelled, then accepted
        (or rejected)."""
        cid = signal.client_order_id
        if cid in self._seen:
            reason = f"client order id {cid!r} was used before"
            return [
                self._update(
                    signal, OrderUpdateStatus.REJECTED, now_ns, rule="duplicate_client_order_id", reason=reason
                )
            ]
        self._seen.add(cid)
        if signal.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            reason = "sdk.testing's fill model fills market and limit orders only; stops are not triggered"
            return [self._update(signal, OrderUpdateStatus.REJECTED, now_ns, rule="fill_model", reason=reason)]
        updates = []
        if signal.slot:
            updates += self.cancel(
                Cancel(symbol=signal.symbol, slot=signal.slot), now_ns, f"replaced in slot {signal.slot!r}"
            )
            self._slots[(signal.symbol, signal.slot)] = cid
        self._working[cid] = _Order(signal, index)
        updates.append(self._update(signal, OrderUpdateStatus.ACCEPTED, now_ns, remaining=signal.quantity))
        return updates

    def cancel(self, cancel: Cancel, now_ns: int, reason: str = "") -> list[OrderUpdate]:
        """Cancel the order working in the cancel's slot, if any."""
        cid = self._slots.pop((cancel.symbol, cancel.slot), None)
        order = None if cid is None else self._working.pop(cid, None)
        if order is None:
            return []
        reason = reason or f"cancelled by strategy (slot {cancel.slot!r})"
        return [self._update(order.signal, OrderUpdateStatus.CANCELLED, now_ns, reason=reason)]

    def match(self, event: MarketEvent, index: int) -> list[FillAndUpdate | OrderUpdate]:
        """Fills (each with its ``filled`` update) and IOC cancels that ``event`` causes, oldest order
        first, among the orders on its symbol placed before event ``index``."""
        out: list[FillAndUpdate | OrderUpdate] = []
        for cid, order in list(self._working.items()):
            signal = order.signal
            if signal.symbol != event.symbol or order.placed_at >= index:
                continue
            price = self._price(signal, event, arriving=not order.arrived)
            order.arrived = True
            if price is not None:
                out.append(self._fill(cid, price, event.timestamp_ns))
            elif signal.time_in_force is not TimeInForce.GTC:
                self._forget(cid)
                reason = f"time in force {signal.time_in_force.value}: not filled by the next market event"
                out.append(self._update(signal, OrderUpdateStatus.CANCELLED, event.timestamp_ns, reason=reason))
        return out

    def close(self, candle: Candle, index: int) -> list[FillAndUpdate]:
        """With ``at="close"``: market orders on the candle's symbol placed while it was handled
        fill at its close."""
        if self.model.at != "close":
            return []
        return [
            self._fill(cid, self._slipped(order.signal.side, candle.close), candle.timestamp_ns)
            for cid, order in list(self._working.items())
            if order.placed_at == index
            and order.signal.symbol == candle.symbol
            and order.signal.order_type is OrderType.MARKET
        ]

    def _price(self, signal: Signal, event: MarketEvent, *, arriving: bool) -> float | None:
        """The price ``event`` fills ``signal`` at, or None (``arriving``: its first market event)."""
        buy = signal.side is Side.BUY
        if signal.order_type is OrderType.MARKET:
            quote = _quote(event, buy, limit=False)
            return None if quote is None else self._slipped(signal.side, quote)
        limit, market = signal.price, _quote(event, buy, limit=True)
        if limit is None or market is None:
            return None
        if arriving and not isinstance(event, Candle):  # marketable on arrival: at the market's price
            return market if (market <= limit if buy else market >= limit) else None
        if isinstance(event, (Tick, Book)):  # a quote crosses a resting limit by reaching it
            return limit if (market <= limit if buy else market >= limit) else None
        return limit if (market < limit if buy else market > limit) else None  # a print must go through

    def _slipped(self, side: Side, price: float) -> float:
        return price * (1 + side.sign * self.model.slippage_bps * _BPS)

    def _fill(self, cid: str, price: float, timestamp_ns: int) -> FillAndUpdate:
        signal = self._forget(cid).signal
        self._fills += 1
        fill = Fill(
            fill_id=f"fill-{self._fills}", order_id=cid, symbol=signal.symbol, side=signal.side, price=price,
            quantity=signal.quantity, timestamp_ns=timestamp_ns, strategy=self.strategy_id,
            fee=price * signal.quantity * self.model.fee_bps * _BPS,
        )  # fmt: skip
        update = self._update(
            signal, OrderUpdateStatus.FILLED, timestamp_ns, filled=signal.quantity, average_price=price
        )
        return fill, update

    def _forget(self, cid: str) -> _Order:
        order = self._working.pop(cid)
        key = (order.signal.symbol, order.signal.slot)
        if order.signal.slot and self._slots.get(key) == cid:
            del self._slots[key]
        return order

    def _update(
        self, signal: Signal, status: OrderUpdateStatus, now_ns: int, *, remaining: float = 0.0,
        filled: float = 0.0, average_price: float = 0.0, rule: str = "", reason: str = "",
    ) -> OrderUpdate:  # fmt: skip
        return OrderUpdate(
            client_order_id=signal.client_order_id, strategy=self.strategy_id, symbol=signal.symbol,
            side=signal.side, slot=signal.slot, status=status, quantity=signal.quantity, filled_quantity=filled,
            remaining_quantity=remaining, average_price=average_price, reason=reason, rule=rule, timestamp_ns=now_ns,
        )  # fmt: skip


def _quote(event: MarketEvent, buy: bool, *, limit: bool) -> float | None:
    """The price a market order pays on ``event`` (the touch, the trade price, a candle's open), or
    that a resting limit is compared with (a candle's low for a buy, its high for a sell)."""
    if isinstance(event, Tick):
        return event.ask_price if buy else event.bid_price
    if isinstance(event, Book):
        level = event.best_ask if buy else event.best_bid
        return None if level is None else level[0]
    if isinstance(event, Trade):
        return event.last_price
    if limit:
        return event.low if buy else event.high
    return event.open

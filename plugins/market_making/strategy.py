"""Market making: one inventory-skewed limit quote per side around the mid, replaced in place.

Model. On every top-of-book update (``Tick``, or a ``Book``'s best levels) the strategy works out
the quotes it wants (``quoting.quotes``) and compares them with the ones it has working:

- Each side lives in a named slot, ``"bid"`` or ``"ask"``. A new quote is a GTC limit order in
  that slot, so the host cancels the old order before placing the new one: at most one working
  order per side and symbol. The seed service sent a fresh GTC quote on every tick and never
  cancelled any, piling up unbounded working orders; that is fixed here.
- A working quote is left alone while the price we want moved by at most
  ``requote_threshold_bps``, so a busy feed does not flood the venue with replacements.
- A side whose full fill would take |inventory| past ``max_inventory`` is not quoted, and its
  slot is cancelled. It comes back once the inventory allows it.
- While the market spread is narrower than ``min_spread_bps`` (or the book is crossed), both
  slots are cancelled and nothing is quoted.
- A fill on a side marks that slot stale (its order may be gone or partly filled): the next
  update quotes it afresh, or cancels what is left of it.
- A quote that ends unfilled (rejected by risk, cancelled, expired: ``on_order``) no longer works:
  its slot is emptied, so the next update quotes it again even if the price has not moved. Only
  the slot's current order counts: the ``cancelled`` of the order a requote replaced changes nothing.

Inventory is the host's position (``self.position_quantity``, built from fills), read at each
decision. Trades and candles are ignored: quoting needs a two-sided market. Handlers run one at
a time; time is event time. Quote prices are not rounded to the venue's tick size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sdk import Book, Fill, OrderType, OrderUpdate, OrderUpdateStatus, Side, Signal, Strategy, Tick

from .config import MarketMakingConfig
from .quoting import BPS, quotes

__all__ = ["MarketMaking"]

_STATE_VERSION = 2  # 2: each slot also keeps its order's client order id (1 is still read)


@dataclass(slots=True)
class _Slot:
    """What we believe works in one slot."""

    price: float | None = None  # price of our working quote as last sent; None: nothing working
    stale: bool = False  # a fill touched it: the order may be gone or partly filled
    order_id: str = ""  # client order id of that quote ("" when none, or unknown after a version-1 state)


@dataclass(slots=True)
class _Sides:
    bid: _Slot = field(default_factory=_Slot)
    ask: _Slot = field(default_factory=_Slot)


class MarketMaking(Strategy[MarketMakingConfig]):
    """Quotes both sides around the mid, skewed by inventory, one order per side."""

    name: ClassVar[str] = "market_making"

    def __init__(self, config: MarketMakingConfig) -> None:
        super().__init__(config)
        self._symbols: dict[str, _Sides] = {}

    # ---------------------------------------------------------------- market data

    def on_tick(self, tick: Tick) -> None:
        self._requote(tick.symbol, tick.bid_price, tick.ask_price)

    def on_book(self, book: Book) -> None:
        if book.best_bid is not None and book.best_ask is not None:
            self._requote(book.symbol, book.best_bid[0], book.best_ask[0])

    # ---------------------------------------------------------------- own orders

    def on_fill(self, fill: Fill) -> None:
        sides = self._sides(fill.symbol)
        slot = sides.bid if fill.side is Side.BUY else sides.ask
        slot.stale = True

    def on_order(self, update: OrderUpdate) -> None:
        """Our current quote in a slot ended unfilled: nothing works there any more."""
        sides = self._symbols.get(update.symbol)
        slot = None if sides is None else {"bid": sides.bid, "ask": sides.ask}.get(update.slot)
        if slot is None or not slot.order_id or update.client_order_id != slot.order_id:
            return  # not a quote of ours, or one a requote already replaced
        if update.done and update.status is not OrderUpdateStatus.FILLED:
            self.log.info("quote_not_working", symbol=update.symbol, slot=update.slot, status=update.status.value,
                          rule=update.rule, reason=update.reason)  # fmt: skip
            slot.price, slot.stale, slot.order_id = None, False, ""

    # ---------------------------------------------------------------- decisions

    def _requote(self, symbol: str, best_bid: float, best_ask: float) -> None:
        wanted = quotes(self.config, best_bid, best_ask, self.position_quantity(symbol))
        mid = (best_bid + best_ask) / 2
        sides = self._sides(symbol)
        self._update(symbol, Side.BUY, sides.bid, wanted.bid, mid)
        self._update(symbol, Side.SELL, sides.ask, wanted.ask, mid)

    def _update(self, symbol: str, side: Side, slot: _Slot, price: float | None, mid: float) -> None:
        name = "bid" if side is Side.BUY else "ask"
        if price is None:
            if slot.price is not None or slot.stale:
                self.cancel(symbol, name)
            slot.price, slot.stale, slot.order_id = None, False, ""
            return
        if not slot.stale and slot.price is not None:
            moved_bps = abs(price - slot.price) / mid * BPS
            if moved_bps <= self.config.requote_threshold_bps:
                return
        quote = Signal(
            symbol=symbol,
            side=side,
            quantity=self.config.order_size,
            order_type=OrderType.LIMIT,
            price=price,
            slot=name,
        )
        slot.order_id = self.emit(quote)
        slot.price, slot.stale = price, False

    def _sides(self, symbol: str) -> _Sides:
        sides = self._symbols.get(symbol)
        if sides is None:
            sides = self._symbols[symbol] = _Sides()
        return sides

    # ---------------------------------------------------------------- hot reload

    def on_save(self) -> bytes:
        symbols = {name: {"bid": _slot_state(s.bid), "ask": _slot_state(s.ask)} for name, s in self._symbols.items()}
        return json.dumps({"version": _STATE_VERSION, "symbols": symbols}).encode()

    def on_load(self, state: bytes) -> None:
        """Restore the working quotes; state this version cannot read is dropped with a warning."""
        try:
            self._symbols = _parse_state(json.loads(state))
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            self.log.warning("state_discarded", reason=str(err))
            self._symbols = {}


def _slot_state(slot: _Slot) -> list[Any]:
    return [slot.price, slot.stale, slot.order_id]


def _parse_state(data: Any) -> dict[str, _Sides]:
    if data.get("version") not in (1, _STATE_VERSION):
        raise ValueError(f"state version {data.get('version')!r}, expected 1 or {_STATE_VERSION}")
    return {
        str(symbol): _Sides(_parse_slot(item["bid"]), _parse_slot(item["ask"]))
        for symbol, item in data["symbols"].items()
    }


def _parse_slot(item: Any) -> _Slot:
    price, stale, *order_id = item  # version 1: [price, stale]; 2: [price, stale, order_id]
    if len(order_id) > 1:
        raise ValueError(f"a slot is [price, stale, order_id], got {item!r}")
    return _Slot(None if price is None else float(price), bool(stale), str(order_id[0]) if order_id else "")

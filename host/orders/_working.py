"""Working orders as risk counts them: remaining quantity summed by symbol and side, as if all filled.

Model. The position and portfolio rules add every order that may still fill to the positions, on
its own side: buys and sells are summed apart and never netted against each other (an opposite
working order may be cancelled, so it must not make room). An order counts with its remaining
quantity (quantity minus what already filled, which the position already holds).

Two ways to get the sums, same arithmetic:

- ``scan(orders, ...)``: one pass over whatever ``BookView.working_orders()`` returns, per check
  (about 0.1 us per working order on CPython 3.11: 10 us at 100 orders, half the check's budget);
- ``WorkingOrders``: the book's own store of working orders, kept current by ``update(state)`` on
  every order state change, which keeps the sums incrementally (O(1) per change and per check).
  A book whose ``working_orders()`` returns one gets the fast path; nothing else changes.

Not thread-safe: owned by the event loop like the rest of the host's books.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from host.orders._model import WORKING, OrderState
from sdk.events import Side

__all__ = ["Exposure", "WorkingOrders", "exposure_of", "scan"]

_BUY = Side.BUY
_NO_SUMS = (0.0, 0.0)

# A symbol's (or a strategy-symbol's) sums: [buys, sells, buy orders, sell orders]. The counts let a
# sum return to exactly 0.0 when its last order goes, instead of carrying float residue.
_Sums = list[float]
_K = TypeVar("_K", str, tuple[str, str])


@dataclass(slots=True)
class Exposure:
    """One check's view: working buys and sells per symbol (all strategies) and the checked strategy's own."""

    by_symbol: Mapping[str, _Sums]  # symbol -> [buys, sells, ...]; read only
    own_buys: float  # the checked strategy's working orders on the checked symbol
    own_sells: float

    def own_same_side(self, side: Side) -> float:
        return self.own_buys if side is _BUY else self.own_sells

    def sides(self, symbol: str) -> tuple[float, float]:
        sums = self.by_symbol.get(symbol)
        return (sums[0], sums[1]) if sums is not None else _NO_SUMS


def scan(orders: Iterable[OrderState], strategy: str, symbol: str) -> Exposure:
    """Sum ``orders`` (all taken to be working) in one pass."""
    by_symbol: dict[str, _Sums] = {}
    own_buys = own_sells = 0.0
    for order in orders:
        intent = order.intent
        remaining = intent.quantity - order.filled_quantity
        if remaining <= 0.0:
            continue
        sym = intent.symbol
        sums = by_symbol.get(sym)
        if sums is None:
            sums = by_symbol[sym] = [0.0, 0.0, 0.0, 0.0]
        own = sym == symbol and intent.strategy == strategy
        if intent.side is _BUY:
            sums[0] += remaining
            if own:
                own_buys += remaining
        else:
            sums[1] += remaining
            if own:
                own_sells += remaining
    return Exposure(by_symbol, own_buys, own_sells)


def exposure_of(orders: Iterable[OrderState], strategy: str, symbol: str) -> Exposure:
    if isinstance(orders, WorkingOrders):
        return orders.exposure(strategy, symbol)
    return scan(orders, strategy, symbol)


class WorkingOrders:
    """The orders that may still fill, by client order id, with their sums kept as they change.

    Call ``update`` with every new state of every order (journaled, sent, acknowledged, filled,
    cancelled, rejected...): a working state replaces the order's previous one, a terminal state
    removes it. Iterating gives the working ``OrderState``s, so it is what ``working_orders()``
    returns.
    """

    def __init__(self, states: Iterable[OrderState] = ()) -> None:
        self._orders: dict[str, OrderState] = {}
        self._by_symbol: dict[str, _Sums] = {}
        self._by_strategy: dict[tuple[str, str], _Sums] = {}
        for state in states:
            self.update(state)

    def update(self, state: OrderState) -> None:
        client_order_id = state.intent.client_order_id
        previous = self._orders.pop(client_order_id, None)
        if previous is not None:
            self._apply(previous, -1.0)
        if state.status in WORKING and state.intent.quantity - state.filled_quantity > 0.0:
            self._orders[client_order_id] = state
            self._apply(state, 1.0)

    def __iter__(self) -> Iterator[OrderState]:
        return iter(self._orders.values())

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._orders

    def get(self, client_order_id: str) -> OrderState | None:
        return self._orders.get(client_order_id)

    def exposure(self, strategy: str, symbol: str) -> Exposure:
        own = self._by_strategy.get((strategy, symbol))
        if own is None:
            return Exposure(self._by_symbol, 0.0, 0.0)
        return Exposure(self._by_symbol, own[0], own[1])

    def _apply(self, state: OrderState, sign: float) -> None:
        intent = state.intent
        remaining = sign * (intent.quantity - state.filled_quantity)
        side = 0 if intent.side is _BUY else 1
        _add(self._by_symbol, intent.symbol, side, remaining, sign)
        _add(self._by_strategy, (intent.strategy, intent.symbol), side, remaining, sign)


def _add(table: dict[_K, _Sums], key: _K, side: int, quantity: float, count: float) -> None:
    sums = table.get(key)
    if sums is None:
        sums = table[key] = [0.0, 0.0, 0.0, 0.0]
    sums[side + 2] += count
    sums[side] = sums[side] + quantity if sums[side + 2] > 0.0 else 0.0
    if sums[2] <= 0.0 and sums[3] <= 0.0:
        del table[key]

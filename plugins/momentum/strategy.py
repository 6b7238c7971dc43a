"""Momentum: trade in the direction of the return over a lookback of prices.

Model. Each symbol keeps its last ``lookback_period + 1`` prices from one source chosen by
``price_source``: candle closes (the default), trade prices or tick mids (one source only, so the
lookback always counts the same kind of observation). The lookback return is
``latest / oldest - 1`` and puts the symbol in a regime: up (> +threshold), down (< -threshold)
or neutral. On a *fresh crossing* into up the strategy sends one market buy of ``quantity``; into
down, one market sell. Each order is cut down so that position + orders in flight stays within
``[-max_position, +max_position]``; at the limit no order is sent. Nothing is sent while a
regime lasts, however many prices arrive; the next order needs a new crossing.

Positions are the host's (``self.position_quantity``, built from fills). An order sent but not
yet filled counts as *pending* exposure, kept per order under the client order id ``emit``
returned: fills in its direction take it down as they come, and its ``OrderUpdate``s say the rest
(``on_order``): what remains of a partly filled order, and that an order is done. One that ends
unfilled (rejected by risk, cancelled, expired) stops counting at once, logged as
``order_not_filled`` with the rule and reason. ``pending_timeout_seconds`` is only a safety net for
orders restored from saved state: one that hears nothing that long after it was sent is dropped with
a warning, because its updates may have gone to the runner that saved it (an order that settled
while the engine was stopping; the position the new runner gets already holds its fills).

Fixed from the seed service: it sent the same order again on every price while momentum stayed
past the threshold, and took no account of orders in flight, so its position could run far past
``max_position`` before the fills came back. Here a regime yields at most one order and the
limit counts pending orders.

Handlers run one at a time (the SDK's contract); there is no threading here. Time is event time.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sdk import Candle, Fill, OrderUpdate, OrderUpdateStatus, Side, Signal, Strategy, Tick, Trade

from .config import MomentumConfig

__all__ = ["Momentum"]

_STATE_VERSION = 2
_EPSILON = 1e-12
_NS_PER_SECOND = 1_000_000_000


@dataclass(slots=True)
class _Order:
    """An order sent and not yet done."""

    quantity: float  # signed, not filled yet
    sent_ns: int
    restored: bool = False  # from saved state, and not heard of since


@dataclass(slots=True)
class _SymbolState:
    prices: deque[float]
    regime: int = 0  # +1 up, -1 down, 0 neutral or not enough prices yet
    orders: dict[str, _Order] = field(default_factory=dict)  # by client order id, oldest first

    @property
    def pending(self) -> float:
        """Signed quantity sent and not yet filled."""
        return sum(order.quantity for order in self.orders.values())


def regime_of(lookback_return: float, threshold: float) -> int:
    """+1 above +threshold, -1 below -threshold, else 0."""
    if lookback_return > threshold:
        return 1
    if lookback_return < -threshold:
        return -1
    return 0


class Momentum(Strategy[MomentumConfig]):
    """Buys fresh upward momentum and sells fresh downward momentum, within ``max_position``."""

    name: ClassVar[str] = "momentum"

    def __init__(self, config: MomentumConfig) -> None:
        super().__init__(config)
        self._symbols: dict[str, _SymbolState] = {}

    # ---------------------------------------------------------------- market data

    def on_candle(self, candle: Candle) -> None:
        if self.config.price_source == "candle":
            self._observe(candle.symbol, candle.close)

    def on_trade(self, trade: Trade) -> None:
        if self.config.price_source == "trade":
            self._observe(trade.symbol, trade.last_price)

    def on_tick(self, tick: Tick) -> None:
        if self.config.price_source == "tick":
            self._observe(tick.symbol, tick.mid)

    # ---------------------------------------------------------------- own orders

    def on_fill(self, fill: Fill) -> None:
        """A fill covers that much of the oldest orders in its direction (its update follows)."""
        state = self._symbols.get(fill.symbol)
        if state is None:
            return
        left = fill.quantity
        for client_order_id, order in list(state.orders.items()):
            if order.quantity * fill.side.sign <= 0:
                continue
            covered = min(left, abs(order.quantity))
            order.quantity -= covered * fill.side.sign
            order.restored = False
            left -= covered
            if abs(order.quantity) < _EPSILON:
                del state.orders[client_order_id]
            if left < _EPSILON:
                return

    def on_order(self, update: OrderUpdate) -> None:
        """An order of ours: what remains of it, or that it is done (unfilled: no longer pending)."""
        state = self._symbols.get(update.symbol)
        order = None if state is None else state.orders.get(update.client_order_id)
        if state is None or order is None:
            return
        if not update.done:
            order.quantity, order.restored = update.remaining_quantity * update.side.sign, False
            return
        del state.orders[update.client_order_id]
        if update.status is not OrderUpdateStatus.FILLED:
            self.log.info(
                "order_not_filled", symbol=update.symbol, status=update.status.value, rule=update.rule,
                reason=update.reason, unfilled=update.quantity - update.filled_quantity,
            )  # fmt: skip

    # ---------------------------------------------------------------- decisions

    def _observe(self, symbol: str, price: float) -> None:
        state = self._state(symbol)
        self._expire_restored(symbol, state)
        state.prices.append(price)
        if len(state.prices) <= self.config.lookback_period:
            return
        lookback_return = state.prices[-1] / state.prices[0] - 1
        regime = regime_of(lookback_return, self.config.threshold)
        fresh = regime != 0 and regime != state.regime
        state.regime = regime
        if fresh:
            self._enter(symbol, state, regime, lookback_return)

    def _enter(self, symbol: str, state: _SymbolState, regime: int, lookback_return: float) -> None:
        exposure = self.position_quantity(symbol) + state.pending
        room = self.config.max_position - exposure * regime
        quantity = min(self.config.quantity, room)
        if quantity <= _EPSILON:
            self.log.info("at_position_limit", symbol=symbol, exposure=exposure, regime=regime)
            return
        side = Side.BUY if regime > 0 else Side.SELL
        metadata = {"reason": "momentum_up" if regime > 0 else "momentum_down", "return": f"{lookback_return:.6f}"}
        client_order_id = self.emit(Signal(symbol=symbol, side=side, quantity=quantity, metadata=metadata))
        state.orders[client_order_id] = _Order(quantity * regime, self.now_ns)

    def _expire_restored(self, symbol: str, state: _SymbolState) -> None:
        """The safety net for restored orders (see the module docstring); orders sent here never expire."""
        timeout_ns = self.config.pending_timeout_seconds * _NS_PER_SECOND
        for client_order_id, order in list(state.orders.items()):
            if order.restored and self.now_ns - order.sent_ns > timeout_ns:
                self.log.warning(
                    "pending_order_expired", symbol=symbol, client_order_id=client_order_id, quantity=order.quantity
                )
                del state.orders[client_order_id]

    def _state(self, symbol: str) -> _SymbolState:
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = _SymbolState(deque(maxlen=self.config.lookback_period + 1))
        return state

    # ---------------------------------------------------------------- hot reload

    def on_save(self) -> bytes:
        symbols = {
            symbol: {
                "prices": list(state.prices),
                "regime": state.regime,
                "orders": {cid: [order.quantity, order.sent_ns] for cid, order in state.orders.items()},
            }
            for symbol, state in self._symbols.items()
        }
        return json.dumps({"version": _STATE_VERSION, "symbols": symbols}).encode()

    def on_load(self, state: bytes) -> None:
        """Restore saved state; state this version cannot read is dropped with a warning (a fresh start is safe)."""
        try:
            self._symbols = self._parse_state(json.loads(state))
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            self.log.warning("state_discarded", reason=str(err))
            self._symbols = {}

    def _parse_state(self, data: Any) -> dict[str, _SymbolState]:
        if data.get("version") != _STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r}, expected {_STATE_VERSION}")
        window = self.config.lookback_period + 1
        return {
            str(symbol): _SymbolState(
                prices=deque((float(p) for p in item["prices"]), maxlen=window),
                regime=int(item["regime"]),
                orders={
                    str(cid): _Order(float(quantity), int(sent_ns), restored=True)
                    for cid, (quantity, sent_ns) in item["orders"].items()
                },
            )
            for symbol, item in data["symbols"].items()
        }

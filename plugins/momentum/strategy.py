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
yet filled counts as *pending* exposure: fills in its direction clear it, and after
``pending_timeout_seconds`` of event time without them it is dropped as dead (rejected by risk,
say), with a warning in the log.

Fixed from the seed service: it sent the same order again on every price while momentum stayed
past the threshold, and took no account of orders in flight, so its position could run far past
``max_position`` before the fills came back. Here a regime yields at most one order and the
limit counts pending orders.

Handlers run one at a time (the SDK's contract); there is no threading here. Time is event time.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

from sdk import Candle, Fill, Side, Signal, Strategy, Tick, Trade

from .config import MomentumConfig

__all__ = ["Momentum"]

_STATE_VERSION = 1
_EPSILON = 1e-12
_NS_PER_SECOND = 1_000_000_000


@dataclass(slots=True)
class _SymbolState:
    prices: deque[float]
    regime: int = 0  # +1 up, -1 down, 0 neutral or not enough prices yet
    pending: float = 0.0  # signed quantity sent and not yet filled
    pending_since_ns: int = 0


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
    Config = MomentumConfig

    def __init__(self, config: MomentumConfig) -> None:
        super().__init__(config)
        self._symbols: dict[str, _SymbolState] = {}

    # ---------------------------------------------------------------- market data

    def on_candle(self, candle: Candle) -> None:
        if self.config.price_source == "candle":
            self._observe(candle.symbol, candle.close)

    def on_trade(self, trade: Trade) -> None:
        if self.config.price_source == "trade":
            self._observe(trade.symbol, trade.price)

    def on_tick(self, tick: Tick) -> None:
        if self.config.price_source == "tick":
            self._observe(tick.symbol, tick.mid)

    # ---------------------------------------------------------------- own orders

    def on_fill(self, fill: Fill) -> None:
        """A fill in the pending direction covers that much of the pending quantity."""
        state = self._symbols.get(fill.symbol)
        if state is None or state.pending * fill.side.sign <= 0:
            return
        covered = min(fill.quantity, abs(state.pending))
        state.pending -= covered * fill.side.sign
        if abs(state.pending) < _EPSILON:
            state.pending = 0.0

    # ---------------------------------------------------------------- decisions

    def _observe(self, symbol: str, price: float) -> None:
        state = self._state(symbol)
        self._expire_pending(symbol, state)
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
        self.emit(Signal(symbol=symbol, side=side, quantity=quantity, metadata=metadata))
        state.pending += quantity * regime
        state.pending_since_ns = self.now_ns

    def _expire_pending(self, symbol: str, state: _SymbolState) -> None:
        timeout_ns = self.config.pending_timeout_seconds * _NS_PER_SECOND
        if state.pending and self.now_ns - state.pending_since_ns > timeout_ns:
            self.log.warning("pending_order_expired", symbol=symbol, quantity=state.pending)
            state.pending = 0.0

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
                "pending": state.pending,
                "pending_since_ns": state.pending_since_ns,
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
                pending=float(item["pending"]),
                pending_since_ns=int(item["pending_since_ns"]),
            )
            for symbol, item in data["symbols"].items()
        }

"""Momentum on closes, fully specified: the strategy the backtest is checked against a reference library with.

On each candle: keep the last ``lookback + 1`` closes; ``r = close / close lookback bars ago - 1``.
Flat and ``r > threshold``: buy ``quantity`` at market. Long and ``r < -threshold``: sell what is held
at market. Long only, one order at a time. It also checks the backtest's causality as it goes: a
candle that arrives while its order has not been settled (fill, position and update all delivered)
raises, as does a fill that does not match its order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sdk import (
    Candle,
    Fill,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Side,
    Signal,
    Strategy,
    StrategyConfig,
    hookimpl,
)

_DONE = {OrderUpdateStatus.FILLED, OrderUpdateStatus.CANCELLED, OrderUpdateStatus.EXPIRED, OrderUpdateStatus.REJECTED}


@dataclass(frozen=True)
class ClosesConfig(StrategyConfig):
    lookback: int = 10
    threshold: float = 0.01
    quantity: float = 1.0


class ClosesMomentum(Strategy[ClosesConfig]):
    name = "closes_momentum"
    Config = ClosesConfig

    def __init__(self, config: ClosesConfig) -> None:
        super().__init__(config)
        self.closes: deque[float] = deque(maxlen=config.lookback + 1)
        self.pending = ""
        self.held = 0.0

    def on_candle(self, candle: Candle) -> None:
        if self.pending:
            raise RuntimeError(f"candle at {candle.timestamp_ns} came before order {self.pending} was settled")
        self.closes.append(candle.close)
        if len(self.closes) <= self.config.lookback:
            return
        change = candle.close / self.closes[0] - 1
        if self.held == 0 and change > self.config.threshold:
            self.pending = self.emit(self._order(candle.symbol, Side.BUY, self.config.quantity))
        elif self.held > 0 and change < -self.config.threshold:
            self.pending = self.emit(self._order(candle.symbol, Side.SELL, self.held))

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.side.sign * fill.quantity

    def on_order(self, update: OrderUpdate) -> None:
        if update.client_order_id != self.pending or update.status not in _DONE:
            return
        self.pending = ""
        if update.status is not OrderUpdateStatus.FILLED:
            raise RuntimeError(f"order {update.client_order_id} ended {update.status.value}: {update.reason}")

    @staticmethod
    def _order(symbol: str, side: Side, quantity: float) -> Signal:
        return Signal(symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=quantity)


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[ClosesConfig]]]:
    return [ClosesMomentum]

"""Trades on a timer only: every ``period_s`` of simulated (or live) time it buys when flat, else sells
what it holds. The backtest's timer test: its round trips start and end where the timer put them."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import Fill, OrderType, Side, Signal, Strategy, StrategyConfig, Timer, hookimpl


@dataclass(frozen=True)
class TimedConfig(StrategyConfig):
    period_s: float = 600.0
    symbol: str = "TEST"


class TimedTrader(Strategy[TimedConfig]):
    name = "timed_trader"

    def __init__(self, config: TimedConfig) -> None:
        super().__init__(config)
        self.held = 0.0

    def on_start(self) -> None:
        self.every("trade", self.config.period_s)

    def on_timer(self, timer: Timer) -> None:
        side, quantity = (Side.BUY, 1.0) if self.held == 0 else (Side.SELL, self.held)
        self.emit(Signal(symbol=self.config.symbol, side=side, order_type=OrderType.MARKET, quantity=quantity))

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.side.sign * fill.quantity


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[TimedConfig]]]:
    return [TimedTrader]

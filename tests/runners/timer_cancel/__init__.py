"""Rests a buy limit on its first tick and cancels it ``cancel_after_s`` later by a timer: the
backtest's check that a decision a timer makes is acted on before the next event is matched."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import OrderType, Side, Signal, Strategy, StrategyConfig, Tick, Timer, hookimpl

_S = 1_000_000_000


@dataclass(frozen=True)
class TimerCancelConfig(StrategyConfig):
    limit: float = 95.0
    cancel_after_s: float = 2.0


class TimerCancel(Strategy[TimerCancelConfig]):
    name = "timer_cancel"

    def __init__(self, config: TimerCancelConfig) -> None:
        super().__init__(config)
        self.sent = False

    def on_tick(self, tick: Tick) -> None:
        if self.sent:
            return
        self.sent = True
        order = Signal(symbol=tick.symbol, side=Side.BUY, order_type=OrderType.LIMIT, quantity=1.0,
                       price=self.config.limit, slot="bid")  # fmt: skip
        self.emit(order)
        self.at("drop", tick.timestamp_ns + round(self.config.cancel_after_s * _S))

    def on_timer(self, timer: Timer) -> None:
        self.cancel(self.config.symbols[0] if self.config.symbols else "TEST", "bid")


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[TimerCancelConfig]]]:
    return [TimerCancel]

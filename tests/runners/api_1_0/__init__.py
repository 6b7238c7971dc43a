"""A strategy written against the SDK 1.0 public API only: frozen, never edited as the SDK moves on.

It is the check that a strategy written for 1.0 still loads and trades on every later 1.x (the
compatibility promise of sdk/README.md): it imports nothing but names of ``sdk.__all__`` as of 1.0
and uses them as 1.0 documents them. If a change to the SDK breaks this file, the change breaks
the promise; change the SDK, not this file.

``every`` ticks it buys ``quantity`` at market, alternating with a sell once it holds a position,
logs each fill, and carries its tick count across a hot reload (``on_save`` / ``on_load``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sdk import Fill, OrderUpdate, Side, Signal, Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class Api10Config(StrategyConfig):
    every: int = 10
    quantity: float = 0.01

    def validate(self) -> None:
        if self.every < 1:
            self.fail("every", f"must be >= 1, got {self.every}")
        if self.quantity <= 0:
            self.fail("quantity", f"must be > 0, got {self.quantity}")


class Api10(Strategy[Api10Config]):
    """Buys every ``every``-th tick, sells the next time when it holds a position."""

    name = "api_1_0"

    def __init__(self, config: Api10Config) -> None:
        super().__init__(config)
        self.ticks = 0
        self.orders: dict[str, Side] = {}

    def on_tick(self, tick: Tick) -> None:
        self.ticks += 1
        if self.ticks % self.config.every:
            return
        side = Side.SELL if self.position_quantity(tick.symbol) > 0 else Side.BUY
        order_id = self.emit(Signal(symbol=tick.symbol, side=side, quantity=self.config.quantity))
        self.orders[order_id] = side

    def on_fill(self, fill: Fill) -> None:
        self.log.info("api_1_0_filled", side=fill.side.value, price=fill.price, quantity=fill.quantity)

    def on_order(self, update: OrderUpdate) -> None:
        if update.done:
            self.orders.pop(update.client_order_id, None)

    def on_save(self) -> bytes:
        return json.dumps({"version": 1, "ticks": self.ticks}).encode()

    def on_load(self, state: bytes) -> None:
        self.ticks = int(json.loads(state)["ticks"])


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[Api10Config]]]:
    return [Api10]

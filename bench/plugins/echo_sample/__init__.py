"""A benchmark strategy: every ``every``-th tick it emits a signal carrying the tick's timestamp and sequence.

The host measures tick -> signal latency as (time the signal reached the host) - (tick timestamp,
stamped by the publisher at send time).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdk import Signal, Strategy, StrategyConfig, Tick, hookimpl
from sdk.events import Side


@dataclass(frozen=True)
class EchoSampleConfig(StrategyConfig):
    every: int = 100


class EchoSample(Strategy[EchoSampleConfig]):
    name = "echo_sample"
    Config = EchoSampleConfig

    def on_tick(self, tick: Tick) -> None:
        if tick.sequence % self.config.every == 0:
            meta = {"ts": str(tick.timestamp_ns), "seq": str(tick.sequence)}
            self.emit(Signal(symbol=tick.symbol, side=Side.BUY, quantity=0.001, metadata=meta))


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[EchoSampleConfig]]]:
    return [EchoSample]

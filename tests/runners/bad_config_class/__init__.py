"""A plugin package whose strategy's Config is not a StrategyConfig."""

from sdk import Strategy, hookimpl


class NotAConfig:
    pass


class Odd(Strategy):  # type: ignore[type-arg]
    name = "odd"
    Config = NotAConfig  # type: ignore[assignment]


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy]]:  # type: ignore[type-arg]
    return [Odd]

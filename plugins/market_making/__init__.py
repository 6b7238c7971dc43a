"""Built-in plugin package ``market_making``: the market-making strategy, registered through the SDK's hook."""

from __future__ import annotations

from sdk import Strategy, hookimpl

from .config import MarketMakingConfig
from .strategy import MarketMaking

__all__ = ["MarketMaking", "MarketMakingConfig", "strategy_engine_strategies"]


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[MarketMakingConfig]]]:
    """The strategies this package provides: classes, which the runner builds from their configs."""
    return [MarketMaking]

"""Built-in plugin package ``momentum``: the momentum strategy, registered through the SDK's pluggy hook."""

from __future__ import annotations

from sdk import Strategy, hookimpl

from .config import MomentumConfig
from .strategy import Momentum

__all__ = ["Momentum", "MomentumConfig", "strategy_engine_strategies"]


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[MomentumConfig]]]:
    """The strategies this package provides: classes, which the runner builds from their configs."""
    return [Momentum]

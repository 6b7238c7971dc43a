"""Built-in plugin package ``scalping``: the scalping strategy, registered through the SDK's pluggy hook."""

from __future__ import annotations

from sdk import Strategy, hookimpl

from .config import ScalpingConfig
from .strategy import Scalping

__all__ = ["Scalping", "ScalpingConfig", "strategy_engine_strategies"]


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[ScalpingConfig]]]:
    """The strategies this package provides: classes, which the runner builds from their configs."""
    return [Scalping]

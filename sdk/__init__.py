"""Strategy Engine SDK: what strategy authors import.

It depends on pluggy only, never on the engine's host or runner, and installs on its own
(``pip install ./sdk``). See plugins/README.md for writing, testing and dropping in a plugin.
"""

from __future__ import annotations

from sdk import indicators as indicators  # the module, as sdk.indicators.SMA
from sdk.config import StrategyConfig
from sdk.errors import ConfigError, SdkError, ValidationError
from sdk.events import (
    Book,
    Cancel,
    Candle,
    Event,
    Fill,
    MarketEvent,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    Side,
    Signal,
    Tick,
    TimeInForce,
    Timer,
    Trade,
)
from sdk.hooks import hookimpl, hookspec
from sdk.strategy import Context, Strategy, StrategyLogger

__all__ = [
    "Book",
    "Cancel",
    "Candle",
    "ConfigError",
    "Context",
    "Event",
    "Fill",
    "MarketEvent",
    "OrderType",
    "OrderUpdate",
    "OrderUpdateStatus",
    "Position",
    "SdkError",
    "Side",
    "Signal",
    "Strategy",
    "StrategyConfig",
    "StrategyLogger",
    "Tick",
    "TimeInForce",
    "Timer",
    "Trade",
    "ValidationError",
    "hookimpl",
    "hookspec",
]

__version__ = "0.1.0"

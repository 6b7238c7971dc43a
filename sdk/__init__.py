"""Strategy Engine SDK: what strategy authors import.

The public API is exactly the names below, which this package exports, and the modules
``sdk.testing`` (running a strategy in a unit test, no server) and ``sdk.indicators``
(rolling-window building blocks). Import them from here: ``from sdk import Strategy, Signal,
Side``. The package's other modules are the engine's own, where these names are defined and what
the engine's runner uses; underscored ones are internals. They may change in any release; the
names here change only with the major version (sdk/README.md says what is promised).

Strategy: ``Strategy`` (subclass it as ``Strategy[MyConfig]``), ``StrategyConfig``, ``Context``,
``StrategyLogger``.
Events it receives: ``Tick``, ``Trade``, ``Book``, ``Candle``, ``Fill``, ``Position``, ``Timer``,
``OrderUpdate`` (with ``OrderUpdateStatus``), and the unions ``MarketEvent`` and ``Event``.
Orders it asks for: ``Signal``, ``Cancel``, ``Side``, ``OrderType``, ``TimeInForce``.
Errors: ``SdkError``, ``ValidationError``, ``ConfigError``.
Plugin packages: ``hookimpl`` marks the ``strategy_engine_strategies`` hook, whose specification
is ``StrategyEngineSpec``.

Events and signals take keyword arguments only, named as the JSON-lines format names the fields.
It depends on pluggy only, never on the engine's host or runner, and installs on its own
(``pip install ./sdk``). ``__version__`` is the SDK's semantic version.
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
from sdk.hooks import StrategyEngineSpec, hookimpl
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
    "StrategyEngineSpec",
    "StrategyLogger",
    "Tick",
    "TimeInForce",
    "Timer",
    "Trade",
    "ValidationError",
    "hookimpl",
]

__version__ = "1.0.0"

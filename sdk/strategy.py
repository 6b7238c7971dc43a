"""The ``Strategy`` base class and the context the runner binds to it.

An author subclasses ``Strategy`` with its config class as the type parameter, names it, and
overrides the handlers it needs::

    class Momentum(Strategy[MomentumConfig]):
        name = "momentum"

        def __init__(self, config: MomentumConfig) -> None:  # only when it keeps state
            super().__init__(config)
            self.prices: dict[str, float] = {}

The type parameter is the one declaration of the strategy's config: the class attribute
``Config``, which the runner builds the config with, is set from it when the class is defined
(``__init_subclass__``), and ``self.config`` is typed by it under mypy. Handlers run one at a
time, never concurrently. They ask for orders with ``self.emit(Signal(...))`` (which returns the
order's client order id) and ``self.cancel(symbol, slot)``, and hear what became of each order in
``on_order``, by that id. They read the time with ``self.now_ns`` (the time of the event being
handled, so a backtest is deterministic) and their positions with ``self.position(symbol)``, as
the host's books hold them. Strategy code never reads the wall clock or opens sockets itself.
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar, Generic, Mapping, Protocol, TypeVar

from sdk.config import StrategyConfig
from sdk.errors import SdkError
from sdk.events import Book, Cancel, Candle, Event, Fill, OrderUpdate, Position, Signal, Tick, Timer, Trade

__all__ = ["Context", "Strategy", "StrategyLogger"]

C = TypeVar("C", bound=StrategyConfig)


class StrategyLogger(Protocol):
    """Structured logger: a constant event name, data as keywords (``log.info("quoted", bid=1.0)``)."""

    def debug(self, event: str, **data: Any) -> Any: ...
    def info(self, event: str, **data: Any) -> Any: ...
    def warning(self, event: str, **data: Any) -> Any: ...
    def error(self, event: str, **data: Any) -> Any: ...


class Context(Protocol):
    """What the runner (or ``sdk.testing``) gives a strategy: its id, clock, log, outputs, positions."""

    @property
    def strategy_id(self) -> str: ...
    @property
    def log(self) -> StrategyLogger: ...
    def now_ns(self) -> int: ...
    def emit(self, signal: Signal) -> str: ...
    def cancel(self, cancel: Cancel) -> None: ...
    def position(self, symbol: str) -> Position | None: ...
    def positions(self) -> Mapping[str, Position]: ...


class Strategy(Generic[C]):
    """Base class of every strategy: ``class Mine(Strategy[MyConfig])``, then override the handlers you need.

    ``name`` (a class attribute) is what config files call the strategy. ``Config`` is set from
    the type parameter when the class is defined; do not set it yourself. All handlers default
    to doing nothing.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[StrategyConfig]] = StrategyConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = _config_parameter(cls)
        if declared is None:
            return  # no type parameter here: inherited, or a generic intermediate class
        explicit = cls.__dict__.get("Config")
        if explicit is not None and explicit is not declared:
            raise TypeError(
                f"{cls.__name__}: Config = {_name(explicit)} contradicts Strategy[{_name(declared)}]; "
                "declare the config once, as the type parameter, and remove the Config attribute"
            )
        cls.Config = declared

    def __init__(self, config: C) -> None:
        self.config = config
        self._context: Context | None = None

    # ---------------------------------------------------------------- wiring (runner-facing)

    def bind(self, context: Context) -> None:
        """Called by the runner before ``on_start``; gives the strategy its clock, log and outputs."""
        self._context = context

    @property
    def context(self) -> Context:
        if self._context is None:
            raise SdkError(f"strategy {self.name!r} is not bound to a context yet: handlers run after bind()")
        return self._context

    def wants(self, symbol: str) -> bool:
        """Whether market data for ``symbol`` should reach this strategy (config ``symbols``; empty: all)."""
        symbols = self.config.symbols
        return not symbols or symbol in symbols

    # ---------------------------------------------------------------- helpers for authors

    @property
    def now_ns(self) -> int:
        return self.context.now_ns()

    @property
    def log(self) -> StrategyLogger:
        return self.context.log

    def emit(self, signal: Signal) -> str:
        """Ask for an order; the client order id its ``OrderUpdate``s will carry (the signal's own, if set)."""
        return self.context.emit(signal)

    def cancel(self, symbol: str, slot: str) -> None:
        self.context.cancel(Cancel(symbol=symbol, slot=slot))

    def position(self, symbol: str) -> Position | None:
        return self.context.position(symbol)

    def position_quantity(self, symbol: str) -> float:
        """Signed position in ``symbol`` (0.0 when flat or unknown)."""
        position = self.context.position(symbol)
        return 0.0 if position is None else position.quantity

    # ---------------------------------------------------------------- lifecycle and handlers

    def on_start(self) -> None:
        """Called once after ``bind`` (and after ``on_load`` when state was restored)."""

    def on_stop(self) -> None:
        """Called once when the runner is asked to stop."""

    def on_tick(self, tick: Tick) -> None: ...
    def on_trade(self, trade: Trade) -> None: ...
    def on_book(self, book: Book) -> None: ...
    def on_candle(self, candle: Candle) -> None: ...
    def on_fill(self, fill: Fill) -> None: ...
    def on_position(self, position: Position) -> None: ...
    def on_order(self, update: OrderUpdate) -> None: ...
    def on_timer(self, timer: Timer) -> None: ...

    def on_save(self) -> bytes:
        """State to carry into the replacement runner on a hot reload (default: none)."""
        return b""

    def on_load(self, state: bytes) -> None:
        """Restore what ``on_save`` returned, before ``on_start``. Called only with non-empty state."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _config_parameter(cls: type) -> type[StrategyConfig] | None:
    """The ``X`` of ``Strategy[X]`` (or of a generic subclass's ``Base[X]``) among ``cls``'s own bases.

    None when no base gives one: the class inherits its parent's ``Config``.
    """
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if not (isinstance(origin, type) and issubclass(origin, Strategy)):
            continue
        args = typing.get_args(base)
        if origin is Strategy and not isinstance(args[0], TypeVar) and not _is_config(args[0]):
            raise TypeError(
                f"{cls.__name__}: the type parameter of Strategy[...] must be a StrategyConfig subclass, "
                f"got {args[0]!r}"
            )
        configs = [arg for arg in args if _is_config(arg)]
        if len(configs) == 1:
            return configs[0]
    return None


def _is_config(value: object) -> typing.TypeGuard[type[StrategyConfig]]:
    return isinstance(value, type) and issubclass(value, StrategyConfig)


def _name(value: object) -> str:
    return getattr(value, "__name__", repr(value))


HANDLERS: Mapping[type[Event], str] = {
    Tick: "on_tick",
    Trade: "on_trade",
    Book: "on_book",
    Candle: "on_candle",
    Fill: "on_fill",
    Position: "on_position",
    OrderUpdate: "on_order",
    Timer: "on_timer",
}

"""The seams the risk manager reads the world through: reference prices, the feed, the book, durable counters.

Model. The risk core is pure: it never reads ``time``, a socket or a file itself. Everything it knows
about the world comes through the protocols here and its clock (``host.clock.Clocks``), called
synchronously on the event loop inside ``RiskManager.check``, so an implementation must answer from
memory (a dict, a cached snapshot), never from a query or the network. Two clock readings:
``monotonic()`` for the rate windows (immune to wall clock steps) and ``now_ns()`` (Unix epoch
nanoseconds) for UTC days and for the age of a reference price, whose timestamps come from the
market data and are on the same epoch scale. A live engine also attaches its feed's ``FeedView``:
arrival times on the host's own clock, which catch a silent feed even when the publisher's clock
runs ahead of the host's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Protocol

from host.orders import OrderState

__all__ = [
    "MarketView",
    "FeedView",
    "BookView",
    "CounterStore",
    "MemoryCounterStore",
]


class MarketView(Protocol):
    """The latest reference price per symbol."""

    def reference(self, symbol: str) -> tuple[float, int] | None:
        """``(price, timestamp_ns)``: the mid of the latest tick or book, else the last trade or candle close.

        None when the symbol has had no usable market data. ``timestamp_ns`` is the market data's own
        time (epoch ns), which is what makes a price stale.
        """
        ...


class FeedView(Protocol):
    """The live market data feed's own view of freshness, by arrival on the host's monotonic clock."""

    stale_after_s: float

    def is_stale(self, symbol: str) -> bool:
        """Nothing arrived for ``symbol`` within ``stale_after_s`` (or nothing ever)."""
        ...


class BookView(Protocol):
    """Positions, working orders and account figures as the host's books hold them now."""

    def positions(self, strategy: str) -> Mapping[str, float]:
        """Signed position per symbol of one strategy (absent = flat)."""
        ...

    def all_positions(self) -> Mapping[str, float]:
        """Signed position per symbol, net across all strategies."""
        ...

    def working_orders(self) -> Iterable[OrderState]:
        """Every order that may still fill (status in ``WORKING``), journaled ones included."""
        ...

    def daily_pnl(self, day: date) -> float:
        """Realized P&L (fees subtracted) of the UTC ``day``, all strategies."""
        ...

    def equity(self) -> float:
        """Balance plus unrealized P&L at the latest marks."""
        ...

    def peak_equity(self) -> float:
        """The highest equity seen (the high-water mark drawdown is measured from)."""
        ...

    def balance(self) -> float:
        """Cash: initial balance plus realized P&L."""
        ...


class CounterStore(Protocol):
    """Small integers that must survive a restart (today's approval and rejection counts).

    ``set`` is called on the order path, once per decision: an implementation should write to
    memory and persist behind it (e.g. a dict the shell flushes to the ledger's key/value table).
    """

    def get(self, key: str) -> int | None: ...

    def set(self, key: str, value: int) -> None: ...


class MemoryCounterStore:
    """A ``CounterStore`` in a dict: the default, and the write-behind buffer of a durable one."""

    def __init__(self, values: Mapping[str, int] | None = None) -> None:
        self._values: dict[str, int] = dict(values or {})

    def get(self, key: str) -> int | None:
        return self._values.get(key)

    def set(self, key: str, value: int) -> None:
        self._values[key] = value

    def items(self) -> Iterator[tuple[str, int]]:
        """Every stored value, for a shell that persists them."""
        return iter(list(self._values.items()))

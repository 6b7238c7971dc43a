"""What the order path keeps in memory for speed and must not lose: risk counters and the equity peak.

Risk's daily counters (``risk.<UTC day>.<name>``) are set once per decision, on the per-order
path, so they go to memory first (``DurableCounters`` is the risk manager's ``CounterStore``) and
reach the ledger's key/value table in one transaction per flush; the equity high-water mark is
recorded the same way when it moved. ``Persister.flush`` runs every second from the execution
engine's loop and once more at shutdown: a crash loses at most the last second of counts, never an
order or a fill (those are journaled synchronously).
"""

from __future__ import annotations

import structlog

from host.execution.book import Book
from host.ledger import Ledger, LedgerError

__all__ = ["DurableCounters", "Persister"]

log = structlog.get_logger("host.persist")
PREFIX = "risk."


class DurableCounters:
    """A CounterStore in memory, loaded from and flushed to the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._values = {key: int(value) for key, value in ledger.values(PREFIX).items() if value.lstrip("-").isdigit()}
        self._dirty: set[str] = set()

    def get(self, key: str) -> int | None:
        return self._values.get(key)

    def set(self, key: str, value: int) -> None:
        self._values[key] = value
        self._dirty.add(key)

    def take_dirty(self) -> dict[str, str]:
        dirty = {key: str(self._values[key]) for key in self._dirty}
        self._dirty.clear()
        return dirty


class Persister:
    """Flushes risk counters and the equity peak to the ledger."""

    def __init__(self, ledger: Ledger, counters: DurableCounters, book: Book) -> None:
        self.ledger = ledger
        self.counters = counters
        self.book = book
        self._peak_saved = ledger.peak_equity() or book.initial_balance

    def flush(self, now_ns: int) -> None:
        dirty = self.counters.take_dirty()
        try:
            if dirty:
                self.ledger.set_values(dirty)
            equity = self.book.equity()
            if self.book.peak_equity() > self._peak_saved:
                self.ledger.record_equity(equity, now_ns)
                self._peak_saved = self.book.peak_equity()
        except LedgerError as err:
            for key, value in dirty.items():  # keep them for the next flush
                self.counters.set(key, int(value))
            log.error("persist_failed", reason=str(err))

"""The I/O shell around ``PositionCheck``: metrics, log lines and the periodic judging.

Model. ``VenuePositions`` is owned by the Engine and called on the event loop: ``ledger`` with the
ledger's position after each recorded fill (the same Position the strategy is told), ``venue``
with each position message the venue published, ``expire`` every ``interval_s`` from ``run`` (the
live source runs it: only a live source receives venue positions). What ``PositionCheck`` judges
becomes, per disagreement, ``venue_position_mismatches_total{strategy,symbol}`` and, at most once
per pair every ``log_every_s``, a ``venue_position_mismatch`` warning naming strategy, symbol and
both quantities; ``venue_positions_mismatched`` is the number of pairs in mismatch now (/status reads
``check``). A venue message is never handed to a strategy, whatever the verdict.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from prometheus_client import Counter, Gauge

from host.execution.position_check import Cleared, Judgement, Mismatch, PositionCheck
from host.labels import LabelGuard
from sdk.events import Position

__all__ = ["VenuePositions"]

log = structlog.get_logger("host.execution.venue_positions")


class VenuePositions:
    """Venue position messages checked against the ledger, reported and never forwarded."""

    def __init__(
        self, check: PositionCheck, *, mismatches: Counter, mismatched: Gauge, labels: LabelGuard,
        interval_s: float = 0.25,
    ) -> None:  # fmt: skip
        self.check = check
        self.interval_s = interval_s
        self._mismatches = mismatches
        self._mismatched = mismatched
        self._labels = labels

    def ledger(self, position: Position) -> None:
        """The ledger's position after a fill (what the strategy was just told)."""
        self._report(self.check.ledger(position.strategy, position.symbol, position.quantity))

    def venue(self, strategy: str, position: Position, ledger: float) -> None:
        """A position the venue published for ``strategy``; ``ledger`` is what the ledger holds now."""
        self._report(self.check.venue(strategy, position.symbol, position.quantity, ledger))

    def expire(self) -> None:
        self._report(self.check.expire())

    async def run(self, stop: asyncio.Event) -> None:
        """Judge waiting messages every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await stop.wait()
            self.expire()

    def _report(self, judged: list[Judgement]) -> None:
        if not judged:
            return
        for judgement in judged:
            if isinstance(judgement, Mismatch):
                self._mismatch(judgement)
            else:
                self._cleared(judgement)
        self._mismatched.set(self.check.current)

    def _mismatch(self, mismatch: Mismatch) -> None:
        found = mismatch.disagreement
        labels = self._labels
        self._mismatches.labels(strategy=labels.strategy(found.strategy), symbol=labels.symbol(found.symbol)).inc()
        if mismatch.log:
            log.warning(
                "venue_position_mismatch", strategy=found.strategy, symbol=found.symbol, ledger_quantity=found.ledger,
                venue_quantity=found.venue, current=mismatch.current, unlogged=mismatch.unlogged,
                settle_s=self.check.settle_s,
            )  # fmt: skip

    @staticmethod
    def _cleared(cleared: Cleared) -> None:
        log.info("venue_position_agrees", strategy=cleared.strategy, symbol=cleared.symbol, quantity=cleared.quantity)

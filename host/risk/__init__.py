"""Pre-trade risk and signal aggregation: the pure cores between the runners' signals and execution.

Signals from the runners wait in a bounded ``SignalQueue``; the ``Aggregator`` turns a batch of them
into the orders to place (and an ``Outcome`` for every signal); the ``RiskManager`` checks each
resulting ``OrderIntent`` exactly once before execution. All three are synchronous, do no I/O and
read time only through the injected clocks; the host's asyncio shell drives them.
"""

from __future__ import annotations

from host.risk.aggregator import AggregationResult, Aggregator, Outcome, OutcomeKind, SignalQueue
from host.risk.decisions import APPROVED, QUOTA_RULES, Approved, Decision, Rejected, RiskStatus, Rule
from host.risk.manager import RiskManager
from host.risk.seams import (
    BookView,
    CounterStore,
    FeedView,
    MarketView,
    MemoryCounterStore,
)

__all__ = [
    "RiskManager",
    "Approved",
    "APPROVED",
    "Rejected",
    "Decision",
    "Rule",
    "QUOTA_RULES",
    "RiskStatus",
    "MarketView",
    "FeedView",
    "BookView",
    "CounterStore",
    "MemoryCounterStore",
    "Aggregator",
    "AggregationResult",
    "Outcome",
    "OutcomeKind",
    "SignalQueue",
]

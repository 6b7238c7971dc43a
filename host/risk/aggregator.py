"""Aggregation: a batch of strategies' signals -> the orders to place, and an ``Outcome`` for every signal.

Model. Pure and synchronous: ``Aggregator.aggregate(batch)`` takes the ``(strategy, Signal)`` pairs
taken from the ``SignalQueue`` in arrival order and returns the orders to send to risk, highest
``priority`` first (10 is the highest, 1 the lowest; equal priorities keep arrival order), plus one
``Outcome`` per input saying what became of it. Nothing is dropped silently.

Each order belongs to one strategy: it is that strategy's order, fills and position. That is why no
mode sums quantities across strategies, and why orders are never netted across strategies.

1. Slot signals (``Signal.slot``, a market maker's quotes) are never combined with others and pass
   through on their own in every mode: a slot signal replaces the strategy's working order in that
   slot, so it is a standing quote, not a directional opinion. Netting a quoting strategy's bid
   against its ask would pull both quotes; letting a directional vote outvote a quote, or merging a
   quote into another strategy's order, would break the slot's replace-in-place chain. Within a batch
   only the last signal per (strategy, symbol, slot) matters (each replaces the one before), so the
   earlier ones are ``superseded``.
2. Netting, in every mode, within one strategy and one symbol: when a strategy sends both sides in one
   batch they net to the difference. The smaller side is ``netted`` (fully offset); its total is taken
   off the larger side's signals, lowest priority first (the latest first among equals), so the
   strategy's most urgent signals survive whole; a signal cut to zero is ``netted``, one cut part-way
   is ``reduced`` and sent with the rest. Equal sides net to nothing. Opposite signals of *different*
   strategies are not netted in ``priority`` mode: both are sent (each strategy owns its position, and
   netting would hand one strategy's fills to the other; risk counts both as working).
3. The mode, per symbol, over the strategies left with signals after netting (each has one side):

   - ``priority``: every remaining signal is sent on its own.
   - ``majority``: one vote per strategy; the side with more strategies wins, a tie sends nothing
     (``no_consensus``). The winning side sends one order: its *lead* signal, unchanged (highest
     priority, then earliest); the winners' other signals are ``merged`` into it, the losers are
     ``outvoted``. Not the sum: agreement decides *whether*, it does not multiply the size, and the
     lead strategy must not be booked other strategies' quantities.
   - ``weighted``: score = sum over strategies of weight * confidence * sign, where a strategy's
     confidence is its lead signal's. Score 0 or ``|score| < threshold`` sends nothing; otherwise the
     score's sign picks the side, and the lead signal is sent with quantity = the mean of the winning
     strategies' quantities (each its remaining total on the symbol) weighted by weight * confidence.
   - ``unanimous``: every strategy on the symbol on the same side: the lead is sent (others
     ``merged``); any disagreement sends nothing.

``SignalQueue`` is the bounded buffer between the runners' signal listener and the aggregation loop.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from host.config import AGGREGATION_MODES
from sdk.events import Side, Signal

__all__ = ["OutcomeKind", "Outcome", "AggregationResult", "Aggregator", "SignalQueue"]

_EPS = 1e-9  # relative: a netting remainder or a score miss this small is float noise


class OutcomeKind(StrEnum):
    """What became of one input signal (a metric label)."""

    EXECUTED = "executed"  # sent on as an order of its own strategy (see ``Outcome.order``)
    REDUCED = "reduced"  # sent on with less quantity: part was netted against its strategy's opposite signals
    NETTED = "netted"  # fully offset by its own strategy's opposite signals on the symbol
    MERGED = "merged"  # on the winning side; represented by another strategy's (or its own) lead order
    OUTVOTED = "outvoted"  # its side lost the vote on the symbol
    NO_CONSENSUS = "no_consensus"  # tie, weighted score under the threshold, or strategies disagree
    SUPERSEDED = "superseded"  # a later signal in the batch replaced it in the same slot


@dataclass(frozen=True, slots=True)
class Outcome:
    """The fate of the input at ``index``; ``order`` indexes ``AggregationResult.orders`` when it was sent."""

    index: int
    strategy: str
    symbol: str
    kind: OutcomeKind
    order: int | None = None  # executed / reduced: its own order; merged: the order that represents it
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AggregationResult:
    orders: tuple[tuple[str, Signal], ...]  # (strategy, signal) to send to risk, in this order
    outcomes: tuple[Outcome, ...]  # one per input, in input order


@dataclass(slots=True)
class _Entry:
    index: int
    strategy: str
    signal: Signal
    kind: OutcomeKind = OutcomeKind.EXECUTED
    detail: str = ""


@dataclass(slots=True)
class _Order:
    lead: _Entry
    signal: Signal
    merged: list[_Entry] = field(default_factory=list)


class _Plan:
    """Outcomes and orders of one batch, being decided."""

    def __init__(self, size: int) -> None:
        self._outcomes: list[Outcome | None] = [None] * size
        self._orders: list[_Order] = []

    def settle(self, entry: _Entry, kind: OutcomeKind, detail: str) -> None:
        """An entry that sends nothing."""
        entry.kind = kind
        self._outcomes[entry.index] = Outcome(entry.index, entry.strategy, entry.signal.symbol, kind, None, detail)

    def send(self, lead: _Entry, signal: Signal | None = None, merged: Sequence[_Entry] = ()) -> None:
        sent = lead.signal if signal is None else signal
        self._orders.append(_Order(lead, sent, [entry for entry in merged if entry is not lead]))

    def result(self) -> AggregationResult:
        self._orders.sort(key=lambda order: (-order.signal.priority, order.lead.index))
        for number, order in enumerate(self._orders):
            lead = order.lead
            self._outcomes[lead.index] = Outcome(
                lead.index, lead.strategy, lead.signal.symbol, lead.kind, number, lead.detail
            )
            for entry in order.merged:
                detail = f"represented by input {lead.index} ({lead.strategy})"
                self._outcomes[entry.index] = Outcome(
                    entry.index, entry.strategy, entry.signal.symbol, OutcomeKind.MERGED, number, detail
                )
        outcomes = tuple(outcome for outcome in self._outcomes if outcome is not None)
        if len(outcomes) != len(self._outcomes):
            raise AssertionError("aggregation left an input without an outcome")
        return AggregationResult(tuple((order.lead.strategy, order.signal) for order in self._orders), outcomes)


def _lead(entries: Sequence[_Entry]) -> _Entry:
    """The signal that speaks for a group: highest priority, then earliest."""
    return min(entries, key=lambda entry: (-entry.signal.priority, entry.index))


def _net(entries: list[_Entry], plan: _Plan) -> list[_Entry]:
    """One strategy's signals on one symbol, netted to one side (see the module docstring, point 2)."""
    buys = [entry for entry in entries if entry.signal.side is Side.BUY]
    sells = [entry for entry in entries if entry.signal.side is Side.SELL]
    if not buys or not sells:
        return entries
    bought, sold = sum(e.signal.quantity for e in buys), sum(e.signal.quantity for e in sells)
    summary = f"its strategy sent buy {bought:g} and sell {sold:g} on {entries[0].signal.symbol}"
    if abs(bought - sold) <= _EPS * max(bought, sold):
        for entry in entries:
            plan.settle(entry, OutcomeKind.NETTED, f"{summary}: they net to nothing")
        return []
    keep, offset = (buys, sold) if bought > sold else (sells, bought)
    for entry in sells if keep is buys else buys:
        plan.settle(entry, OutcomeKind.NETTED, f"{summary}: the smaller side is offset")
    for entry in sorted(keep, key=lambda e: (e.signal.priority, -e.index)):
        quantity = entry.signal.quantity
        taken = min(quantity, offset)
        offset -= taken
        if quantity - taken <= _EPS * quantity:
            plan.settle(entry, OutcomeKind.NETTED, f"{summary}: offset in full")
        elif taken > _EPS * quantity:
            entry.signal = replace(entry.signal, quantity=quantity - taken)
            entry.kind, entry.detail = OutcomeKind.REDUCED, f"{summary}: reduced from {quantity:g} by {taken:g}"
    return [entry for entry in keep if entry.kind is not OutcomeKind.NETTED]


class Aggregator:
    """Turns a batch of (strategy, signal) into orders under one mode (see the module docstring)."""

    def __init__(
        self,
        mode: str,
        weights: Mapping[str, float] | None = None,
        *,
        threshold: float = 0.0,
        default_weight: float = 1.0,
    ) -> None:
        if mode not in AGGREGATION_MODES:
            raise ValueError(f"aggregation mode: must be one of {', '.join(AGGREGATION_MODES)}, got {mode!r}")
        for name, weight in {**(weights or {}), "(default)": default_weight}.items():
            if not 0.0 <= weight < math.inf:
                raise ValueError(f"aggregation weight of {name}: must be a finite number >= 0, got {weight!r}")
        if not 0.0 <= threshold < math.inf:
            raise ValueError(f"aggregation threshold: must be a finite number >= 0, got {threshold!r}")
        self.mode = mode
        self._weights = dict(weights or {})
        self._default_weight = default_weight
        self._threshold = threshold

    def weight(self, strategy: str) -> float:
        return self._weights.get(strategy, self._default_weight)

    def aggregate(self, batch: Sequence[tuple[str, Signal]]) -> AggregationResult:
        plan = _Plan(len(batch))
        slots: dict[tuple[str, str, str], _Entry] = {}
        by_symbol: dict[str, dict[str, list[_Entry]]] = {}
        for index, (strategy, signal) in enumerate(batch):
            entry = _Entry(index, strategy, signal)
            if signal.slot:
                key = (strategy, signal.symbol, signal.slot)
                if key in slots:
                    detail = f"replaced by input {index} in slot {signal.slot!r}"
                    plan.settle(slots[key], OutcomeKind.SUPERSEDED, detail)
                slots[key] = entry
            else:
                by_symbol.setdefault(signal.symbol, {}).setdefault(strategy, []).append(entry)
        for entry in slots.values():
            plan.send(entry)
        decide = {
            "priority": self._priority,
            "majority": self._majority,
            "weighted": self._weighted,
            "unanimous": self._unanimous,
        }[self.mode]
        for symbol, strategies in by_symbol.items():
            voters = {strategy: _net(entries, plan) for strategy, entries in strategies.items()}
            decide(symbol, {strategy: entries for strategy, entries in voters.items() if entries}, plan)
        return plan.result()

    # --- modes: each gets one symbol's strategies, every one with signals on one side only --------

    @staticmethod
    def _priority(symbol: str, voters: dict[str, list[_Entry]], plan: _Plan) -> None:
        for entries in voters.values():
            for entry in entries:
                plan.send(entry)

    @staticmethod
    def _majority(symbol: str, voters: dict[str, list[_Entry]], plan: _Plan) -> None:
        buyers, sellers = _sides(voters)
        tally = f"{len(buyers)} strateg{'y' if len(buyers) == 1 else 'ies'} buy vs {len(sellers)} sell on {symbol}"
        if len(buyers) == len(sellers):
            _settle_all(voters, plan, OutcomeKind.NO_CONSENSUS, f"tie: {tally}")
            return
        winners, losers = (buyers, sellers) if len(buyers) > len(sellers) else (sellers, buyers)
        _send_lead(winners, plan)
        _settle_all(losers, plan, OutcomeKind.OUTVOTED, f"outvoted: {tally}")

    def _weighted(self, symbol: str, voters: dict[str, list[_Entry]], plan: _Plan) -> None:
        votes = {
            strategy: self.weight(strategy) * _lead(entries).signal.confidence for strategy, entries in voters.items()
        }
        buyers, sellers = _sides(voters)
        score = sum(votes[s] for s in buyers) - sum(votes[s] for s in sellers)
        # A score at the threshold, give or take float noise (0.75 - 0.55 against 0.2), goes.
        if score == 0.0 or abs(score) * (1.0 + _EPS) < self._threshold:
            detail = f"weighted score {score:+.4g} on {symbol}, needs |score| >= {self._threshold:g} and not 0"
            _settle_all(voters, plan, OutcomeKind.NO_CONSENSUS, detail)
            return
        winners, losers = (buyers, sellers) if score > 0.0 else (sellers, buyers)
        total = sum(votes[s] for s in winners)
        mean = sum(votes[s] * sum(e.signal.quantity for e in winners[s]) for s in winners) / total
        lead = _send_lead(winners, plan, mean)
        lead.detail = f"weighted score {score:+.4g}; quantity {mean:g} = weighted mean of the winning side"
        _settle_all(losers, plan, OutcomeKind.OUTVOTED, f"outvoted: weighted score {score:+.4g} on {symbol}")

    @staticmethod
    def _unanimous(symbol: str, voters: dict[str, list[_Entry]], plan: _Plan) -> None:
        buyers, sellers = _sides(voters)
        if buyers and sellers:
            detail = f"strategies disagree on {symbol}: {len(buyers)} buy vs {len(sellers)} sell"
            _settle_all(voters, plan, OutcomeKind.NO_CONSENSUS, detail)
            return
        _send_lead(voters, plan)


def _sides(voters: dict[str, list[_Entry]]) -> tuple[dict[str, list[_Entry]], dict[str, list[_Entry]]]:
    buyers = {strategy: entries for strategy, entries in voters.items() if entries[0].signal.side is Side.BUY}
    sellers = {strategy: entries for strategy, entries in voters.items() if strategy not in buyers}
    return buyers, sellers


def _settle_all(voters: dict[str, list[_Entry]], plan: _Plan, kind: OutcomeKind, detail: str) -> None:
    for entries in voters.values():
        for entry in entries:
            plan.settle(entry, kind, detail)


def _send_lead(winners: dict[str, list[_Entry]], plan: _Plan, quantity: float | None = None) -> _Entry:
    """Send the winning side's lead signal (with ``quantity`` if given); the others merge into it."""
    members = [entry for entries in winners.values() for entry in entries]
    lead = _lead(members)
    signal = lead.signal
    if quantity is not None and quantity != signal.quantity:
        signal = replace(signal, quantity=quantity)
    plan.send(lead, signal, members)
    return lead


class SignalQueue:
    """Signals waiting for aggregation, bounded: when full, the *new* signal is dropped and counted.

    Dropping the newest keeps what is queued in arrival order and costs nothing to decide; the
    counts by (strategy, symbol) feed ``signals_dropped_total`` and the length ``signal_queue_size``.
    Pure and synchronous: the listener ``put``s, the aggregation loop ``take_batch``es; an asyncio
    shell pairs it with an ``Event`` to wake the loop.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"signal queue capacity: must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[tuple[str, Signal]] = deque()
        self._dropped: dict[tuple[str, str], int] = {}
        self.dropped_total = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def dropped(self) -> Mapping[tuple[str, str], int]:
        """Signals dropped because the queue was full, by (strategy, symbol); a live read-only view."""
        return MappingProxyType(self._dropped)

    def put(self, strategy: str, signal: Signal) -> bool:
        """Queue ``signal``; False (and counted) when the queue is full."""
        if len(self._items) >= self.capacity:
            key = (strategy, signal.symbol)
            self._dropped[key] = self._dropped.get(key, 0) + 1
            self.dropped_total += 1
            return False
        self._items.append((strategy, signal))
        return True

    def take_batch(self, max_items: int) -> list[tuple[str, Signal]]:
        """Up to ``max_items`` of the oldest signals, in arrival order."""
        items = self._items
        return [items.popleft() for _ in range(min(max_items, len(items)))]

"""The venue's position messages judged against the ledger's positions (pure, clock injected).

The ledger is each strategy's truth for its own positions (ARCHITECTURE rule 7): the strategy is
told the ledger's position after every fill, in every mode, and a position the venue publishes
(NATS ``nats.positionSubject``) is only compared with it, never handed on. A venue that restarted
with in-memory state publishes positions that start from zero again; those are what this check
exists to report.

When a disagreement counts. A fill and the venue's position after it travel on two subjects, and
on core NATS the host handles each subject in a task of its own: the position may be handled a
moment before the fill that explains it, or after that fill *and* the next ones of a burst.
Comparing on arrival would report those as mismatches in every normal live run. So each venue
message is judged against the positions the ledger held within ``settle_s`` of its arrival,
before and after:

- it **agrees** when the ledger held the same quantity (within ``tolerance``) at its arrival or at
  any moment of the ``settle_s`` before it (its fill was handled first), or takes that quantity
  within ``settle_s`` after it (its fill was handled second; ``ledger`` is called as each fill is
  recorded);
- it **disagrees** when ``settle_s`` has passed without that: the fills of that moment have been
  recorded and the ledger never held what the venue says. ``expire`` (called periodically by the
  shell) judges those.

The window only has to cover how far the handling of the two subjects drifts apart: the messages
of one read from the socket (0.3-0.5 ms between a fill and its position in the live tests here;
JetStream delivers both subjects through one consumer in publish order, so there nothing drifts).
It is kept short, 0.25 s by default, because a venue figure the ledger held within the window
agrees: a venue behind or ahead of the ledger by fewer fills than the strategy makes in
``settle_s`` (2 at 10 fills a second) is not reported, nor is a stale figure that a ledger swinging
back and forth (buying and selling the same size) passes through; the next message that matches
nothing is. A venue restarted from zero under a position built by more fills than that is reported
from its first message on.

Per strategy and symbol, the newest judged message decides whether the pair is in mismatch *now*
(``current``): a disagreement makes it so, a later message that agrees clears it.

Reporting. Every judged disagreement is returned as a ``Mismatch`` for the shell to count; its
``log`` flag allows one log line per pair every ``log_every_s`` (``unlogged`` says how many went
unlogged since the last one). A pair that stops disagreeing is returned as ``Cleared``.

Bounds. At most ``max_pairs`` strategy/symbol pairs are kept (the least recently touched goes
first: a peer naming symbols at random cannot grow the host) and at most ``max_pending`` messages
wait per pair (past that the oldest is judged at once). Not thread-safe: the event loop only.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass

from host.clock import Clocks

__all__ = ["Cleared", "Disagreement", "Judgement", "Mismatch", "PairStatus", "PositionCheck"]

_NEVER = -math.inf


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A venue position the ledger never held around its arrival."""

    strategy: str
    symbol: str
    ledger: float  # the ledger's quantity when judged, after the fills of that moment
    venue: float  # what the venue's message said
    at_ns: int  # when the message arrived (the engine's clock, epoch ns)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One venue message judged to disagree."""

    disagreement: Disagreement
    current: bool  # it is its pair's newest judged message: the pair disagrees now
    log: bool  # the pair's log line is due (rate limited)
    unlogged: int  # disagreements of the pair not logged since its last line


@dataclass(frozen=True, slots=True)
class Cleared:
    """A pair in mismatch whose newest message agrees with the ledger again."""

    strategy: str
    symbol: str
    quantity: float  # what both say


Judgement = Mismatch | Cleared


@dataclass(frozen=True, slots=True)
class PairStatus:
    """A pair that has disagreed at least once, for /status."""

    strategy: str
    symbol: str
    disagreements: int
    current: bool
    latest: Disagreement


@dataclass(frozen=True, slots=True)
class _Message:
    seq: int  # arrival number within its pair
    venue: float
    at: float  # monotonic arrival
    at_ns: int


class _Pair:
    __slots__ = ("arrived", "disagreements", "history", "judged", "latest", "mismatch", "next_log", "pending",
                 "unlogged")  # fmt: skip

    def __init__(self, since: float, quantity: float) -> None:
        self.history: deque[tuple[float, float]] = deque([(since, quantity)])  # (since, ledger quantity)
        self.pending: deque[_Message] = deque()
        self.arrived = 0
        self.judged = 0  # seq of the newest judged message
        self.mismatch: Disagreement | None = None
        self.latest: Disagreement | None = None
        self.disagreements = 0
        self.next_log = _NEVER
        self.unlogged = 0

    @property
    def ledger(self) -> float:
        return self.history[-1][1]


class PositionCheck:
    """Venue position messages against the ledger's positions, per strategy and symbol."""

    def __init__(
        self, clock: Clocks, *, settle_s: float = 0.25, log_every_s: float = 10.0, tolerance: float = 1e-9,
        max_pairs: int = 10_000, max_pending: int = 1_000,
    ) -> None:  # fmt: skip
        if settle_s <= 0 or log_every_s < 0 or tolerance < 0 or max_pairs < 1 or max_pending < 1:
            raise ValueError("PositionCheck: needs settle_s > 0, log_every_s >= 0, tolerance >= 0, max_* >= 1")
        self.settle_s = settle_s
        self.log_every_s = log_every_s
        self.tolerance = tolerance
        self.max_pairs = max_pairs
        self.max_pending = max_pending
        self._clock = clock
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()
        self._waiting: set[tuple[str, str]] = set()  # pairs with pending messages
        self.checked = 0  # venue messages seen
        self.agreed = 0
        self.disagreed = 0
        self.current = 0  # pairs in mismatch now

    # ---------------------------------------------------------------- events

    def ledger(self, strategy: str, symbol: str, quantity: float) -> list[Judgement]:
        """The ledger's position after a fill was recorded; messages it explains agree."""
        now = self._clock.monotonic()
        key = (strategy, symbol)
        pair = self._touch(key, now, quantity)
        if pair.ledger != quantity:
            pair.history.append((now, quantity))
        self._prune(pair, now)
        explained = [m for m in pair.pending if now - m.at <= self.settle_s and self._same(m.venue, quantity)]
        judged: list[Judgement] = []
        for message in explained:
            pair.pending.remove(message)
            judged += self._agreed(key, pair, message)
        if not pair.pending:
            self._waiting.discard(key)
        return judged

    def venue(self, strategy: str, symbol: str, quantity: float, ledger: float) -> list[Judgement]:
        """A venue position message; ``ledger`` is the ledger's quantity for the pair now."""
        now = self._clock.monotonic()
        key = (strategy, symbol)
        pair = self._touch(key, _NEVER, ledger)
        if pair.ledger != ledger:  # moved without a ``ledger`` call (a fill recorded under no strategy)
            pair.history.append((now, ledger))
        self._prune(pair, now)
        self.checked += 1
        pair.arrived += 1
        message = _Message(pair.arrived, quantity, now, self._clock.now_ns())
        if any(self._same(held, quantity) for _, held in pair.history):
            return self._agreed(key, pair, message)
        pair.pending.append(message)
        self._waiting.add(key)
        if len(pair.pending) > self.max_pending:
            return self._disagreed(key, pair, pair.pending.popleft(), now)
        return []

    def expire(self) -> list[Judgement]:
        """Judge every message that waited ``settle_s`` unexplained: each one disagrees."""
        now = self._clock.monotonic()
        judged: list[Judgement] = []
        for key in sorted(self._waiting):
            pair = self._pairs[key]
            while pair.pending and now - pair.pending[0].at >= self.settle_s:
                judged += self._disagreed(key, pair, pair.pending.popleft(), now)
            if not pair.pending:
                self._waiting.discard(key)
        return judged

    # ---------------------------------------------------------------- reading

    @property
    def pending(self) -> int:
        """Venue messages waiting to be judged."""
        return sum(len(self._pairs[key].pending) for key in self._waiting)

    def pairs(self) -> list[PairStatus]:
        """Every pair that has disagreed, sorted by strategy and symbol."""
        return [
            PairStatus(strategy, symbol, pair.disagreements, pair.mismatch is not None, pair.latest)
            for (strategy, symbol), pair in sorted(self._pairs.items())
            if pair.latest is not None
        ]

    # ---------------------------------------------------------------- judging

    def _agreed(self, key: tuple[str, str], pair: _Pair, message: _Message) -> list[Judgement]:
        self.agreed += 1
        if message.seq <= pair.judged:
            return []  # a newer message was judged already and decides the pair
        pair.judged = message.seq
        if pair.mismatch is None:
            return []
        pair.mismatch = None
        self.current -= 1
        return [Cleared(key[0], key[1], message.venue)]

    def _disagreed(self, key: tuple[str, str], pair: _Pair, message: _Message, now: float) -> list[Judgement]:
        self.disagreed += 1
        pair.disagreements += 1
        found = Disagreement(key[0], key[1], pair.ledger, message.venue, message.at_ns)
        pair.latest = found
        current = message.seq > pair.judged
        if current:
            pair.judged = message.seq
            self.current += pair.mismatch is None
            pair.mismatch = found
        log, unlogged = now >= pair.next_log, 0
        if log:
            unlogged, pair.unlogged, pair.next_log = pair.unlogged, 0, now + self.log_every_s
        else:
            pair.unlogged += 1
        return [Mismatch(found, current, log, unlogged)]

    # ---------------------------------------------------------------- bookkeeping

    def _touch(self, key: tuple[str, str], since: float, quantity: float) -> _Pair:
        pair = self._pairs.get(key)
        if pair is not None:
            self._pairs.move_to_end(key)
            return pair
        pair = self._pairs[key] = _Pair(since, quantity)
        if len(self._pairs) > self.max_pairs:
            evicted_key, evicted = self._pairs.popitem(last=False)
            self._waiting.discard(evicted_key)
            self.current -= evicted.mismatch is not None
        return pair

    def _prune(self, pair: _Pair, now: float) -> None:
        """Keep the quantities held within ``settle_s`` before now: later ones and the one held then."""
        history = pair.history
        while len(history) > 1 and history[1][0] <= now - self.settle_s:
            history.popleft()

    def _same(self, a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=self.tolerance, abs_tol=self.tolerance)

"""Health of the market data stream per symbol: sequence gaps, out-of-order updates, staleness.

Model. ``FeedHealth`` is a pure state machine owned by the market data feed and called on the event
loop for every accepted message (not thread-safe; it needs no lock there). ``observe(event)`` records
the update and returns a ``Gap`` when the symbol's sequence did not follow on; the risk manager asks
``is_stale(symbol)`` before it lets a new order through. Time is read only through the injected
``Clock`` (monotonic, the host's receive time, never the message's own timestamp, which may be
recorded data hours old); nothing happens between calls, so there are no timers.

Sequences are per symbol and stream. The seed numbers one stream per symbol (tick, trade and book
interleaved) and so do the recorded files: the default stream ``""``. A publisher that numbers its
message families apart (b25: order-book update ids, trade ids; ``host.feeds.formats``) names a
stream per family, so one family's numbers are never compared with another's. Per symbol and
stream:

- sequence 0 means "not numbered" and is never checked (the Go service's zero value; b25's ticker);
- the first numbered update sets the baseline: where a stream starts is not a gap;
- ``Numbering.CONSECUTIVE`` (the seed, b25 trades): ``sequence > last + 1`` is a gap, counted once,
  with ``sequence - last - 1`` updates missing;
- ``Numbering.RISING`` (b25 book update ids, which rise with every depth update the publisher
  applied but by any step per message it publishes): any step ahead follows on, so no gap is ever
  counted; only a step back is irregular;
- ``sequence <= last`` is out of order or a duplicate: counted, and ``last`` stays where it was, so
  the update that does follow on is not counted as a gap as well;
- ``sequence == 1`` after a higher one is the publisher starting over (a restart, a replay looping):
  counted as a reset and the new stream becomes the baseline, instead of every later update being
  reported out of order until the old high-water mark is passed.

A symbol is stale when nothing arrived for it for ``stale_after_s``; a symbol never seen at all has
no price to trade on, so it is stale too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from host.clock import Clock
from sdk.events import MarketEvent

__all__ = ["FeedHealth", "Gap", "Numbering", "SymbolHealth"]


class Numbering(Enum):
    """How a stream numbers its updates, so what counts as a gap (see the module docstring)."""

    CONSECUTIVE = "consecutive"  # each update is the last + 1: a jump ahead is updates missing
    RISING = "rising"  # numbers only rise, by any step: a jump ahead is no gap, a step back is


@dataclass(frozen=True, slots=True)
class Gap:
    """A sequence that did not follow on: ``received`` came after ``last``."""

    symbol: str
    last: int  # the highest sequence seen before
    received: int  # the sequence that arrived
    stream: str = ""  # which of the symbol's numbered streams ("" the seed's one)

    @property
    def missing(self) -> int:
        """Updates skipped between the two; 0 for one out of order or repeated."""
        return max(self.received - self.last - 1, 0)

    @property
    def out_of_order(self) -> bool:
        """An update at or below the last one seen (late, or a duplicate)."""
        return self.received <= self.last


@dataclass(frozen=True, slots=True)
class SymbolHealth:
    """What ``status()`` reports for one symbol."""

    symbol: str
    last_sequence: int  # highest since the last reset, in the stream numbered last; 0 = none numbered yet
    updates: int  # messages observed
    gaps: int  # times the sequence jumped ahead
    missing: int  # updates skipped over all those jumps
    out_of_order: int  # updates at or below the last sequence (late or duplicated)
    resets: int  # times the sequence started over at 1
    age_s: float  # since the last update was received
    stale: bool


class _Symbol:
    __slots__ = ("gaps", "last_seen", "last_sequence", "missing", "out_of_order", "resets", "sequences", "updates")

    def __init__(self, now: float) -> None:
        self.last_seen = now
        self.last_sequence = 0
        self.sequences: dict[str, int] = {}  # stream -> highest sequence since its last reset
        self.updates = 0
        self.gaps = 0
        self.missing = 0
        self.out_of_order = 0
        self.resets = 0


class FeedHealth:
    """Per-symbol sequence and freshness bookkeeping for one market data stream."""

    def __init__(self, stale_after_s: float, clock: Clock) -> None:
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s: must be > 0, got {stale_after_s!r}")
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._symbols: dict[str, _Symbol] = {}

    def observe(self, event: MarketEvent, stream: str = "", numbering: Numbering = Numbering.CONSECUTIVE) -> Gap | None:
        """Record one update of ``stream``; a ``Gap`` when its sequence jumped ahead or went back, else None."""
        now = self._clock.monotonic()
        state = self._symbols.get(event.symbol)
        if state is None:
            state = self._symbols[event.symbol] = _Symbol(now)
        state.last_seen = now
        state.updates += 1
        sequence = event.sequence
        if sequence == 0:
            return None
        last = state.sequences.get(stream, 0)
        if sequence == last + 1 or (sequence > last and numbering is Numbering.RISING):
            state.sequences[stream] = state.last_sequence = sequence
            return None
        return self._irregular(event.symbol, state, stream, sequence, last)

    def _irregular(self, symbol: str, state: _Symbol, stream: str, sequence: int, last: int) -> Gap | None:
        if last == 0 or (sequence == 1 and last > 1):
            if last:
                state.resets += 1
            state.sequences[stream] = state.last_sequence = sequence  # the baseline
            return None
        gap = Gap(symbol, last, sequence, stream)
        if gap.out_of_order:
            state.out_of_order += 1
        else:
            state.gaps += 1
            state.missing += gap.missing
            state.sequences[stream] = state.last_sequence = sequence
        return gap

    def is_stale(self, symbol: str) -> bool:
        """No update for ``symbol`` within ``stale_after_s`` (or none ever)."""
        state = self._symbols.get(symbol)
        return state is None or self._clock.monotonic() - state.last_seen >= self.stale_after_s

    def stale_symbols(self) -> list[str]:
        """Symbols seen before that have gone quiet for ``stale_after_s``, sorted."""
        now = self._clock.monotonic()
        return sorted(s for s, state in self._symbols.items() if now - state.last_seen >= self.stale_after_s)

    def status(self) -> list[SymbolHealth]:
        """Every symbol seen, sorted by name."""
        now = self._clock.monotonic()
        return [self._status(symbol, self._symbols[symbol], now) for symbol in sorted(self._symbols)]

    def _status(self, symbol: str, state: _Symbol, now: float) -> SymbolHealth:
        age = now - state.last_seen
        return SymbolHealth(
            symbol=symbol, last_sequence=state.last_sequence, updates=state.updates, gaps=state.gaps,
            missing=state.missing, out_of_order=state.out_of_order, resets=state.resets, age_s=age,
            stale=age >= self.stale_after_s,
        )  # fmt: skip

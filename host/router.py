"""Fan-out of market data to runners: who wants what (``Router``), and what waits for each (``Outbox``).

Model: the host's feeds call ``Router.targets(symbol, kind)`` for every market data event and put
the serialized event into the ``Outbox`` of each runner it names. A runner's session has at most
one batch in flight; whatever arrives meanwhile waits in that runner's outbox, and when the
result comes back the session sends ``take()`` as the next batch. So batches form naturally: a
fast runner gets one event per batch, a slow one gets everything that piled up, and a slow
runner never holds up another, because each has its own outbox.

Conflation keeps a lagging runner's backlog bounded and fresh without costing a healthy runner a
single tick. Market data is keyed by ``(symbol, kind)``. While fewer than ``capacity`` market items
wait, every put is appended, so a runner that keeps up sees every tick, in order, even when two
ticks of one symbol arrive during one round trip. A put that finds ``capacity`` market items
waiting switches the outbox into conflating mode: it first compacts the backlog to the latest
waiting item per key; from then on a newer item for a waiting key replaces the older one and
moves to the newer position (the runner sees the latest state, in the order it became latest),
and a new key arriving while ``capacity`` market items wait drops the oldest market item.
Conflating mode lasts until a ``take`` empties the outbox, that is until the runner has caught up.
Reliable items (fills, positions, timers, order updates) are never conflated or dropped and do not count against
``capacity``; they keep their place among the market items, through compaction too. Every
replacement and drop is counted. Each put is O(1) except the compaction, which is O(``capacity``)
once per lag episode and is paid for by the ``capacity`` appends that preceded it.

Everything here is pure and synchronous (no asyncio, no clock, no I/O): the single event-loop
thread owns these objects, and the session shell around them does the awaiting. Items are
opaque ``bytes``; the host joins a batch with ``b"".join``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from sdk import Book, Candle, Tick, Trade

__all__ = ["MARKET_KINDS", "Outbox", "Router", "Subscription", "union"]

MARKET_KINDS: frozenset[str] = frozenset(event.kind for event in (Tick, Trade, Book, Candle))

# Symbols come from the feed, so a feed full of junk symbols must not grow the targets cache
# without bound; past this many entries the cache starts over (it refills from the hot keys).
_CACHE_LIMIT = 65_536
_RELIABLE: Hashable = object()  # the key of a reliable item in an outbox's plain list (no market key is it)


class Outbox:
    """One runner's pending events in send order; market data is conflated per key while it lags.

    Two representations, one per mode. Until conflating mode starts, waiting items are a plain
    list of ``(key, item)`` pairs (``_RELIABLE`` for the key of a reliable item) and a count of the
    market ones: a put is an append, a take a slice, which is what a runner that keeps up costs on
    every tick (3 puts a tick to 3 runners at 50k ticks/s). The put that finds ``capacity`` market
    items waiting moves them into the indexed form below (``_index``, O(``capacity``) once per lag
    episode, like the compaction that follows) and a take that empties the outbox ends it.

    In conflating mode every waiting item has a fresh ``object()`` token. ``_items`` maps token -> item in send order;
    ``_market`` maps the market tokens to their ``(symbol, kind)`` key in the same order, so the
    oldest market item is found in O(1) even when many reliable items wait in front of it; and
    ``_latest`` maps each key with a waiting market item to the token of the newest one. The two
    ordered maps are ``OrderedDict``s because they are popped from the front, which a plain dict
    does in O(deleted entries), not O(1). In conflating mode each key has at most one waiting
    market item, so ``_latest`` then names all of them.

    Counters (read them, never set them): ``enqueued`` items accepted by either put,
    ``reliable`` those by ``put_reliable``, ``conflated`` market items replaced by a newer one
    for the same key (at compaction or after), ``dropped`` market items pushed out at capacity,
    ``taken`` items handed out by ``take``, ``high_water`` the largest ``len`` seen. Always
    ``enqueued == taken + conflated + dropped + len(outbox)``.
    """

    __slots__ = (
        "_capacity",
        "_conflating",
        "_items",
        "_latest",
        "_market",
        "_plain",
        "_plain_market",
        "conflated",
        "dropped",
        "enqueued",
        "high_water",
        "reliable",
        "taken",
    )

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"Outbox capacity: must be >= 1, got {capacity}")
        self._capacity = capacity
        self._conflating = False
        self._items: OrderedDict[object, bytes] = OrderedDict()
        self._market: OrderedDict[object, Hashable] = OrderedDict()
        self._latest: dict[Hashable, object] = {}
        self._plain: list[tuple[Hashable, bytes]] = []
        self._plain_market = 0
        self.enqueued = 0
        self.reliable = 0
        self.conflated = 0
        self.dropped = 0
        self.taken = 0
        self.high_water = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def conflating(self) -> bool:
        """True from the put that found ``capacity`` market items waiting until a take empties the outbox."""
        return self._conflating

    def put_market(self, key: Hashable, item: bytes) -> None:
        """Queue market data under ``key`` = ``(symbol, kind)``: appended, or conflated while lagging."""
        self.enqueued += 1
        if not self._conflating:
            if self._plain_market < self._capacity:
                plain = self._plain
                plain.append((key, item))
                self._plain_market += 1
                if len(plain) > self.high_water:
                    self.high_water = len(plain)
                return
            self._index()
        self._make_room(key)
        token = object()
        items = self._items
        items[token] = item
        self._market[token] = key
        self._latest[key] = token
        if len(items) > self.high_water:
            self.high_water = len(items)

    def _index(self) -> None:
        """Move the plain list's items into the token maps (conflating mode is about to start)."""
        items, market, latest = self._items, self._market, self._latest
        for key, item in self._plain:
            token = object()
            items[token] = item
            if key is not _RELIABLE:
                market[token] = key
                latest[key] = token
        self._plain = []
        self._plain_market = 0

    def _make_room(self, key: Hashable) -> None:
        """Conflating mode: remove the waiting item a new one for ``key`` replaces or pushes out."""
        if not self._conflating:
            self._conflating = True
            self._compact()
        stale = self._latest.get(key)
        if stale is not None:
            del self._items[stale]
            del self._market[stale]
            self.conflated += 1
        elif len(self._market) >= self._capacity:
            oldest, oldest_key = self._market.popitem(last=False)
            del self._items[oldest]
            del self._latest[oldest_key]  # one market item per key in this mode: it was the latest
            self.dropped += 1

    def _compact(self) -> None:
        """Keep only the latest waiting market item per key; reliable items stay where they are."""
        latest = self._latest
        stale = [token for token, key in self._market.items() if latest[key] is not token]
        for token in stale:
            del self._items[token]
            del self._market[token]
        self.conflated += len(stale)

    def put_reliable(self, item: bytes) -> None:
        """Queue a fill, position, timer or order update: never conflated, never dropped, not bounded by capacity."""
        self.enqueued += 1
        self.reliable += 1
        if not self._conflating:
            plain = self._plain
            plain.append((_RELIABLE, item))
            if len(plain) > self.high_water:
                self.high_water = len(plain)
            return
        items = self._items
        items[object()] = item
        if len(items) > self.high_water:
            self.high_water = len(items)

    def take(self, max_items: int | None = None) -> list[bytes]:
        """Remove and return the next batch in send order: everything, or at most ``max_items``.

        A take that empties the outbox ends conflating mode: the runner has caught up.
        """
        if max_items is not None and max_items < 1:
            raise ValueError(f"Outbox.take max_items: must be >= 1 or None, got {max_items}")
        if not self._conflating:
            return self._take_plain(max_items)
        items = self._items
        if max_items is None or max_items >= len(items):
            batch = list(items.values())
            items.clear()
            self._market.clear()
            self._latest.clear()
            self._conflating = False
        else:
            batch = self._take_oldest(max_items)
        self.taken += len(batch)
        return batch

    def _take_plain(self, max_items: int | None) -> list[bytes]:
        plain = self._plain
        if max_items is None or max_items >= len(plain):
            taken, self._plain, self._plain_market = plain, [], 0
        else:
            taken = plain[:max_items]
            del plain[:max_items]
            self._plain_market -= sum(1 for key, _ in taken if key is not _RELIABLE)
        self.taken += len(taken)
        return [item for _, item in taken]

    def _take_oldest(self, count: int) -> list[bytes]:
        pop_oldest = self._items.popitem
        unindex = self._market.pop
        latest = self._latest
        batch: list[bytes] = []
        for _ in range(count):
            token, item = pop_oldest(last=False)
            key = unindex(token, None)
            # Items leave oldest first, so when a key's latest leaves none of that key waits. A
            # reliable token is in no index and never matches (even if None were a market key).
            if latest.get(key) is token:
                del latest[key]
            batch.append(item)
        return batch

    def __len__(self) -> int:
        return len(self._plain) + len(self._items)  # one of them is empty (see the modes above)

    @property
    def pending_market(self) -> int:
        return self._plain_market + len(self._market)

    @property
    def pending_reliable(self) -> int:
        return len(self) - self.pending_market


@dataclass(frozen=True, slots=True)
class Subscription:
    """The market data one runner takes: ``symbols`` x ``types``, where an empty set means all."""

    symbols: frozenset[str]
    types: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("symbols", "types"):
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                raise TypeError(f"Subscription.{name}: expected a frozenset of str, got {type(value).__name__}")
        unknown = self.types - MARKET_KINDS
        if unknown:
            raise ValueError(
                f"Subscription.types: unknown market data type(s) {sorted(unknown)}, "
                f"expected some of {sorted(MARKET_KINDS)}"
            )

    def wants(self, symbol: str, kind: str) -> bool:
        return (not self.symbols or symbol in self.symbols) and (not self.types or kind in self.types)


def union(subscriptions: Iterable[Subscription]) -> Subscription:
    """What a runner hosting several strategies takes: any strategy's wish, with empty meaning all.

    The result is one symbols x types product, so it can be wider than the parts (A ticks and
    B trades give A and B, ticks and trades); the runner still filters per strategy, so the
    extra events only cost bandwidth. An empty iterable is an error: "all" would be wrong and
    there is no "nothing".
    """
    subs = list(subscriptions)
    if not subs:
        raise ValueError("union: needs at least one Subscription (an empty one means all market data)")
    symbols = frozenset() if any(not s.symbols for s in subs) else frozenset().union(*(s.symbols for s in subs))
    types = frozenset() if any(not s.types for s in subs) else frozenset().union(*(s.types for s in subs))
    return Subscription(symbols=symbols, types=types)


class Router:
    """Runner id -> Subscription, answering "who takes this (symbol, kind)?" from a cache.

    ``targets`` runs once per market data event, so its common path is one dict lookup; the
    cache is rebuilt lazily after any ``set`` or ``remove``. Runner ids come back in the order
    they were first ``set`` (replacing a subscription keeps the runner's place).
    """

    __slots__ = ("_cache", "_subs")

    def __init__(self) -> None:
        self._subs: dict[str, Subscription] = {}
        self._cache: dict[tuple[str, str], tuple[str, ...]] = {}

    def set(self, runner_id: str, subscription: Subscription) -> None:
        """Add a runner, or replace its subscription."""
        self._subs[runner_id] = subscription
        self._cache.clear()

    def remove(self, runner_id: str) -> None:
        """Stop routing to a runner; removing one that is not there does nothing (teardown may repeat)."""
        if self._subs.pop(runner_id, None) is not None:
            self._cache.clear()

    def targets(self, symbol: str, kind: str) -> tuple[str, ...]:
        """The runners that take ``kind`` market data for ``symbol``; ValueError for an unknown kind."""
        try:
            return self._cache[(symbol, kind)]
        except KeyError:
            return self._miss(symbol, kind)

    def _miss(self, symbol: str, kind: str) -> tuple[str, ...]:
        if kind not in MARKET_KINDS:
            raise ValueError(f"Router.targets kind: expected one of {sorted(MARKET_KINDS)}, got {kind!r}")
        found = tuple(rid for rid, sub in self._subs.items() if sub.wants(symbol, kind))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(symbol, kind)] = found
        return found

    def runners(self) -> tuple[str, ...]:
        return tuple(self._subs)

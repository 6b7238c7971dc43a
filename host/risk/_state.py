"""The risk manager's own memory: sliding rate windows, client order ids seen, today's counts.

All three are recomputed from the time they are handed on each call (no timers): a rate window
drops approvals older than its span when asked, and the daily counts switch to a new UTC day the
first time they are used on it. Not thread-safe; the risk manager runs on the event loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from host.risk.decisions import Rule
from host.risk.seams import CounterStore

__all__ = ["RateWindow", "SeenIds", "DailyCounts", "NS_PER_DAY", "APPROVED_KEY", "SENT_KEY"]

NS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH = date(1970, 1, 1)


class RateWindow:
    """Approval times within the last ``span_s`` seconds of the monotonic clock.

    An approval at ``t`` counts while ``now - t < span_s``: it leaves the window exactly ``span_s``
    later, so ``limit`` approvals in a burst allow the next one ``span_s`` after the first.
    """

    __slots__ = ("_times", "limit", "span_s")

    def __init__(self, limit: int, span_s: float) -> None:
        self.limit = limit
        self.span_s = span_s
        self._times: deque[float] = deque()

    def count(self, now: float) -> int:
        times, edge = self._times, now - self.span_s
        while times and times[0] <= edge:
            times.popleft()
        return len(times)

    def add(self, now: float) -> None:
        self._times.append(now)


class SeenIds:
    """The last ``capacity`` client order ids checked, oldest forgotten first."""

    __slots__ = ("_ids", "_order", "capacity")

    def __init__(self, capacity: int, initial: Iterable[str] = ()) -> None:
        if capacity < 1:
            raise ValueError(f"SeenIds capacity: must be >= 1, got {capacity}")
        self.capacity = capacity
        self._ids: set[str] = set()
        self._order: deque[str] = deque()
        for client_order_id in initial:
            self.add(client_order_id)

    def __contains__(self, client_order_id: str) -> bool:
        return client_order_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, client_order_id: str) -> None:
        if client_order_id in self._ids:
            return
        self._ids.add(client_order_id)
        self._order.append(client_order_id)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())


APPROVED_KEY = "approved"
SENT_KEY = "sent"
_NAMES = (APPROVED_KEY, SENT_KEY, *(f"rejected.{rule.value}" for rule in Rule))


class DailyCounts:
    """Today's counters, mirrored to a ``CounterStore`` under keys that carry the UTC day.

    Keys read ``risk.<YYYY-MM-DD>.<name>`` with names ``approved``, ``sent`` and
    ``rejected.<rule>``. A new day starts from what the store holds for it (zero on a fresh day,
    the counts so far after a restart); past days stay in the store as history.
    """

    __slots__ = ("_counts", "_day", "_index", "_prefix", "_store")

    def __init__(self, store: CounterStore) -> None:
        self._store = store
        self._index = -1
        self._day = _EPOCH
        self._prefix = ""
        self._counts: dict[str, int] = {}

    def today(self, now_ns: int) -> date:
        """The UTC day of ``now_ns``, switching the counters over when it is a new one."""
        index = now_ns // NS_PER_DAY
        if index != self._index:
            self._switch(index)
        return self._day

    def add(self, now_ns: int, name: str) -> None:
        self.today(now_ns)
        value = self._counts.get(name, 0) + 1
        self._counts[name] = value
        self._store.set(self._prefix + name, value)

    def counts(self, now_ns: int) -> Mapping[str, int]:
        self.today(now_ns)
        return dict(self._counts)

    def _switch(self, index: int) -> None:
        self._index = index
        self._day = _EPOCH + timedelta(days=index)
        self._prefix = f"risk.{self._day.isoformat()}."
        stored = ((name, self._store.get(self._prefix + name)) for name in _NAMES)
        self._counts = {name: value for name, value in stored if value}

"""Order updates fanned out to stream subscribers, each with a bounded queue of its own.

Model. One event loop. ``publish(item, user_id, symbol)`` is called synchronously by whoever
changed an order (the paper venue, inside an RPC or a market event) and never waits: it appends the
item to the queue of every subscriber whose filter takes it. Each subscriber's stream handler
takes items off its queue in order (``next()``) and writes them to its client.

Backpressure. A subscriber whose queue already holds ``queue_size`` items has fallen behind (its
client reads slower than orders change, or not at all): it is cut off. Its queue is emptied at
once, so its memory is freed however far behind it was; it is removed from the hub; and
``next()`` answers None with ``cut`` set, or, when its handler is blocked writing to a client that
does not read, the handler is cancelled (``cut`` set) so that it can end the call. Memory is
therefore at most ``queue_size`` items per subscriber, never a growing backlog. Because
``publish`` never waits, a burst of more than ``queue_size`` updates from one synchronous event also
cuts a subscriber that reads promptly.

Filters. ``user_id`` "" takes every user's orders; ``symbols`` empty (or holding "") takes every
symbol; symbols compare case-insensitively.

Ending. ``close()`` ends every stream cleanly: each subscriber gets None after what it has queued
(``cut`` unset). A handler blocked in a write is not woken by it; the server's stop grace ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["HubStats", "Subscriber", "UpdateHub"]

T = TypeVar("T")


@dataclass(slots=True)
class HubStats:
    subscribed: int = 0  # subscribers ever
    cut: int = 0  # subscribers cut off for falling behind
    delivered: int = 0  # items queued for a subscriber


class Subscriber(Generic[T]):
    """One stream: its filter, its queue, and whether it was cut off."""

    def __init__(self, user_id: str, symbols: Iterable[str]) -> None:
        wanted = frozenset(symbol.upper() for symbol in symbols)
        self.user_id = user_id
        self.symbols = frozenset() if "" in wanted else wanted
        self.cut = False
        self.backlog = 0  # how many items were queued when it was cut
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        self._writer: asyncio.Task[object] | None = None

    def wants(self, user_id: str, symbol: str) -> bool:
        return (not self.user_id or self.user_id == user_id) and (not self.symbols or symbol.upper() in self.symbols)

    async def next(self) -> T | None:
        """The next item, or None when the stream ends (hub closed, or ``cut``)."""
        return await self._queue.get()

    def writing(self, task: asyncio.Task[object] | None) -> None:
        """The handler says it is (task) or is no longer (None) waiting for its client to take a write."""
        self._writer = task

    def _put(self, item: T) -> None:
        self._queue.put_nowait(item)

    def _end(self, cut: bool) -> None:
        if cut:
            self.cut = True
            self.backlog = self._queue.qsize()
            while not self._queue.empty():
                self._queue.get_nowait()
            if self._writer is not None:
                self._writer.cancel()
        self._queue.put_nowait(None)

    @property
    def queued(self) -> int:
        return self._queue.qsize()


class UpdateHub(Generic[T]):
    """Subscribers and their bounded queues; see the module docstring."""

    def __init__(self, queue_size: int = 4096) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size: must be >= 1, got {queue_size}")
        self.queue_size = queue_size
        self.stats = HubStats()
        self._subscribers: list[Subscriber[T]] = []
        self._closed = False

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, user_id: str = "", symbols: Iterable[str] = ()) -> Subscriber[T]:
        subscriber: Subscriber[T] = Subscriber(user_id, symbols)
        self.stats.subscribed += 1
        if self._closed:
            subscriber._end(cut=False)
        else:
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber[T]) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def wanted(self, user_id: str, symbol: str) -> bool:
        """Whether any subscriber takes an update of this user and symbol (so it is worth building)."""
        return any(subscriber.wants(user_id, symbol) for subscriber in self._subscribers)

    def publish(self, item: T, user_id: str, symbol: str) -> list[Subscriber[T]]:
        """Queue ``item`` for every subscriber that wants it; return those cut off by it."""
        cut = []
        for subscriber in self._subscribers:
            if not subscriber.wants(user_id, symbol):
                continue
            if subscriber.queued >= self.queue_size:
                cut.append(subscriber)
                continue
            subscriber._put(item)
            self.stats.delivered += 1
        for subscriber in cut:
            self._subscribers.remove(subscriber)
            subscriber._end(cut=True)
            self.stats.cut += 1
        return cut

    def close(self) -> None:
        """End every stream after what it has queued; later subscribers end at once."""
        self._closed = True
        subscribers, self._subscribers = self._subscribers, []
        for subscriber in subscribers:
            subscriber._end(cut=False)

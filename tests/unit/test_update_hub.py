"""``UpdateHub``: filters, bounded queues, cut-off of a subscriber that falls behind, clean close."""

from __future__ import annotations

import asyncio

import pytest

from host.execution.update_hub import Subscriber, UpdateHub


async def drain(subscriber: Subscriber[str]) -> list[str | None]:
    """What the subscriber's next() gives until the stream ends (None included)."""
    got: list[str | None] = []
    while True:
        item = await asyncio.wait_for(subscriber.next(), 1)
        got.append(item)
        if item is None:
            return got


class TestFilters:
    @pytest.mark.parametrize(
        ("user_id", "symbols", "wanted"),
        [
            ("", (), {"u1/BTCUSDT", "u2/BTCUSDT", "u1/ETHUSDT"}),
            ("", ("",), {"u1/BTCUSDT", "u2/BTCUSDT", "u1/ETHUSDT"}),
            ("u1", (), {"u1/BTCUSDT", "u1/ETHUSDT"}),
            ("", ("btcusdt",), {"u1/BTCUSDT", "u2/BTCUSDT"}),
            ("u2", ("BTCUSDT", "SOLUSDT"), {"u2/BTCUSDT"}),
        ],
    )
    def test_user_and_symbols_select_updates(self, user_id: str, symbols: tuple[str, ...], wanted: set[str]) -> None:
        """An empty user takes every user; no symbols (or "") every symbol; symbols compare in any case."""
        hub: UpdateHub[str] = UpdateHub()
        subscriber = hub.subscribe(user_id, symbols)
        offered = {"u1/BTCUSDT", "u2/BTCUSDT", "u1/ETHUSDT"}
        assert {key for key in offered if subscriber.wants(*key.split("/"))} == wanted


class TestBackpressure:
    async def test_a_subscriber_that_falls_behind_is_cut_off_and_its_queue_freed(self) -> None:
        """Queue of 3: the 4th update cuts the subscriber that has not taken any; its queue is emptied,
        next() ends the stream, it leaves the hub; the one that keeps up is untouched."""
        hub: UpdateHub[str] = UpdateHub(queue_size=3)
        slow, fast = hub.subscribe(), hub.subscribe()
        for index in range(3):
            hub.publish(f"u{index}", "u1", "BTCUSDT")
            assert await fast.next() == f"u{index}"
        assert hub.publish("u3", "u1", "BTCUSDT") == [slow]
        assert (slow.cut, slow.backlog, slow.queued, len(hub), hub.stats.cut) == (True, 3, 1, 1, 1)
        assert await slow.next() is None
        assert await fast.next() == "u3" and not fast.cut

    async def test_a_writer_blocked_on_its_client_is_cancelled_when_cut(self) -> None:
        """A handler that said it is writing is cancelled when its subscriber is cut, so it can end the call."""
        hub: UpdateHub[str] = UpdateHub(queue_size=1)
        subscriber = hub.subscribe()
        blocked = asyncio.Event()

        async def handler() -> None:
            await subscriber.next()
            subscriber.writing(asyncio.current_task())
            blocked.set()
            await asyncio.Event().wait()  # a client that never reads

        task = asyncio.ensure_future(handler())
        hub.publish("first", "", "X")
        await asyncio.wait_for(blocked.wait(), 1)
        hub.publish("second", "", "X")
        hub.publish("third", "", "X")
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
        assert subscriber.cut

    def test_an_update_nobody_wants_is_not_queued(self) -> None:
        """wanted() says whether building an update is worth it; publish() skips those not wanting it."""
        hub: UpdateHub[str] = UpdateHub()
        subscriber = hub.subscribe("u1", ["ETHUSDT"])
        assert not hub.wanted("u1", "BTCUSDT") and hub.wanted("u1", "ethusdt")
        hub.publish("x", "u1", "BTCUSDT")
        assert subscriber.queued == 0 and hub.stats.delivered == 0


class TestClose:
    async def test_close_ends_every_stream_after_what_it_has_queued(self) -> None:
        """close(): each subscriber gets its queued updates then None, not cut; a later subscriber ends at once."""
        hub: UpdateHub[str] = UpdateHub()
        subscriber = hub.subscribe()
        hub.publish("a", "u", "S")
        hub.close()
        assert await drain(subscriber) == ["a", None] and not subscriber.cut and len(hub) == 0
        assert await drain(hub.subscribe()) == [None]

    def test_queue_size_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="queue_size: must be >= 1, got 0"):
            UpdateHub(queue_size=0)

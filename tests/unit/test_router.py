"""The per-runner outbox (every tick below capacity, conflation while lagging, reliable items) and the router."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable

import pytest

from host.router import MARKET_KINDS, Outbox, Router, Subscription, union

BTC_TICK = ("BTCUSDT", "tick")
BTC_BOOK = ("BTCUSDT", "book")
ETH_TICK = ("ETHUSDT", "tick")


def sub(symbols: str = "", types: str = "") -> Subscription:
    """``sub("A B", "tick")``: a Subscription from space-separated names (empty string: all)."""
    return Subscription(symbols=frozenset(symbols.split()), types=frozenset(types.split()))


class TestOutboxBelowCapacity:
    def test_every_tick_of_one_key_is_kept_in_order(self) -> None:
        """Below capacity, ticks for a key already waiting are appended, not conflated."""
        box = Outbox(capacity=3)
        for item in (b"t1", b"t2", b"t3"):
            box.put_market(BTC_TICK, item)
        assert box.take() == [b"t1", b"t2", b"t3"]
        assert (box.conflated, box.dropped, box.conflating) == (0, 0, False)

    def test_different_keys_are_kept_in_arrival_order(self) -> None:
        """Same symbol with another type, or another symbol, interleaved: all kept as they came."""
        box = Outbox(capacity=10)
        for key, item in [(BTC_TICK, b"a"), (BTC_BOOK, b"b"), (BTC_TICK, b"a2"), (ETH_TICK, b"c")]:
            box.put_market(key, item)
        assert box.take() == [b"a", b"b", b"a2", b"c"]
        assert box.conflated == 0

    def test_healthy_runner_sees_every_tick_and_stuck_one_is_conflated(self) -> None:
        """Same feed, two ticks per symbol per round trip: a runner taking each batch gets all of them."""
        healthy, stuck = Outbox(capacity=4), Outbox(capacity=4)
        sent: list[bytes] = []
        received: list[bytes] = []
        for n in range(50):
            for key in (BTC_TICK, BTC_TICK, ETH_TICK, ETH_TICK):
                item = f"{key[0]}{n}-{len(sent)}".encode()
                sent.append(item)
                healthy.put_market(key, item)
                stuck.put_market(key, item)
            received += healthy.take()
        assert (received, healthy.conflated, healthy.dropped) == (sent, 0, 0)
        assert stuck.take() == [sent[-3], sent[-1]]
        assert stuck.conflated == len(sent) - 2


class TestOutboxConflatingMode:
    def test_reaching_capacity_compacts_to_latest_per_key(self) -> None:
        """A put that finds capacity market items waiting keeps only each key's latest, counting the rest."""
        box = Outbox(capacity=3)
        for key, item in [(BTC_TICK, b"a1"), (BTC_BOOK, b"b1"), (BTC_TICK, b"a2")]:
            box.put_market(key, item)
        assert not box.conflating
        box.put_market(ETH_TICK, b"c1")
        assert box.take() == [b"b1", b"a2", b"c1"]
        assert (box.conflated, box.dropped) == (1, 0)

    def test_compaction_conflates_many_ticks_of_one_key(self) -> None:
        """Compaction removes every stale item of a key, one conflated count each."""
        box = Outbox(capacity=4)
        for n in range(4):
            box.put_market(BTC_TICK, f"t{n}".encode())
        box.put_market(ETH_TICK, b"e")
        assert box.take() == [b"t3", b"e"]
        assert box.conflated == 3

    def test_same_key_replaces_even_below_capacity(self) -> None:
        """Once conflating, a put for a waiting key replaces it even with room left."""
        box = Outbox(capacity=2)
        for item in (b"t1", b"t2", b"t3"):
            box.put_market(BTC_TICK, item)
        assert (box.conflating, box.pending_market) == (True, 1)
        box.put_market(BTC_TICK, b"t4")
        assert box.take() == [b"t4"]
        assert box.conflated == 3

    def test_replacement_takes_the_newer_position(self) -> None:
        """A replaced item moves behind everything put before the replacement."""
        box = Outbox(capacity=2)
        box.put_market(BTC_TICK, b"btc1")
        box.put_market(ETH_TICK, b"eth1")
        box.put_market(BTC_TICK, b"btc2")
        assert box.take() == [b"eth1", b"btc2"]

    def test_new_key_at_capacity_drops_the_oldest(self) -> None:
        """A new key when capacity market items wait drops the oldest one and counts it."""
        box = Outbox(capacity=2)
        box.put_market(BTC_TICK, b"a")
        box.put_market(BTC_BOOK, b"b")
        box.put_market(ETH_TICK, b"c")
        assert box.take() == [b"b", b"c"]
        assert (box.dropped, box.conflated) == (1, 0)

    def test_replacement_at_capacity_drops_nothing(self) -> None:
        """Replacing a waiting key does not need room, so nothing is dropped."""
        box = Outbox(capacity=2)
        box.put_market(BTC_TICK, b"a")
        box.put_market(BTC_BOOK, b"b")
        box.put_market(BTC_TICK, b"a2")
        assert box.take() == [b"b", b"a2"]
        assert (box.dropped, box.conflated) == (0, 1)

    def test_oldest_is_by_last_put(self) -> None:
        """A refreshed key is young again: the drop takes the least recently put key."""
        box = Outbox(capacity=2)
        box.put_market(BTC_TICK, b"a")
        box.put_market(BTC_BOOK, b"b")
        box.put_market(BTC_TICK, b"a2")
        box.put_market(ETH_TICK, b"c")
        assert box.take() == [b"a2", b"c"]

    def test_drop_skips_reliable_items(self) -> None:
        """The dropped item is the oldest market item even when reliable items are older."""
        box = Outbox(capacity=1)
        box.put_reliable(b"fill")
        box.put_market(BTC_TICK, b"a")
        box.put_market(ETH_TICK, b"b")
        assert box.take() == [b"fill", b"b"]
        assert box.dropped == 1


class TestOutboxCatchUp:
    def test_take_that_empties_ends_conflating_mode(self) -> None:
        """After a take empties the outbox, every tick is kept again."""
        box = Outbox(capacity=1)
        box.put_market(BTC_TICK, b"t1")
        box.put_market(BTC_TICK, b"t2")
        box.take()
        assert not box.conflating
        box.put_market(BTC_TICK, b"t3")
        box.put_reliable(b"fill")
        assert box.take() == [b"t3", b"fill"]
        assert box.conflated == 1

    def test_limited_take_that_empties_ends_conflating_mode(self) -> None:
        """take(n) with n at least the length empties the outbox and so ends conflating mode too."""
        box = Outbox(capacity=1)
        box.put_market(BTC_TICK, b"t1")
        box.put_market(BTC_TICK, b"t2")
        assert box.take(5) == [b"t2"]
        assert not box.conflating

    def test_partial_take_keeps_conflating_mode(self) -> None:
        """A take that leaves items waiting does not end conflating mode, even with no market item left."""
        box = Outbox(capacity=1)
        box.put_market(BTC_TICK, b"t1")
        box.put_market(BTC_TICK, b"t2")
        box.put_reliable(b"fill")
        assert box.take(1) == [b"t2"]
        box.put_market(BTC_TICK, b"t3")
        box.put_market(BTC_TICK, b"t4")
        assert box.conflating
        assert box.take() == [b"fill", b"t4"]

    def test_taken_key_is_new_again_after_partial_take(self) -> None:
        """In conflating mode, a key taken by a partial take is appended; one still waiting is replaced."""
        box = Outbox(capacity=2)
        box.put_market(BTC_TICK, b"a")
        box.put_market(ETH_TICK, b"b")
        box.put_market(BTC_TICK, b"a2")
        assert box.take(1) == [b"b"]
        box.put_market(ETH_TICK, b"b2")
        box.put_market(BTC_TICK, b"a3")
        assert box.take() == [b"b2", b"a3"]
        assert (box.conflated, box.dropped) == (2, 0)


class TestOutboxCapacity:
    @pytest.mark.parametrize("capacity", [0, -1])
    def test_capacity_below_one_is_rejected(self, capacity: int) -> None:
        """A capacity below 1 is a ValueError that names the setting and the value."""
        with pytest.raises(ValueError, match=rf"Outbox capacity: must be >= 1, got {capacity}"):
            Outbox(capacity)

    def test_market_backlog_never_exceeds_capacity(self) -> None:
        """However many distinct keys arrive, at most capacity market items wait."""
        box = Outbox(capacity=3)
        for n in range(100):
            box.put_market((f"S{n}", "tick"), b"x")
            assert box.pending_market <= 3
        assert (box.dropped, box.pending_market) == (97, 3)


class TestOutboxReliable:
    def test_reliable_items_are_never_dropped(self) -> None:
        """Reliable items far past capacity are all kept, in order, and do not push market items out."""
        box = Outbox(capacity=2)
        box.put_market(BTC_TICK, b"tick")
        fills = [f"fill{i}".encode() for i in range(1000)]
        for fill in fills:
            box.put_reliable(fill)
        assert box.take() == [b"tick", *fills]
        assert (box.dropped, box.conflated, box.reliable, box.conflating) == (0, 0, 1000, False)

    def test_identical_reliable_items_are_not_conflated(self) -> None:
        """Two equal reliable payloads are two items, in conflating mode too."""
        box = Outbox(capacity=1)
        box.put_market(BTC_TICK, b"a")
        box.put_market(BTC_TICK, b"a2")
        box.put_reliable(b"timer")
        box.put_reliable(b"timer")
        assert box.take() == [b"a2", b"timer", b"timer"]

    def test_reliable_keeps_its_place_between_market_items(self) -> None:
        """A reliable item comes out between the market items put before and after it."""
        box = Outbox(capacity=10)
        box.put_market(BTC_TICK, b"btc")
        box.put_reliable(b"fill")
        box.put_market(ETH_TICK, b"eth")
        assert box.take() == [b"btc", b"fill", b"eth"]

    def test_reliable_items_keep_their_positions_through_compaction(self) -> None:
        """Compaction removes stale market items only; reliable ones stay in place among the survivors."""
        box = Outbox(capacity=3)
        box.put_market(BTC_TICK, b"a1")
        box.put_reliable(b"r1")
        box.put_market(ETH_TICK, b"b1")
        box.put_reliable(b"r2")
        box.put_market(BTC_TICK, b"a2")
        box.put_reliable(b"r3")
        box.put_market(BTC_BOOK, b"c1")
        assert box.take() == [b"r1", b"b1", b"r2", b"a2", b"r3", b"c1"]
        assert box.conflated == 1

    def test_replaced_market_item_moves_past_reliable(self) -> None:
        """In conflating mode, a market item replaced after a reliable item is sent after it."""
        box = Outbox(capacity=1)
        box.put_market(BTC_TICK, b"btc1")
        box.put_reliable(b"fill")
        box.put_market(BTC_TICK, b"btc2")
        assert box.take() == [b"fill", b"btc2"]


class TestOutboxTake:
    def test_take_empties_the_outbox(self) -> None:
        """take() with no limit returns everything and leaves nothing pending."""
        box = Outbox(capacity=10)
        box.put_market(BTC_TICK, b"a")
        box.put_reliable(b"r")
        box.take()
        assert (len(box), box.pending_market, box.pending_reliable, box.take()) == (0, 0, 0, [])

    def test_take_max_items_splits_in_order(self) -> None:
        """take(n) returns the n oldest items and leaves the rest, order intact, for the next take."""
        box = Outbox(capacity=10)
        box.put_market(BTC_TICK, b"a")
        box.put_reliable(b"r")
        box.put_market(ETH_TICK, b"b")
        assert box.take(2) == [b"a", b"r"]
        assert box.take(2) == [b"b"]

    @pytest.mark.parametrize("max_items", [0, -3])
    def test_max_items_below_one_is_rejected(self, max_items: int) -> None:
        """take(0) or a negative limit is a ValueError, even on an empty outbox."""
        with pytest.raises(ValueError, match="max_items: must be >= 1 or None"):
            Outbox(capacity=1).take(max_items)

    def test_pending_counts_by_kind(self) -> None:
        """pending_market and pending_reliable count what waits, and sum to len()."""
        box = Outbox(capacity=10)
        box.put_market(BTC_TICK, b"a")
        box.put_market(BTC_TICK, b"a2")
        box.put_reliable(b"r1")
        box.put_reliable(b"r2")
        assert (box.pending_market, box.pending_reliable, len(box)) == (2, 2, 4)


class TestOutboxStats:
    def test_counters_after_a_mixed_sequence(self) -> None:
        """Every put is enqueued, and ends up taken, conflated, dropped or still waiting."""
        box = Outbox(capacity=2)
        box.put_market(BTC_TICK, b"a")
        box.put_market(BTC_TICK, b"a2")
        box.put_market(BTC_BOOK, b"b")  # at capacity: compaction conflates a
        box.put_reliable(b"r")
        box.put_market(ETH_TICK, b"c")  # new key at capacity: drops a2
        box.take(1)
        stats = (box.enqueued, box.reliable, box.conflated, box.dropped, box.taken, len(box))
        assert stats == (5, 1, 1, 1, 1, 2)

    def test_high_water_is_the_largest_length_seen(self) -> None:
        """high_water remembers the peak length, reliable items included, after the outbox drains."""
        box = Outbox(capacity=2)
        for key in (BTC_TICK, BTC_BOOK, ETH_TICK):
            box.put_market(key, b"x")
        box.put_reliable(b"r")
        box.take()
        box.put_market(BTC_TICK, b"y")
        assert box.high_water == 3


Op = tuple[str, Hashable, bytes]  # ("market", key, item) | ("reliable", None, item)


class ModelOutbox:
    """The outbox rules written the slow, obvious way: one list of (key or None, item) and a mode flag."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.waiting: list[tuple[Hashable | None, bytes]] = []
        self.conflating = False
        self.conflated = 0
        self.dropped = 0

    @property
    def pending_market(self) -> int:
        return sum(k is not None for k, _ in self.waiting)

    def compact(self) -> None:
        """Keep the reliable items and the last market item of each key, where they are."""
        last = {k: n for n, (k, _) in enumerate(self.waiting) if k is not None}
        kept = [(k, i) for n, (k, i) in enumerate(self.waiting) if k is None or last[k] == n]
        self.conflated += len(self.waiting) - len(kept)
        self.waiting = kept

    def put_market(self, key: Hashable, item: bytes) -> None:
        if not self.conflating and self.pending_market >= self.capacity:
            self.conflating = True
            self.compact()
        if self.conflating:
            same = [n for n, (k, _) in enumerate(self.waiting) if k == key]
            if same:
                del self.waiting[same[0]]
                self.conflated += 1
            elif self.pending_market >= self.capacity:
                del self.waiting[next(n for n, (k, _) in enumerate(self.waiting) if k is not None)]
                self.dropped += 1
        self.waiting.append((key, item))

    def put_reliable(self, item: bytes) -> None:
        self.waiting.append((None, item))

    def take(self, max_items: int | None = None) -> list[bytes]:
        n = len(self.waiting) if max_items is None else max_items
        batch, self.waiting = self.waiting[:n], self.waiting[n:]
        if not self.waiting:
            self.conflating = False
        return [item for _, item in batch]


def random_ops(rng: random.Random, count: int) -> list[Op]:
    """Puts over 8 keys (4 symbols x tick/book), a quarter of them reliable; items are unique."""
    keys = [(symbol, kind) for symbol in ("A", "B", "C", "D") for kind in ("tick", "book")]
    return [
        ("reliable", None, f"r{n}".encode()) if rng.random() < 0.25 else ("market", rng.choice(keys), f"m{n}".encode())
        for n in range(count)
    ]


def state(box: Outbox | ModelOutbox) -> tuple[bool, int, int, int]:
    return (box.conflating, box.conflated, box.dropped, box.pending_market)


def apply(box: Outbox | ModelOutbox, op: Op) -> None:
    kind, key, item = op
    if kind == "reliable":
        box.put_reliable(item)
    else:
        box.put_market(key, item)


def for_each_seed(check: Callable[[random.Random], None], seeds: int = 500) -> None:
    """Run ``check`` on seeded generators; a failure names the seed that reproduces it."""
    for seed in range(seeds):
        try:
            check(random.Random(seed))
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc


class TestOutboxProperties:
    def test_below_capacity_all_kept_else_latest_per_key(self) -> None:
        """Puts then one take: all reliable items in order; all market items if they fit, else latest per key."""

        def check(rng: random.Random) -> None:
            ops = random_ops(rng, rng.randint(0, 60))
            box = Outbox(capacity=rng.randint(1, 20))
            for op in ops:
                apply(box, op)
            conflating = box.conflating
            batch = box.take()
            market_in = [item for kind, _, item in ops if kind == "market"]
            market_out = [item for item in batch if item.startswith(b"m")]
            assert [item for item in batch if item.startswith(b"r")] == [i for k, _, i in ops if k == "reliable"]
            if len(market_in) <= box.capacity:
                assert (batch, box.conflated, box.dropped, conflating) == ([i for _, _, i in ops], 0, 0, False)
                return
            latest = {key: item for kind, key, item in ops if kind == "market"}
            key_of = {item: key for kind, key, item in ops if kind == "market"}
            keys_out = {key_of[item] for item in market_out}
            assert conflating
            assert len(keys_out) == len(market_out) <= box.capacity
            assert all(item == latest[key_of[item]] for item in market_out)
            # A key missing from the batch had its latest item dropped: one drop each at least.
            assert box.dropped >= len(set(latest) - keys_out)

        for_each_seed(check)

    def test_matches_the_obvious_model(self) -> None:
        """Puts and whole or partial takes interleaved: batches, counters and mode match a naive list model."""

        def check(rng: random.Random) -> None:
            capacity = rng.randint(1, 6)
            box, model = Outbox(capacity), ModelOutbox(capacity)
            for op in random_ops(rng, rng.randint(0, 80)):
                apply(box, op)
                apply(model, op)
                if rng.random() < 0.15:
                    n = rng.choice([None, 1, 2, 3, 5])
                    assert box.take(n) == model.take(n)
                assert state(box) == state(model)
            assert box.take() == model.take()

        for_each_seed(check)

    def test_counters_balance(self) -> None:
        """Puts and partial takes interleaved: enqueued == taken + conflated + dropped + len; high_water is the peak."""

        def check(rng: random.Random) -> None:
            box = Outbox(capacity=rng.randint(1, 6))
            taken: list[bytes] = []
            longest = 0
            for op in random_ops(rng, 80):
                apply(box, op)
                longest = max(longest, len(box))
                assert box.enqueued == box.taken + box.conflated + box.dropped + len(box)
                if rng.random() < 0.2:
                    taken += box.take(rng.randint(1, 4))
            taken += box.take()
            assert box.taken == len(taken)
            assert box.high_water == longest

        for_each_seed(check)


class TestSubscription:
    def test_unknown_type_is_rejected(self) -> None:
        """A type outside tick/trade/book/candle is a ValueError naming it."""
        with pytest.raises(ValueError, match=r"Subscription.types: unknown market data type\(s\) \['tik'\]"):
            sub("BTCUSDT", "tik")

    def test_string_instead_of_frozenset_is_rejected(self) -> None:
        """A bare string for symbols (which would match substrings) is a TypeError."""
        with pytest.raises(TypeError, match=r"Subscription\.symbols: expected a frozenset of str, got str"):
            Subscription(symbols="BTCUSDT")  # type: ignore[arg-type]


class TestUnion:
    @pytest.mark.parametrize(
        ("parts", "expected"),
        [
            ([sub("A", "tick")], sub("A", "tick")),
            ([sub("A", "tick"), sub("B", "trade")], sub("A B", "tick trade")),
            ([sub("A", "tick"), sub("", "book")], sub("", "tick book")),
            ([sub("A", "tick"), sub("B", "")], sub("A B", "")),
            ([sub("A"), sub("A")], sub("A")),
        ],
        ids=["one", "both-restricted", "empty-symbols-means-all", "empty-types-means-all", "same"],
    )
    def test_union(self, parts: list[Subscription], expected: Subscription) -> None:
        """The union takes what any part takes; a part with an empty set makes that dimension all."""
        assert union(parts) == expected

    def test_union_of_nothing_is_rejected(self) -> None:
        """There is no subscription meaning "nothing", so an empty union is a ValueError."""
        with pytest.raises(ValueError, match="union: needs at least one Subscription"):
            union([])


@pytest.fixture
def router() -> Router:
    r = Router()
    r.set("btc-ticks", sub("BTCUSDT", "tick"))
    r.set("eth-all", sub("ETHUSDT"))
    r.set("all-books", sub("", "book"))
    r.set("everything", sub())
    return r


class TestRouter:
    @pytest.mark.parametrize(
        ("symbol", "kind", "expected"),
        [
            ("BTCUSDT", "tick", ("btc-ticks", "everything")),
            ("BTCUSDT", "trade", ("everything",)),
            ("BTCUSDT", "book", ("all-books", "everything")),
            ("ETHUSDT", "candle", ("eth-all", "everything")),
            ("ETHUSDT", "book", ("eth-all", "all-books", "everything")),
            ("SOLUSDT", "tick", ("everything",)),
        ],
    )
    def test_targets(self, router: Router, symbol: str, kind: str, expected: tuple[str, ...]) -> None:
        """Targets match on symbol and type, empty meaning all, in the order runners were added."""
        assert router.targets(symbol, kind) == expected

    def test_set_invalidates_cached_targets(self, router: Router) -> None:
        """A new runner shows up in targets already answered from the cache."""
        assert router.targets("SOLUSDT", "trade") == ("everything",)
        router.set("sol", sub("SOLUSDT"))
        assert router.targets("SOLUSDT", "trade") == ("everything", "sol")

    def test_replacing_a_subscription_keeps_place_and_invalidates(self, router: Router) -> None:
        """Replacing a runner's subscription changes its targets at once and keeps its order."""
        assert router.targets("ETHUSDT", "tick") == ("eth-all", "everything")
        router.set("btc-ticks", sub("ETHUSDT", "tick"))
        assert router.targets("ETHUSDT", "tick") == ("btc-ticks", "eth-all", "everything")
        assert router.targets("BTCUSDT", "tick") == ("everything",)

    def test_remove_invalidates_cached_targets(self, router: Router) -> None:
        """A removed runner disappears from targets already answered from the cache."""
        assert router.targets("BTCUSDT", "tick") == ("btc-ticks", "everything")
        router.remove("everything")
        assert router.targets("BTCUSDT", "tick") == ("btc-ticks",)

    def test_remove_unknown_is_a_no_op(self, router: Router) -> None:
        """Removing a runner that is not there changes nothing (teardown paths may repeat it)."""
        router.remove("nobody")
        assert router.runners() == ("btc-ticks", "eth-all", "all-books", "everything")

    def test_no_runners_no_targets(self) -> None:
        """An empty router sends market data nowhere."""
        assert Router().targets("BTCUSDT", "tick") == ()

    def test_unknown_kind_is_rejected(self, router: Router) -> None:
        """A kind that is not market data is a ValueError naming it."""
        with pytest.raises(ValueError, match=r"Router\.targets kind: expected one of .* got 'fill'"):
            router.targets("BTCUSDT", "fill")

    def test_runners_in_order_added(self, router: Router) -> None:
        """runners() lists ids in the order they were first set."""
        router.remove("eth-all")
        router.set("eth-all", sub("ETHUSDT"))
        assert router.runners() == ("btc-ticks", "all-books", "everything", "eth-all")

    def test_market_kinds_are_the_sdk_event_kinds(self) -> None:
        """The router's types are exactly tick, trade, book and candle."""
        assert frozenset({"tick", "trade", "book", "candle"}) == MARKET_KINDS

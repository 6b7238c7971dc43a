"""Micro-benchmark of the fan-out hot path: ns per Outbox put/take and per Router.targets lookup.

Not a test: from the repository root run ``python -m bench.bench_router [ops]`` (default 1e6 ops
per line). Each line is the best of three runs (other work on the machine only ever adds time).
Loops run over pre-built keys, so a figure includes the Python call overhead a real caller pays
and nothing else (no serialization, no I/O); outboxes are refilled in small untimed chunks so a
figure is not a measure of a giant dict's growth and cache misses.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial

from host.router import Outbox, Router, Subscription

KINDS = ("tick", "trade", "book", "candle")
ITEM = b"x" * 64
REPEAT = 3
Key = tuple[str, str]


def keys(symbols: int, count: int) -> list[Key]:
    pool = [(f"SYM{i}", kind) for i in range(symbols) for kind in KINDS]
    return [pool[i % len(pool)] for i in range(count)]


def best_of(run: Callable[[], float]) -> float:
    return min(run() for _ in range(REPEAT))


def clock(fn: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - start


def call_all(fns: list[Callable[[], object]]) -> Callable[[], None]:
    def run() -> None:
        for fn in fns:
            fn()

    return run


def puts(box: Outbox, ks: list[Key]) -> Callable[[], None]:
    def run() -> None:
        put = box.put_market
        for k in ks:
            put(k, ITEM)

    return run


def put_append(ops: int, symbols: int) -> float:
    """100 puts into each of many fresh outboxes (capacity 1000): the healthy runner's put, an append.

    ``symbols=25`` makes every put a new key; ``symbols=1`` puts 25 ticks per key (the keys repeat).
    """
    ks = keys(symbols, 100)
    total, boxes = 0, ops // 100
    for _ in range(boxes // 1000):
        fills: list[Callable[[], object]] = [puts(Outbox(1000), ks) for _ in range(1000)]
        total += clock(call_all(fills))
    return total / (boxes * 100)


def conflating(capacity: int, ks: list[Key]) -> Outbox:
    """An outbox in conflating mode with ``ks[:capacity]`` waiting: fill it, then one put compacts."""
    box = Outbox(capacity)
    puts(box, ks[: capacity + 1])()
    assert box.conflating
    return box


def put_replace(ops: int) -> float:
    """A lagging runner in conflating mode: 100 keys waiting, every put replaces one."""
    ks = keys(25, ops)
    box = conflating(100, ks)
    return clock(puts(box, ks)) / ops


def put_drop(ops: int) -> float:
    """A stuck runner in conflating mode: capacity 100 full, every put is a new key and drops the oldest."""
    ks = keys(1000, ops)
    box = conflating(100, ks)
    return clock(puts(box, ks[101:])) / (ops - 101)


def put_compact(ops: int, capacity: int) -> float:
    """The one put that enters conflating mode, per call: compacts ``capacity`` items over 100 keys to 100."""
    ks = keys(25, capacity)
    calls = max(1, ops // capacity)
    total = 0
    for _ in range(calls):
        box = Outbox(capacity)
        puts(box, ks)()
        total += clock(partial(box.put_market, ks[0], ITEM))
    return total / calls


def put_reliable(ops: int) -> float:
    total = 0
    for _ in range(ops // 1000):
        box = Outbox(1)

        def run(box: Outbox = box) -> None:
            put = box.put_reliable
            for _ in range(1000):
                put(ITEM)

        total += clock(run)
    return total / ops


def take_all(ops: int, batch: int) -> float:
    """take() of a whole batch, per call: fill outboxes untimed, then time only the takes."""
    ks = keys(25, batch)
    calls, total = ops // batch, 0
    for _ in range(max(1, calls // 1000)):
        boxes = [Outbox(1000) for _ in range(1000)]
        for box in boxes:
            puts(box, ks)()
        takes: list[Callable[[], object]] = [box.take for box in boxes]
        total += clock(call_all(takes))
    return total / (max(1, calls // 1000) * 1000)


def take_split(ops: int) -> float:
    """take(10) from a 1000-item backlog, per item."""
    ks = keys(250, 1000)
    total = 0
    for _ in range(ops // 1000):
        box = Outbox(1000)
        puts(box, ks)()
        total += clock(call_all([partial(box.take, 10)] * 100))
    return total / ops


def targets_hit(ops: int) -> float:
    """targets() answered from the cache: 8 runners on overlapping symbol sets, 200 (symbol, kind)."""
    router = Router()
    for i in range(8):
        router.set(f"runner{i}", Subscription(symbols=frozenset({f"SYM{j}" for j in range(i, 50, 3)})))
    lookups = keys(50, ops)
    for symbol, kind in lookups[:200]:
        router.targets(symbol, kind)

    def run() -> None:
        targets = router.targets
        for symbol, kind in lookups:
            targets(symbol, kind)

    return clock(run) / ops


def empty_loop(ops: int) -> float:
    ks = keys(25, ops)

    def run() -> None:
        for _k in ks:
            pass

    return clock(run) / ops


def main() -> None:
    ops = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000
    print(f"{ops:,} ops per line, best of {REPEAT}, Python {sys.version.split()[0]}")
    lines: list[tuple[str, Callable[[], float], int]] = [
        ("(empty loop over the keys, for reference)", lambda: empty_loop(ops), 1),
        ("put_market below capacity: append, new key", lambda: put_append(ops, 25), 1),
        ("put_market below capacity: append, key waiting", lambda: put_append(ops, 1), 1),
        ("put_market conflating: key waiting, replace", lambda: put_replace(ops), 1),
        ("put_market conflating: new key, drop oldest", lambda: put_drop(ops), 1),
        ("put_market entering conflating mode, 1000 wait", lambda: put_compact(ops, 1000), 1000),
        ("put_reliable", lambda: put_reliable(ops), 1),
        ("take(), batch of 1", lambda: take_all(ops, 1), 1),
        ("take(), batch of 10", lambda: take_all(ops, 10), 10),
        ("take(), batch of 100", lambda: take_all(ops, 100), 100),
        ("take(10) from a 1000-item backlog, per item", lambda: take_split(ops), 1),
        ("targets, cache hit", lambda: targets_hit(ops), 1),
    ]
    for label, run, per in lines:
        ns = best_of(run)
        extra = f"  ({ns / per:.1f} ns/item)" if per > 1 else ""
        print(f"{label:<48} {ns:8.1f} ns/op{extra}")


if __name__ == "__main__":
    main()

"""Redis pub/sub market data: messages/s read (+ decoded + handed to a no-op sink), two subscribers.

    python -m bench.bench_redis_subscriber [--count 200000] [--repeat 3] [--data FILE.jsonl] [--now]

A real redis-server on a free port (pub/sub output buffer unlimited, so no subscriber is cut off);
a separate process publishes ``count`` real-looking tick messages (BTCUSDT and ETHUSDT random walks
in the seed's JSON, or the first ``count`` lines of ``--data``, cycled) to ``market:btcusdt`` and
``market:ethusdt`` through a pipeline. Subscribers:

- ``feed``: ``host.feeds.MarketDataFeed`` as the host runs it (asyncio streams + hiredis' parser,
  orjson, ``decode_market``, metrics, FeedHealth, sink) with a counting sink;
- ``feed-read``: the same subscriber with the per-message handler replaced by a counter (RESP only);
- ``redis-py``: redis.asyncio ``PubSub.listen()`` (redis-py parses with hiredis when installed),
  then the same orjson + ``decode_market`` + sink;
- ``redis-py-read``: redis.asyncio ``PubSub.listen()`` only.

Two modes: ``drain`` publishes the whole burst while the subscriber's event loop is blocked, then
times how fast it empties what Redis buffered (the subscriber's capacity, no publisher competing for
the 2 cores); ``live`` publishes while the subscriber reads and times first to last message. Each
figure is the best of ``repeat`` runs; ``msgs_per_cpu_s`` divides by the subscriber process' CPU
time. Figures go to stdout and to bench/results/redis_subscriber.json (with ``--data``:
redis_subscriber_<file name>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis
import redis.asyncio

from host.config import RedisConfig
from host.feeds import MarketDataFeed
from sdk._codec import decode_market
from tests.servers import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "redis_subscriber.json"
CHANNELS = ("market:btcusdt", "market:ethusdt")
BATCH = 500


def ticks(count: int, seed: int, now: bool) -> list[tuple[str, bytes]]:
    """``count`` seed-format ticks, alternating BTCUSDT and ETHUSDT, one every 200 us."""
    rng = random.Random(seed)
    start = datetime.now(UTC) if now else datetime(2024, 8, 8, 23, 54, 14, 87891, tzinfo=UTC)
    mids = {"BTCUSDT": 61837.63, "ETHUSDT": 2680.01}
    sequence = dict.fromkeys(mids, 0)
    out = []
    for i in range(count):
        symbol = "BTCUSDT" if i % 2 == 0 else "ETHUSDT"
        mids[symbol] = round(mids[symbol] + rng.choice((-0.01, 0.0, 0.0, 0.01)), 2)
        sequence[symbol] += 1
        stamp = (start + timedelta(microseconds=200 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = {
            "symbol": symbol, "timestamp": stamp, "sequence": sequence[symbol], "type": "tick",
            "bid_price": mids[symbol], "bid_size": round(rng.uniform(0.001, 5.0), 5),
            "ask_price": round(mids[symbol] + 0.01, 2), "ask_size": round(rng.uniform(0.001, 5.0), 5),
            "last_price": mids[symbol],
        }  # fmt: skip
        out.append((f"market:{symbol.lower()}", orjson.dumps(message)))
    return out


def recorded(path: str, count: int) -> list[tuple[str, bytes]]:
    with open(path, "rb") as lines:
        rows = [line.rstrip(b"\n") for line in itertools.islice(lines, count) if line.strip()]
    cycled = itertools.islice(itertools.cycle(rows), count)
    return [(f"market:{orjson.loads(row)['symbol'].lower()}", row) for row in cycled]


def publish(port: int, count: int, data: str, now: bool) -> None:
    """The publisher process: build the messages first, then send them as fast as Redis takes them."""
    messages = recorded(data, count) if data else ticks(count, 7, now)
    client = redis.Redis(port=port)
    for start in range(0, len(messages), BATCH):
        pipe = client.pipeline(transaction=False)
        for channel, body in messages[start : start + BATCH]:
            pipe.publish(channel, body)
        pipe.execute()


def publisher_argv(port: int, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "bench.bench_redis_subscriber", "--publish", str(port), "--count", str(args.count)]
    return argv + (["--data", args.data] if args.data else []) + (["--now"] if args.now else [])


class Run:
    """One subscriber's timing: the clock starts at ``start`` (drain) or at the first message (live)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.started = self.cpu_started = 0.0
        self.ended = self.cpu_ended = 0.0
        self.done = asyncio.Event()

    def start(self) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def tick(self, *_: object) -> None:
        self.seen += 1
        if self.seen == 1 and not self.started:
            self.start()
        if self.seen == self.count:
            self.ended, self.cpu_ended = time.perf_counter(), time.process_time()
            self.done.set()

    def figures(self) -> dict[str, float]:
        wall, cpu = self.ended - self.started, self.cpu_ended - self.cpu_started
        return {
            "seconds": round(wall, 3),
            "msgs_per_s": round(self.count / wall),
            "msgs_per_cpu_s": round(self.count / cpu),
        }


async def feed_run(port: int, run: Run, read_only: bool, burst: Callable[[], Awaitable[None]]) -> None:
    feed = MarketDataFeed(RedisConfig(port=port, market_data_channels=CHANNELS), run.tick)
    if read_only:
        feed._message = run.tick  # type: ignore[method-assign,assignment]  # bench only: RESP without decoding
    task = asyncio.create_task(feed.run())
    try:
        # The feed shows its subscription as state only (``connected``), with no event to wait on.
        async with asyncio.timeout(30):
            while not feed.connected:  # noqa: ASYNC110  (no event: see above)
                await asyncio.sleep(0.01)
        await burst()
        await asyncio.wait_for(run.done.wait(), 120)
    finally:
        feed.close()
        await task
    assert feed.stats.rejected == 0, feed.stats


async def redis_py_run(port: int, run: Run, read_only: bool, burst: Callable[[], Awaitable[None]]) -> None:
    client = redis.asyncio.Redis(port=port)
    pubsub = client.pubsub()
    await pubsub.subscribe(*CHANNELS)
    confirmed = 0
    while confirmed < len(CHANNELS):
        message = await pubsub.get_message(timeout=1.0)
        confirmed += message is not None and message["type"] == "subscribe"
    await burst()
    sink, loads = run.tick, orjson.loads
    # listen() is redis-py's fastest read (~130k/s here); get_message(timeout=...) arms a timer per
    # message and reads ~47k/s.
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        if read_only:
            sink()
        else:
            sink(decode_market(loads(message["data"])))
        if run.seen == run.count:
            break
    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    await client.aclose()


SUBSCRIBERS = {
    "feed": (feed_run, False),
    "feed-read": (feed_run, True),
    "redis-py": (redis_py_run, False),
    "redis-py-read": (redis_py_run, True),
}


async def measure(port: int, name: str, mode: str, args: argparse.Namespace) -> dict[str, float]:
    run_fn, read_only = SUBSCRIBERS[name]
    run = Run(args.count)
    argv = publisher_argv(port, args)

    async def burst() -> None:
        if mode == "drain":
            # Blocking the loop is the point of this mode: Redis buffers the whole burst, then the feed drains it.
            subprocess.run(argv, check=True)  # noqa: ASYNC221
            run.start()
        else:
            proc = await asyncio.create_subprocess_exec(*argv)
            burst_tasks.add(asyncio.create_task(proc.wait()))

    burst_tasks: set[asyncio.Task[int]] = set()
    await run_fn(port, run, read_only, burst)
    await asyncio.gather(*burst_tasks)
    return run.figures()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", default="", help="a JSON-lines market data file to publish instead of ticks")
    parser.add_argument("--now", action="store_true", help="stamp the ticks with the current time")
    parser.add_argument("--publish", type=int, default=0, help=argparse.SUPPRESS)  # the publisher process
    args = parser.parse_args()
    if args.publish:
        publish(args.publish, args.count, args.data, args.now)
        return
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    server.start()
    try:
        redis.Redis(port=server.port).config_set("client-output-buffer-limit", "pubsub 0 0 0")
        rows = []
        for mode in ("drain", "live"):
            for name in SUBSCRIBERS:
                best = max((asyncio.run(measure(server.port, name, mode, args)) for _ in range(args.repeat)),
                           key=lambda r: r["msgs_per_s"])  # fmt: skip
                rows.append({"subscriber": name, "mode": mode, "count": args.count, **best})
                print(f"{mode:>6} {name:>14} {best['msgs_per_s']:>10,} msgs/s {best['msgs_per_cpu_s']:>10,} msgs/cpu-s")
    finally:
        server.stop()
    meta: dict[str, Any] = {
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "redis_py": redis.__version__, "data": args.data or "synthetic ticks", "now_timestamps": args.now,
    }  # fmt: skip
    results = RESULTS.with_name(f"redis_subscriber_{Path(args.data).stem}.json") if args.data else RESULTS
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"written to {results}")


if __name__ == "__main__":
    main()

"""Market data decoding per format: microseconds per message, the seed's and b25's side by side.

    python -m bench.bench_formats [--count 20000] [--repeat 7]

For each format, ``count`` real-looking messages (two symbols' random walks, 200 us apart, so the
timestamp cache sees a new second every 5000) are timed through two paths, in-process (no Redis):

- ``decode``: ``orjson.loads`` + the format's decoder (``host.feeds.formats``), what a message
  costs to become an event;
- ``handler``: ``MarketDataFeed._message``, the feed's whole per-message path as a Redis reply
  reaches it: the format picked by subscription, decode, the received counter, FeedHealth (the
  format's sequence stream), the latency check and a no-op sink.

Books come at two depths: 10 levels a side (the seed's recorded books carry the top levels) and
1000 a side (b25 publishes its whole book, which after a depth snapshot holds about that many).
Each figure is the best of ``repeat`` runs; they go to stdout and bench/results/formats.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from host.config import parse
from host.feeds import MarketDataFeed
from host.feeds.formats import FORMATS

RESULTS = Path(__file__).resolve().parent / "results" / "formats.json"
START = datetime(2024, 8, 8, 23, 54, 14, 87891, tzinfo=UTC)
MIDS = {"BTCUSDT": 61837.63, "ETHUSDT": 2680.01}
# The subscription each format is read from, as a b25 deployment's config names them.
SUBSCRIPTIONS = {"seed": "market:*", "b25-ticker": "market_data:*", "b25-book": "orderbook:*",
                 "b25-trade": "trades:*"}  # fmt: skip

Message = dict[str, Any]


def walk(count: int, seed: int = 7) -> Iterator[tuple[int, str, datetime, float]]:
    """(n, symbol, time, best bid) of ``count`` steps, the two symbols alternating, 200 us apart; n counts
    the symbol's own steps from 1 (its sequence)."""
    rng = random.Random(seed)
    mids = dict(MIDS)
    for i in range(count):
        symbol = "BTCUSDT" if i % 2 == 0 else "ETHUSDT"
        mids[symbol] = round(mids[symbol] + rng.choice((-0.01, 0.0, 0.0, 0.01)), 2)
        yield i // 2 + 1, symbol, START + timedelta(microseconds=200 * i), mids[symbol]


def _us(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _levels(bid: float, depth: int, rng: random.Random) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    bids = [(round(bid - 0.01 * k, 2), round(rng.uniform(0.001, 5.0), 5)) for k in range(depth)]
    asks = [(round(bid + 0.01 * (k + 1), 2), round(rng.uniform(0.001, 5.0), 5)) for k in range(depth)]
    return bids, asks


def seed_ticks(count: int) -> list[Message]:
    rng = random.Random(1)
    return [{"symbol": s, "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "sequence": n, "type": "tick",
             "bid_price": bid, "bid_size": round(rng.uniform(0.001, 5.0), 5), "ask_price": round(bid + 0.01, 2),
             "ask_size": round(rng.uniform(0.001, 5.0), 5), "last_price": bid}
            for n, s, at, bid in walk(count)]  # fmt: skip


def b25_tickers(count: int) -> list[Message]:
    return [{"symbol": s, "last_price": round(bid + 0.005, 3), "bid_price": bid, "ask_price": round(bid + 0.01, 2),
             "volume_24h": 0.0, "high_24h": 0.0, "low_24h": 0.0,
             "updated_at": at.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")} for _, s, at, bid in walk(count)]  # fmt: skip


def seed_books(count: int, depth: int) -> list[Message]:
    rng = random.Random(2)
    out = []
    for n, s, at, bid in walk(count):
        bids, asks = _levels(bid, depth, rng)
        out.append({"symbol": s, "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "sequence": n, "type": "book",
                    "bids": [list(level) for level in bids], "asks": [list(level) for level in asks]})  # fmt: skip
    return out


def b25_books(count: int, depth: int) -> list[Message]:
    rng = random.Random(2)
    out = []
    for n, s, at, bid in walk(count):
        bids, asks = _levels(bid, depth, rng)
        # serde writes the BTreeMap ascending on both sides, prices as their shortest round-trip text
        out.append({"symbol": s, "bids": {repr(p): q for p, q in sorted(bids)}, "asks": {repr(p): q for p, q in asks},
                    "last_update_id": 51_234_567 + 7 * n, "timestamp": _us(at), "initialized": True})  # fmt: skip
    return out


def seed_trades(count: int) -> list[Message]:
    rng = random.Random(3)
    return [{"symbol": s, "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "sequence": n, "type": "trade",
             "last_price": bid, "volume": round(rng.uniform(0.001, 0.5), 5)}
            for n, s, at, bid in walk(count)]  # fmt: skip


def b25_trades(count: int) -> list[Message]:
    rng = random.Random(3)
    return [{"symbol": s, "trade_id": 3_061_234_567 + n, "price": bid, "quantity": round(rng.uniform(0.001, 0.5), 5),
             "timestamp": _us(at) // 1000, "is_buyer_maker": rng.random() < 0.5}
            for n, s, at, bid in walk(count)]  # fmt: skip


def cases(count: int) -> list[tuple[str, list[tuple[str, list[Message]]]]]:
    """(message, [(format, messages), ...]) in the order reported: each seed message beside b25's."""
    deep = max(count // 50, 200)
    return [
        ("tick", [("seed", seed_ticks(count)), ("b25-ticker", b25_tickers(count))]),
        ("book 10x2", [("seed", seed_books(count, 10)), ("b25-book", b25_books(count, 10))]),
        ("book 1000x2", [("seed", seed_books(deep, 1000)), ("b25-book", b25_books(deep, 1000))]),
        ("trade", [("seed", seed_trades(count)), ("b25-trade", b25_trades(count))]),
    ]


def feed_for(name: str) -> MarketDataFeed:
    redis = {"marketDataChannels": [SUBSCRIPTIONS[name]], "marketDataFormats": {SUBSCRIPTIONS[name]: name}}
    if name == "seed":
        redis["marketDataFormats"] = {}
    return MarketDataFeed(parse({"redis": redis}, environ={}).redis, lambda event: None, registry=CollectorRegistry())


def runners(name: str, messages: list[Message]) -> tuple[Callable[[], None], Callable[[], None], int]:
    """The two timed paths over ``messages`` in format ``name``, and the mean payload size."""
    payloads = [orjson.dumps(m) for m in messages]
    decode, loads = FORMATS[name].decode, orjson.loads
    subscription = SUBSCRIPTIONS[name].encode()
    pairs = [(f"{SUBSCRIPTIONS[name][:-1]}{m['symbol']}".encode(), p) for m, p in zip(messages, payloads, strict=True)]

    def decode_all() -> None:
        for payload in payloads:
            decode(loads(payload))

    def handle_all() -> None:
        feed = feed_for(name)  # a fresh FeedHealth each run: every run sees the same sequences
        handler = feed._message
        for channel, payload in pairs:
            handler(channel, payload, subscription)
        assert feed.stats.received == len(payloads), feed.stats

    return decode_all, handle_all, round(sum(map(len, payloads)) / len(payloads))


def measure_pair(
    what: str, pair: list[tuple[str, list[Message]]], repeat: int
) -> list[dict[str, Any]]:  # fmt: skip
    """Both formats of one message, their runs interleaved so that a busy neighbour costs both alike."""
    timed = [(name, len(messages), *runners(name, messages)) for name, messages in pair]
    best: dict[tuple[str, str], float] = {}
    for _ in range(repeat):
        for name, count, decode_all, handle_all, _size in timed:
            for path, run in (("decode_us", decode_all), ("handler_us", handle_all)):
                started = time.perf_counter()
                run()
                elapsed = (time.perf_counter() - started) / count * 1e6
                best[name, path] = min(best.get((name, path), float("inf")), elapsed)
    return [{"message": what, "format": name, "bytes": size, "decode_us": round(best[name, "decode_us"], 2),
             "handler_us": round(best[name, "handler_us"], 2)} for name, _, _, _, size in timed]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rows = []
    print(f"{'message':<12} {'format':<11} {'bytes':>7} {'decode us':>10} {'handler us':>11}")
    for what, pair in cases(args.count):
        for row in measure_pair(what, pair, args.repeat):
            rows.append(row)
            print(f"{what:<12} {row['format']:<11} {row['bytes']:>7} {row['decode_us']:>10} {row['handler_us']:>11}")
    meta = {"python": platform.python_version(), "machine": platform.machine(), "count": args.count,
            "repeat": args.repeat}  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

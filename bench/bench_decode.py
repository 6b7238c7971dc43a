"""The seed's market data, bytes to event: orjson + ``decode_market`` against msgspec's shortcut.

    python -m bench.bench_decode [--count 20000] [--repeat 7]

``count`` messages of each shape (the seed's tick as the Go service writes it with nanosecond
times, a peer's tick with numbers as strings, a trade, a book of 10 levels a side, a candle),
stamped 200 us apart so the codec's per-second table sees a new second every 5000, are timed
through both paths in-process: ``existing`` is ``orjson.loads`` + ``sdk._codec.decode_market``;
``shortcut`` is ``host.feeds.fastjson.decode_seed`` (which falls back to the existing path for
anything it is not sure of; none of these). Microseconds per message, best of ``repeat``; to
stdout and bench/results/decode.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from host.feeds.fastjson import decode_seed
from sdk._codec import decode_market

RESULTS = Path(__file__).resolve().parent / "results" / "decode.json"
START_NS = 1_723_161_254_087_891_000


def _stamp(i: int) -> str:
    ns = START_NS + i * 200_000
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def _shapes(i: int) -> dict[str, dict[str, Any]]:
    head = {"symbol": "BTCUSDT", "timestamp": _stamp(i), "sequence": i + 1}
    mid = 61837.63 + (i % 50) * 0.01
    return {
        "tick": {**head, "type": "tick", "bid_price": mid, "bid_size": 3.5, "ask_price": mid + 0.01, "ask_size": 1.2},
        "tick, numbers as strings": {**head, "type": "TICK", "bid_price": f"{mid:.2f}", "bid_size": "3.5",
                                     "ask_price": f"{mid + 0.01:.2f}", "ask_size": "1.2"},
        "trade": {**head, "type": "trade", "last_price": mid, "volume": 0.25, "volume_quote": mid / 4, "side": "buy"},
        "book, 10 levels a side": {**head, "type": "book", "bids": [[mid - k * 0.01, 1.0 + k] for k in range(10)],
                                   "asks": [[mid + 0.01 + k * 0.01, 2.0 + k] for k in range(10)]},
        "candle": {**head, "type": "candle", "open": mid, "high": mid + 5, "low": mid - 5, "close": mid + 1,
                   "volume": 12.5},
    }  # fmt: skip


def _best(run: Callable[[], object], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return round(best / count * 1e6, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    per_shape: dict[str, list[bytes]] = {}
    for i in range(args.count):
        for name, message in _shapes(i).items():
            per_shape.setdefault(name, []).append(orjson.dumps(message))
    rows = []
    for name, payloads in per_shape.items():
        assert all(decode_seed(p) == decode_market(orjson.loads(p)) for p in payloads[:100]), name
        existing = _best(lambda p=payloads: [decode_market(orjson.loads(x)) for x in p], args.count, args.repeat)
        shortcut = _best(lambda p=payloads: [decode_seed(x) for x in p], args.count, args.repeat)
        rows.append({"shape": name, "existing_us": existing, "shortcut_us": shortcut,
                     "ratio": round(shortcut / existing, 2)})  # fmt: skip
        print(f"{name:>26}: existing {existing:6.2f} us, shortcut {shortcut:6.2f} us ({rows[-1]['ratio']}x)")
    RESULTS.parent.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "count": args.count, "repeat": args.repeat}
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

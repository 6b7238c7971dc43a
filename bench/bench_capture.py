"""Crash capture's costs: keeping the events (per batch, the hot path) and writing a capture (per failure).

Not a test: from the repository root run ``python -m bench.bench_capture``. Prints one line per
figure and writes bench/results/capture.json.

- ``keep``: ``StrategyCapture.sent`` for a batch of 1 and of 256 ticks (encoded once, as the
  supervisor's ``publish`` does), into a full ring of 2048 (the default ``engine.captureEvents``):
  per-batch time, best of 5 runs of 20,000 (1-tick) / 2,000 (256-tick) batches, garbage collector off.
- ``ring_bytes``: what a full ring holds, ``EventRing.memory_bytes`` (encoded bytes + deque slots),
  and Python's own size of one tick item (``sys.getsizeof``, its object header included).
- ``write``: ``CaptureStore.write`` of a full ring (decode 2048 ticks, JSON, write, prune) into a
  temporary folder: median of 20 writes. It runs off the event loop (``asyncio.to_thread``) and at
  most once per failure kind per strategy per ``engine.captureInterval``.
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from host.clock import SystemClock
from host.supervisor.capture import CapturePolicy, CaptureStore, StrategyCapture
from protocol import wire
from sdk.events import Tick

RESULTS = Path(__file__).resolve().parent / "results" / "capture.json"
T0 = 1_733_400_000_000_000_000


def _items(count: int) -> list[bytes]:
    return [
        wire.encode_event_item(Tick(symbol="BTCUSDT", timestamp_ns=T0 + i, bid_price=61837.63 + i * 0.01,
                                    bid_size=3.5, ask_price=61837.64 + i * 0.01, ask_size=1.2, sequence=i))
        for i in range(count)
    ]  # fmt: skip


def _keep_us(batch: list[bytes], batches: int, capture: StrategyCapture) -> float:
    best = float("inf")
    for _ in range(5):
        gc.disable()
        started = time.perf_counter_ns()
        for _ in range(batches):
            capture.sent(batch)
        elapsed = time.perf_counter_ns() - started
        gc.enable()
        best = min(best, elapsed / batches / 1000)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store = CaptureStore(CapturePolicy(directory=Path(scratch), files=5), time.time_ns)
        capture = StrategyCapture(store, SystemClock())
        full = _items(2048)
        capture.sent(full)
        keep_1 = _keep_us(full[:1], 20_000, capture)
        keep_256 = _keep_us(full[:256], 2_000, capture)
        ring_bytes = capture.ring.memory_bytes()
        writes = []
        for _ in range(20):
            started = time.perf_counter_ns()
            store.write({"kind": "error"}, "bench", "error", capture.ring.items())
            writes.append((time.perf_counter_ns() - started) / 1e6)
        size = max(p.stat().st_size for p in (Path(scratch) / "bench").iterdir())
    figures = {
        "keep_1_tick_batch_us": round(keep_1, 3), "keep_256_tick_batch_us": round(keep_256, 3),
        "ring_bytes_2048_ticks": ring_bytes, "tick_item_getsizeof": sys.getsizeof(full[0]),
        "write_2048_ticks_ms_median": round(statistics.median(writes), 2), "capture_file_bytes": size,
        "python": platform.python_version(), "machine": platform.machine(),
    }  # fmt: skip
    for key, value in figures.items():
        print(f"{key:32} {value}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()

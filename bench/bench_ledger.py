"""Latency of the ledger's write path on this machine: journal, transition, record_fill, and a bare fsync.

    python -m bench.bench_ledger [--ops 5000] [--dir PATH]

Each figure is one call of the real ``Ledger`` on a file in ``--dir`` (default: the system temp
dir; put it on the disk the host will use, since the figure is mostly that disk's fsync). Every
write is one transaction committed with ``synchronous=FULL`` in WAL mode, so the floor of each
write is one fsync of the WAL: the ``fsync`` row measures exactly that floor (a 4 KiB append and
``os.fsync``) on the same folder. ``record_fill`` fills a journaled order (found by client id) and
updates its position, daily P&L and order; ``record_fill_dup`` is a redelivered fill (stored once,
nothing else written). The first 5 % of each series is dropped as warm-up. Figures go to stdout
and to bench/results/ledger.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import percentile
from host.ledger import Ledger
from host.orders import OrderIntent, OrderStatus
from sdk.events import Fill, OrderType, Side

RESULTS = Path(__file__).resolve().parent / "results" / "ledger.json"
T0 = 1_704_153_600_000_000_000


def intent(n: int) -> OrderIntent:
    side = Side.BUY if n % 3 else Side.SELL
    return OrderIntent(f"o{n}", f"s{n % 4}", f"SYM{n % 8}", side, OrderType.LIMIT, 1.0 + n % 3, price=100.0)


def fill(n: int) -> Fill:
    side = Side.BUY if n % 3 else Side.SELL
    return Fill(
        fill_id=f"f{n}",
        order_id=f"o{n}",
        symbol=f"SYM{n % 8}",
        side=side,
        price=100.0 + n % 7,
        quantity=1.0 + n % 3,
        timestamp_ns=T0 + n * 1_000_000,
        fee=0.01,
    )


def accepted(n: int) -> tuple[str, OrderStatus, int]:
    return f"o{n}", OrderStatus.ACCEPTED, T0 + n


def series(ops: int, call: Callable[[int], object]) -> list[int]:
    samples = []
    for n in range(ops):
        start = time.perf_counter_ns()
        call(n)
        samples.append(time.perf_counter_ns() - start)
    return samples[ops // 20 :]


def summary(name: str, samples: list[int]) -> dict[str, Any]:
    ordered = sorted(samples)

    def pct(q: float) -> float:
        return round(percentile(ordered, q) / 1000, 1)

    return {
        "op": name, "n": len(ordered), "p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99),
        "max_us": round(ordered[-1] / 1000, 1), "mean_us": round(statistics.fmean(ordered) / 1000, 1),
    }  # fmt: skip


def fsync_floor(folder: Path, ops: int) -> list[int]:
    block = b"x" * 4096
    fd = os.open(folder / "fsync.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(_: int) -> None:
        os.write(fd, block)
        os.fsync(fd)

    try:
        return series(ops, append)
    finally:
        os.close(fd)


def measure(folder: Path, ops: int) -> list[dict[str, Any]]:
    rows = [summary("fsync", fsync_floor(folder, ops))]
    with Ledger.open(folder / "ledger.db") as ledger:
        rows.append(summary("journal", series(ops, lambda n: ledger.journal(intent(n), T0 + n))))
        rows.append(summary("transition", series(ops, lambda n: ledger.transition(*accepted(n)))))
        rows.append(summary("record_fill", series(ops, lambda n: ledger.record_fill(fill(n), T0 + n))))
        rows.append(summary("record_fill_dup", series(ops, lambda n: ledger.record_fill(fill(n), T0 + n))))
        rows.append(summary("positions", series(ops, lambda _: ledger.positions())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-ledger-") as tmp:
        rows = measure(Path(tmp), args.ops)
        folder = str(Path(tmp).parent)
    print(f"{'op':>16} {'n':>6} {'p50 us':>9} {'p90 us':>9} {'p99 us':>9} {'max us':>9} {'mean us':>9}")
    for r in rows:
        print(
            f"{r['op']:>16} {r['n']:>6} {r['p50_us']:>9} {r['p90_us']:>9} {r['p99_us']:>9} {r['max_us']:>9} "
            f"{r['mean_us']:>9}"
        )
    meta = {
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "machine": platform.machine(),
        "cpus": os.cpu_count(), "dir": folder, "journal_mode": "wal", "synchronous": "full",
    }  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

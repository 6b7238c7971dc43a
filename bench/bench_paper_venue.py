"""Orders per second and submit latency through ``GrpcVenue`` -> ``PaperVenueServer`` over loopback TCP.

    python -m bench.bench_paper_venue [--orders 5000] [--concurrency 1 8 32]

Market orders (alternating buy/sell, each a new signal id) against one static touch with unlimited
size (``fill_at_touch_size=False``), so every order is a full fill: the figure is the whole path
of a live submit -- intent -> protobuf -> gRPC -> servicer -> matching -> fill -> position book ->
reply -> ``VenueReply`` -- with no market data racing it. Two layouts:

- ``process``: the server in its own Python process (as ``strategy-engine paper-venue`` runs it);
- ``inline``: server and client on one event loop, sharing one core's worth of Python.

For each layout and concurrency (orders in flight at once from one ``GrpcVenue``): orders/s over
the timed run and p50/p90/p99/max of one ``submit`` (send to reply). 200 untimed orders warm each
run up. Results go to stdout as a table and to bench/results/paper_venue.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import percentile
from host.clock import SystemClock
from host.config import GrpcConfig
from host.execution.grpc_venue import GrpcVenue
from host.execution.matching import MatchingEngine
from host.execution.paper import PaperVenueServer, paper_id_prefix
from host.orders import OrderIntent
from sdk.events import OrderType, Side, Tick

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "paper_venue.json"
SYMBOL = "BTCUSDT"
TOUCH = Tick(symbol=SYMBOL, timestamp_ns=1, bid_price=99.0, bid_size=1.0, ask_price=101.0, ask_size=1.0)
WARMUP = 200


def new_server() -> PaperVenueServer:
    engine = MatchingEngine(fee_rate=0.001, clock=SystemClock(), fill_at_touch_size=False, id_prefix=paper_id_prefix())
    server = PaperVenueServer(engine)
    server.on_market(TOUCH)
    return server


async def serve() -> None:
    """The ``process`` layout's server: print the address, serve until stdin closes."""
    server = new_server()
    address = await server.start()
    print(f"ADDRESS {address}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop(0.5)


def intents(run: str, count: int) -> list[OrderIntent]:
    sides = (Side.BUY, Side.SELL)
    return [OrderIntent(f"{run}-{i}", "bench", SYMBOL, sides[i % 2], OrderType.MARKET, 0.01) for i in range(count)]


async def drive(venue: GrpcVenue, orders: list[OrderIntent], concurrency: int) -> tuple[float, list[int]]:
    """Submit every order with ``concurrency`` in flight; return (elapsed s, per-submit ns)."""
    samples: list[int] = []
    queue = iter(orders)

    async def worker() -> None:
        for intent in queue:
            started = time.perf_counter_ns()
            reply = await venue.submit(intent)
            samples.append(time.perf_counter_ns() - started)
            if reply.filled_quantity != intent.quantity:
                raise RuntimeError(f"{intent.client_order_id}: expected a full fill, got {reply}")

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return time.perf_counter() - started, samples


def row(layout: str, concurrency: int, elapsed: float, samples: list[int]) -> dict[str, Any]:
    samples.sort()

    def pct(q: float) -> float:
        return round(percentile(samples, q) / 1000, 1)

    return {
        "layout": layout, "concurrency": concurrency, "orders": len(samples),
        "orders_per_s": round(len(samples) / elapsed), "p50_us": pct(0.5), "p90_us": pct(0.9),
        "p99_us": pct(0.99), "max_us": round(samples[-1] / 1000, 1),
        "mean_us": round(statistics.fmean(samples) / 1000, 1),
    }  # fmt: skip


async def measure(layout: str, address: str, orders: int, levels: list[int]) -> list[dict[str, Any]]:
    config = GrpcConfig(order_execution_address=address, timeout=5.0, max_retries=0, breaker_failures=1_000_000)
    venue = GrpcVenue(config, SystemClock())
    rows = []
    try:
        for concurrency in levels:
            run = f"{layout}-c{concurrency}"
            await drive(venue, intents(f"{run}-warm", WARMUP), concurrency)
            elapsed, samples = await drive(venue, intents(run, orders), concurrency)
            rows.append(row(layout, concurrency, elapsed, samples))
            print_row(rows[-1])
    finally:
        await venue.close()
    return rows


async def inline(orders: int, levels: list[int]) -> list[dict[str, Any]]:
    server = new_server()
    address = await server.start()
    try:
        return await measure("inline", address, orders, levels)
    finally:
        await server.stop(0.5)


async def in_process(orders: int, levels: list[int]) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_paper_venue", "--serve", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    try:
        address = await asyncio.wait_for(_address(proc.stdout), 20)
        return await measure("process", address, orders, levels)
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _address(stdout: asyncio.StreamReader) -> str:
    while line := (await stdout.readline()).decode():
        if line.startswith("ADDRESS "):
            return line.split()[1]
    raise RuntimeError("bench server exited before printing its address")


def print_row(r: dict[str, Any]) -> None:
    print(
        f"{r['layout']:>8} {r['concurrency']:>4} {r['orders']:>7} {r['orders_per_s']:>9} "
        f"{r['p50_us']:>9} {r['p90_us']:>9} {r['p99_us']:>9} {r['max_us']:>10}",
        flush=True,
    )


async def main_async(orders: int, levels: list[int]) -> None:
    load_before = os.getloadavg()[0]
    head = ("layout", "conc", "orders", "orders/s", "p50_us", "p90_us", "p99_us", "max_us")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (8, 4, 7, 9, 9, 9, 9, 10), strict=True)))
    rows = await in_process(orders, levels) + await inline(orders, levels)
    meta = {
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_avg_1m_before": round(load_before, 2),  # other work on a shared machine inflates every figure
    }  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"written to {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=5000, help="timed orders per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="orders in flight")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
    else:
        asyncio.run(main_async(args.orders, args.concurrency))


if __name__ == "__main__":
    main()

"""End to end: a publisher process drives a real redis-server with ticks; the host fans them out to
3 runners; tick -> signal latency and the highest sustained rate.

    python -m bench.bench_feed [--rates 1000 10000] [--ramp 20000 40000 60000 80000 100000] [--seconds 5]
                               [--lanes socket grpc]

Each rate is run on both paths for batches, side by side (``engine.dataLane``): the data lane
(``socket``) and the gRPC stream (``grpc``), with the ratios socket / grpc of p50 and p99.

The publisher stamps each tick with its wall-clock send time (``timestamp``) and a sequence; each
runner's strategy (bench/plugins/echo_sample) answers every 100th tick with a signal carrying that
timestamp; latency = arrival of the signal at the host - send time, so it covers Redis, decoding,
routing, the batch to the runner, the strategy and the way back; "arrive" is the first part alone
(publisher -> Redis -> the host's feed, for the same ticks). A rate counts as sustained when
the host received (nearly) every tick, every runner saw every tick (no conflation) and p99 stayed
under 5 ms. Figures: a table on stdout and bench/results/feed.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from bench.measure import cpu_seconds, percentile
from host.config import parse
from host.feeds.market import MarketDataFeed
from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, SupervisionSettings
from host.supervisor.supervisor import Supervisor
from sdk.events import Cancel, Position, Signal
from tests.servers import RedisServer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "feed.json"
RUNNERS = int(os.environ.get("BENCH_RUNNERS", "3"))
SAMPLE_EVERY = 100

_PUBLISHER = r"""
import json, socket, sys, time
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
# Raw RESP over one socket, payloads from a template: the publisher shares the 2 cores with
# everything it measures, so it spends about 1 us a tick instead of redis-py's ~25 us. A burst is
# one sendall, so its ticks are stamped with one send time (read once per burst).
sock = socket.create_connection(("127.0.0.1", port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
channel = b"market:btcusdt"
head = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n" % (len(channel), channel)
body = (b'{"symbol":"BTCUSDT","timestamp":"%s","sequence":%d,"type":"tick",'
        b'"bid_price":61837.63,"bid_size":3.5,"ask_price":61837.64,"ask_size":1.2}')
total = int(rate * seconds)
chunk = max(1, int(rate / 1000))  # small bursts, about 1000 a second
prefix_second, prefix = -1, ""
replies = 0
start = time.perf_counter()
sent = 0
while sent < total:
    due = start + sent / rate
    delay = due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    secs, nanos = divmod(time.time_ns(), 1_000_000_000)
    if secs != prefix_second:
        prefix_second, prefix = secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    stamp = b"%s.%09dZ" % (prefix.encode(), nanos)
    count = min(chunk, total - sent)
    payloads = [body % (stamp, seq) for seq in range(sent + 1, sent + count + 1)]
    sent += count
    parts = [b"%s$%d\r\n%s\r\n" % (head, len(payload), payload) for payload in payloads]
    sock.sendall(b"".join(parts))
    replies += len(parts)
    while replies > 10_000:  # read the integer replies now and then so neither side's buffer fills
        replies -= sock.recv(1 << 20).count(b"\r\n")
sock.settimeout(5)
while replies > 0:
    replies -= sock.recv(1 << 20).count(b"\r\n")
print(json.dumps({"sent": sent, "seconds": time.perf_counter() - start}))
"""


class _Recorder:
    def __init__(self) -> None:
        self.latencies_us: list[float] = []

    def signals(self, strategy_id: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        now = time.time_ns()
        for signal in signals:
            sent = signal.metadata.get("ts")
            if sent is not None:
                self.latencies_us.append((now - int(sent)) / 1000)

    def strategy_down(self, strategy_id: str, reason: str) -> None:
        pass

    def strategy_up(self, strategy_id: str) -> None:
        pass

    def positions(self, strategy_id: str) -> list[Position]:
        return []


def _pct(values: list[float], q: float) -> float:
    return round(percentile(sorted(values), q), 1) if values else float("nan")


async def _measure(redis_port: int, redis_pid: int, rate: float, seconds: float, lane: str) -> dict[str, Any]:
    recorder = _Recorder()
    settings = SupervisionSettings(
        plugins_dir=HERE / "plugins", outbox_capacity=65536, max_batch_events=4096, data_lane=lane
    )
    definitions = [
        StrategyDefinition(f"echo{i}", "echo_sample", "echo_sample", {"every": SAMPLE_EVERY}) for i in range(RUNNERS)
    ]
    supervisor = Supervisor(settings, definitions, recorder, metrics=EngineMetrics())
    config = parse({"redis": {"port": redis_port, "marketDataChannels": ["market:btcusdt"]}}, environ={})
    received = 0
    arrivals_us: list[float] = []  # publisher -> host, for the ticks the strategies echo

    def sink(event: Any) -> None:
        nonlocal received
        received += 1
        if event.sequence % SAMPLE_EVERY == 0:
            arrivals_us.append((time.time_ns() - event.timestamp_ns) / 1000)
        supervisor.publish(event)

    feed = MarketDataFeed(config.redis, sink)
    serving = asyncio.create_task(supervisor.run())
    feeding = asyncio.create_task(feed.run())
    await supervisor.started.wait()
    # Readiness (runners Ready, subscription confirmed) and quiescence (every batch answered) are
    # state on the supervisor and the feed with no event to wait on: these two loops look at it.
    async with asyncio.timeout(60):
        while not (supervisor.ready() and feed.connected):  # noqa: ASYNC110  (no event: see above)
            await asyncio.sleep(0.05)
    runner_pids = [s.pid for s in supervisor.status() if s.pid is not None]
    cpu_before = (time.process_time(), [cpu_seconds(pid) for pid in runner_pids])
    redis_before, children_before = cpu_seconds(redis_pid), _children_cpu()
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PUBLISHER, str(redis_port), str(rate), str(seconds), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await publisher.communicate()
    publisher_cpu = _children_cpu() - children_before  # the publisher is the only child reaped meanwhile
    published = json.loads(out)
    with contextlib.suppress(TimeoutError):  # the figures below tell what did not arrive
        async with asyncio.timeout(10):
            while received < published["sent"] or not supervisor.quiescent():  # noqa: ASYNC110  (no event: see above)
                await asyncio.sleep(0.01)
    statuses = supervisor.status()
    host_cpu = time.process_time() - cpu_before[0]
    redis_cpu = cpu_seconds(redis_pid) - redis_before
    runner_cpu = [cpu_seconds(pid) - before for pid, before in zip(runner_pids, cpu_before[1], strict=True)]
    feed.close()
    supervisor.close()
    await serving
    feeding.cancel()
    lat = recorder.latencies_us
    seen = [s.events_sent for s in statuses]
    conflated = sum(s.conflated + s.dropped for s in statuses)
    row = {
        "lane": lane, "target_rate": rate, "published": published["sent"],
        "publish_rate": round(published["sent"] / published["seconds"]), "received": received,
        "min_runner_events": min(seen), "conflated_or_dropped": conflated,
        "samples": len(lat), "p50_ms": round(_pct(lat, 0.5) / 1000, 3), "p90_ms": round(_pct(lat, 0.9) / 1000, 3),
        "p99_ms": round(_pct(lat, 0.99) / 1000, 3), "max_ms": round(max(lat, default=float("nan")) / 1000, 3),
    }  # fmt: skip
    row["arrival_p50_ms"] = round(_pct(arrivals_us, 0.5) / 1000, 3)
    row["arrival_p99_ms"] = round(_pct(arrivals_us, 0.99) / 1000, 3)
    row["batch_rtt_p50_ms"] = round(max((s.latency_p50_us or 0) for s in statuses) / 1000, 3)
    row["batch_rtt_p99_ms"] = round(max((s.latency_p99_us or 0) for s in statuses) / 1000, 3)
    batches = sum(s.batches for s in statuses)
    row["events_per_batch"] = round(sum(seen) / batches, 1) if batches else 0.0
    row["host_cpu_us_per_tick"] = round(host_cpu / max(received, 1) * 1e6, 1)
    row["runner_cpu_us_per_tick"] = round(sum(runner_cpu) / len(runner_cpu) / max(received, 1) * 1e6, 1)
    # Where the box's cores go: each part's CPU seconds per second of the run (1.0 = one core).
    span = max(published["seconds"], 1e-9)
    row["cores"] = {
        "host": round(host_cpu / span, 2), "runners": round(sum(runner_cpu) / span, 2),
        "redis": round(redis_cpu / span, 2), "publisher": round(publisher_cpu / span, 2),
    }  # fmt: skip
    row["sustained"] = (
        received >= 0.999 * published["sent"] and conflated == 0 and min(seen) >= received and row["p99_ms"] <= 5.0
    )
    return row


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """socket / grpc of p50 and p99 at each rate run on both lanes (below 1: the data lane is faster)."""
    out: dict[str, float] = {}
    for r in rows:
        other = [g for g in rows if g["lane"] == "grpc" and g["target_rate"] == r["target_rate"]]
        if r["lane"] != "socket" or not other:
            continue
        for key in ("p50_ms", "p99_ms"):
            if other[0][key]:
                out[f"{r['target_rate']:,.0f}/s {key}"] = round(r[key] / other[0][key], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 10000])
    parser.add_argument("--ramp", type=float, nargs="*", default=[20000, 40000, 60000, 80000, 100000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--lanes", nargs="+", default=["socket", "grpc"], choices=["socket", "grpc"])
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        try:
            for rate in [*args.rates, *args.ramp]:
                for lane in args.lanes:
                    assert server.proc is not None
                    rows.append(asyncio.run(_measure(server.port, server.proc.pid, rate, args.seconds, lane)))
                    print(rows[-1], flush=True)
        finally:
            server.stop()
    print(f"\n{'lane':>6} {'target/s':>9} {'sent/s':>8} {'received':>9} {'runner min':>10} {'conflated':>9} "
          f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>8} {'arrive p50':>10} {'ev/batch':>8} {'host us':>7} "
          f"{'runner us':>9} {'cores h/r/redis/pub':>20} sustained")  # fmt: skip
    for r in rows:
        print(f"{r['lane']:>6} {r['target_rate']:>9,.0f} {r['publish_rate']:>8,} {r['received']:>9,} "
              f"{r['min_runner_events']:>10,} {r['conflated_or_dropped']:>9,} {r['p50_ms']:>7} {r['p90_ms']:>7} "
              f"{r['p99_ms']:>7} {r['max_ms']:>8} "
              f"{r['arrival_p50_ms']:>10} {r['events_per_batch']:>8} {r['host_cpu_us_per_tick']:>7} "
              f"{r['runner_cpu_us_per_tick']:>9} {'/'.join(str(v) for v in r['cores'].values()):>20} "
              f"{'yes' if r['sustained'] else 'no'}")  # fmt: skip
    best = {lane: max((r["publish_rate"] for r in rows if r["sustained"] and r["lane"] == lane), default=0)
            for lane in args.lanes}  # fmt: skip
    for lane, rate in best.items():
        print(f"highest sustained rate, {lane}: {rate:,} ticks/s into {RUNNERS} runners")
    ratios = _ratios(rows)
    for name, value in ratios.items():
        print(f"socket / grpc, {name}: {value}")
    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "runners": RUNNERS,
        "sample_every": SAMPLE_EVERY,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows, "highest_sustained": best, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()

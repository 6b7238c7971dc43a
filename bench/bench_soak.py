"""Soak: the engine live for a long time at a steady market data rate, with misbehaving strategies; does
its memory level off?

    python -m bench.bench_soak [--minutes 30] [--rate 2000] [--sample-s 5] [--warmup-min M] [--out FILE]

What runs (all real, as an operator runs it; see tests/integration/operator_stack.py): a temporary
project folder with ``config.yaml`` and ``plugins/``; a redis-server and a nats-server on free ports;
``strategy-engine paper-venue`` (the paper order-execution service, gRPC) and ``strategy-engine run``
(live mode: Redis market data, NATS fills and positions, orders over gRPC to the paper venue) as
subprocesses; a publisher process sending ``--rate`` ticks a second in all (BTCUSDT and ETHUSDT
48.5 % each, SOLUSDT 3 %), a trending random walk stamped with the wall clock.

Strategies: the three built-ins on BTCUSDT and ETHUSDT (momentum on tick mids over ~3 s, market
making, scalping); ``flaky`` on SOLUSDT (60 ticks/s at 2,000/s), which raises on every 300th tick
(12 errors a minute, under the breaker's 20, so it keeps running and erroring) and asks on every 5th
tick for a 5-coin order that risk refuses (max_quantity: 12 refusals a second); ``crashloop`` on
SOLUSDT, whose runner exits (code 70) on its 4,000th tick (~67 s), is restarted by its breaker and
does it again for as long as the run lasts (``engine.restartBudget`` is raised to 1,000,000 so the
budget never holds it open). Risk: 100 orders/s and 3,000/min for all strategies (the default 10/s
would have the built-ins charged order_flood and restarted over and over at this rate); the other
limits and engine settings are the defaults.

Sampled every ``--sample-s`` seconds: RSS of the host (the ``strategy-engine run`` process) and of
the paper venue, the runners (how many processes are the host's children, and their RSS together),
open file descriptors of the host and the venue, the ledger's size (file + WAL), the bytes of both
logs, and from /status the orders, fills, refusals by risk and restarts so far.

Figures: after a warm-up (``--warmup-min``, default a third of the run), a least-squares line through
each series: the RSS slope in MiB per 10 minutes and in % of the RSS per 10 minutes (the verdict;
target: host RSS flat within +-5 % per 10 minutes), and the change over the window in % of the RSS.
Bounded growth that is not a leak: the paper venue remembers finished orders for 10 minutes
(``MatchingEngine``), so its RSS levels off ~10 minutes in; in the host, risk's last 10,000 client
order ids fill in the first ~10 minutes (~1.3 MB), and the fill feed's last 100,000 fill ids (~16 MB
at most) take hours at this fill rate (~3 a second: ~0.5 MB per 10 minutes). A markdown report goes
to ``bench/results/soak-<date>-<minutes>min.md`` (or ``--out``), with the samples; the raw samples are
beside it as JSON. Real market data is not used (nor ever copied into the project).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tests.integration.operator_stack import engine_command, environment, poll_until
from tests.servers import NatsServer, RedisServer, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
MIB = 1024 * 1024
SHARES = {"BTCUSDT": 0.485, "ETHUSDT": 0.485, "SOLUSDT": 0.03}
PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 2_600.0, "SOLUSDT": 150.0}
BUILTINS = ("momentum", "market_making", "scalping")
TARGET_PCT = 5.0

FLAKY = '''"""Soak plugin: raises on every ``every``-th tick it gets (an error charged to it; its runner lives),
and asks for an order too big for risk every ``oversize_every``-th tick (refused: max_quantity)."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import Signal, Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class FlakyConfig(StrategyConfig):
    every: int = 300
    oversize_every: int = 5
    oversize: float = 5.0


class Flaky(Strategy[FlakyConfig]):
    name = "flaky"
    Config = FlakyConfig

    def __init__(self, config: FlakyConfig) -> None:
        super().__init__(config)
        self.seen = 0

    def on_tick(self, tick: Tick) -> None:
        self.seen += 1
        if self.config.oversize_every and self.seen % self.config.oversize_every == 0:
            self.emit(Signal(symbol=tick.symbol, side="buy", quantity=self.config.oversize))
        if self.seen % self.config.every == 0:
            raise RuntimeError(f"flaky: tick {self.seen} of {tick.symbol}, as every {self.config.every}th one")


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[FlakyConfig]]]:
    return [Flaky]
'''

CRASHLOOP = '''"""Soak plugin: its runner exits (code 70) on the ``after``-th tick; restarted, it does it again."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sdk import Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class CrashConfig(StrategyConfig):
    after: int = 4000


class CrashLoop(Strategy[CrashConfig]):
    name = "crashloop"
    Config = CrashConfig

    def __init__(self, config: CrashConfig) -> None:
        super().__init__(config)
        self.seen = 0

    def on_tick(self, tick: Tick) -> None:
        self.seen += 1
        if self.seen >= self.config.after:
            os._exit(70)


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[CrashConfig]]]:
    return [CrashLoop]
'''

# Raw RESP over one socket, payloads from a template (as bench_feed's publisher): ~5 us a tick, so the
# publisher takes little of the 2 cores it shares with everything it measures. A trending random walk:
# 10 bps a second of noise, a drift of 8 bps a second whose sign flips every 20 s and a slow pull back
# to the start price, so momentum, market making and scalping all find something to do.
_PUBLISHER = r"""
import json, math, random, socket, sys, time
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
shares, prices = json.loads(sys.argv[4]), json.loads(sys.argv[5])
rng = random.Random(7)
sock = socket.create_connection(("127.0.0.1", port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
symbols = list(shares)
weights = [shares[s] for s in symbols]
channels = {s: f"market:{s.lower()}".encode() for s in symbols}
heads = {s: b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n" % (len(c), c) for s, c in channels.items()}
body = ('{"symbol":"%s","timestamp":"%s.%09dZ","sequence":%d,"type":"tick","bid_price":%.2f,"bid_size":%.3f,'
        '"ask_price":%.2f,"ask_size":%.3f,"last_price":%.2f}')
mid = dict(prices)
seq = dict.fromkeys(symbols, 0)
total = int(rate * seconds)
chunk = max(1, int(rate / 500))
prefix_second, prefix, replies, sent = -1, "", 0, 0
start = time.perf_counter()
while sent < total:
    delay = start + sent / rate - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    parts = []
    for symbol in rng.choices(symbols, weights, k=min(chunk, total - sent)):
        sent += 1
        seq[symbol] += 1
        per_s = rate * shares[symbol]  # this symbol's ticks a second: volatility and drift are per second
        drift = (8e-4 if int(time.time() / 20 + len(symbol)) % 2 else -8e-4) / per_s
        pull = 0.01 * math.log(prices[symbol] / mid[symbol]) / per_s  # back toward the start price, slowly
        mid[symbol] *= math.exp(drift + pull + 1e-3 / math.sqrt(per_s) * rng.gauss(0, 1))
        half = max(0.01, round(mid[symbol] * 5e-5, 2))
        secs, nanos = divmod(time.time_ns(), 1_000_000_000)
        if secs != prefix_second:
            prefix_second, prefix = secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
        last = round(mid[symbol], 2)
        payload = (body % (symbol, prefix, nanos, seq[symbol], last - half, rng.uniform(0.5, 5), last + half,
                           rng.uniform(0.5, 5), last)).encode()
        parts.append(heads[symbol] + b"$%d\r\n%s\r\n" % (len(payload), payload))
    sock.sendall(b"".join(parts))
    replies += len(parts)
    while replies > 10_000:
        replies -= sock.recv(1 << 20).count(b"\r\n")
print(json.dumps({"sent": sent, "seconds": time.perf_counter() - start}), flush=True)
"""


@dataclass
class Sample:
    t_min: float
    host_rss_mib: float
    venue_rss_mib: float
    runners: int
    runners_rss_mib: float
    host_fds: int
    venue_fds: int
    ledger_mib: float
    engine_log_mib: float
    venue_log_mib: float
    orders: int
    fills: int
    rejected: int
    restarts: int
    errors: int


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    published: dict[str, Any] = field(default_factory=dict)  # the publisher's own count: sent, seconds
    events: Counter[str] = field(default_factory=Counter)  # the engine's log lines by event
    codes: dict[str, int | None] = field(default_factory=dict)  # exit codes at SIGTERM


# --- the project and its processes ------------------------------------------------------------------


def config(redis_port: int, nats_url: str, http_port: int) -> dict[str, Any]:
    momentum = {"price_source": "tick", "lookback_period": 3000, "threshold": 0.002}  # ~3 s of ticks, 20 bps
    pair = ["BTCUSDT", "ETHUSDT"]
    return {
        "server": {"port": http_port},
        "redis": {"port": redis_port, "marketDataChannels": [f"market:{s.lower()}" for s in SHARES]},
        "nats": {"url": nats_url},
        "grpc": {"orderExecutionAddress": f"127.0.0.1:{free_port()}"},
        "engine": {"mode": "live", "pluginsDir": "plugins", "ledgerPath": "ledger.sqlite", "restartBudget": 1_000_000},
        # Room for the built-ins' order rate on 2 busy symbols (see the module docstring).
        "risk": {"maxOrdersPerSecond": 100, "maxOrdersPerMinute": 3000},
        "logging": {"level": "info", "format": "json"},
        "strategies": {
            "momentum": {"symbols": pair, "parameters": momentum},
            "market_making": {"symbols": pair, "parameters": {"requote_threshold_bps": 10.0}},
            "scalping": {"symbols": pair},
            "flaky": {"symbols": ["SOLUSDT"], "parameters": {"every": 300}},
            "crashloop": {"symbols": ["SOLUSDT"], "parameters": {"after": 4000}},
        },
    }


def project(folder: Path, servers: tuple[RedisServer, NatsServer]) -> tuple[Path, int]:
    """Lay out config.yaml and plugins/ (the built-ins copied, the two misbehaving plugins written)."""
    plugins = folder / "plugins"
    for name in BUILTINS:
        shutil.copytree(ROOT / "plugins" / name, plugins / name, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    for name, source in (("flaky", FLAKY), ("crashloop", CRASHLOOP)):
        (plugins / name).mkdir(parents=True)
        (plugins / name / "__init__.py").write_text(source)
    http_port = free_port()
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config(servers[0].port, servers[1].url, http_port), sort_keys=False))
    return path, http_port


def start(folder: Path, path: Path, command: str) -> subprocess.Popen[bytes]:
    with open(folder / f"{command}.log", "wb") as log:
        return subprocess.Popen(
            [*engine_command(), command, "--config", str(path)], cwd=folder, env=environment(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes] | None) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(10)


def status(http_port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/status", timeout=5) as reply:
            data: dict[str, Any] = json.loads(reply.read())
            return data
    except (OSError, urllib.error.URLError, json.JSONDecodeError):
        return None


# --- measuring -----------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def size_mib(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / MIB


def sample(t0: float, folder: Path, host: int, venue: int, http_port: int) -> Sample:
    runners = children(host)
    now = status(http_port) or {"strategies": [], "risk": {}}
    strategies = now["strategies"]
    ledger = folder / "ledger.sqlite"
    return Sample(
        t_min=round((time.monotonic() - t0) / 60, 3), host_rss_mib=round(rss_mib(host), 2),
        venue_rss_mib=round(rss_mib(venue), 2), runners=len(runners),
        runners_rss_mib=round(sum(rss_mib(pid) for pid in runners), 1), host_fds=fds(host), venue_fds=fds(venue),
        ledger_mib=round(size_mib(ledger, ledger.with_name("ledger.sqlite-wal")), 3),
        engine_log_mib=round(size_mib(folder / "run.log"), 3),
        venue_log_mib=round(size_mib(folder / "paper-venue.log"), 3),
        orders=sum(s.get("orders", 0) for s in strategies), fills=sum(s.get("fills", 0) for s in strategies),
        rejected=int(now["risk"].get("rejected", 0)), restarts=sum(s.get("restarts", 0) for s in strategies),
        errors=sum(sum(s.get("breaker", {}).get("failures_by_kind", {}).values()) for s in strategies),
    )  # fmt: skip


# --- figures -------------------------------------------------------------------------------------


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope and mean of ys over xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return slope, my


def trend(samples: list[Sample], series: str, warmup_min: float) -> dict[str, float]:
    """Slope per 10 minutes of ``series`` after the warm-up, as a figure and as % of its mean."""
    kept = [s for s in samples if s.t_min >= warmup_min]
    if len(kept) < 3:
        return {}
    xs, ys = [s.t_min for s in kept], [float(getattr(s, series)) for s in kept]
    slope, mean = fit(xs, ys)
    span = xs[-1] - xs[0]
    half = len(ys) // 2
    first, second = sorted(ys[:half])[half // 2], sorted(ys[half:])[(len(ys) - half) // 2]
    return {
        "mean": mean, "per_10min": slope * 10, "pct_per_10min": slope * 10 / mean * 100 if mean else 0.0,
        "window_min": span, "window_pct": slope * span / mean * 100 if mean else 0.0,
        "median_first_half": first, "median_second_half": second, "start": ys[0], "end": ys[-1],
    }  # fmt: skip


def log_events(path: Path) -> Counter[str]:
    events: Counter[str] = Counter()
    with open(path, errors="replace") as lines:
        for line in lines:
            try:
                events[json.loads(line).get("event", "?")] += 1
            except (json.JSONDecodeError, AttributeError):
                events["(not JSON)"] += 1
    return events


SERIES = (
    ("host RSS (strategy-engine run)", "host_rss_mib", "MiB"),
    ("paper venue RSS", "venue_rss_mib", "MiB"),
    ("runners' RSS, together", "runners_rss_mib", "MiB"),
    ("host open fds", "host_fds", ""),
    ("venue open fds", "venue_fds", ""),
    ("runner processes", "runners", ""),
    ("ledger (file + WAL)", "ledger_mib", "MiB"),
    ("engine log", "engine_log_mib", "MiB"),
    ("venue log", "venue_log_mib", "MiB"),
)
READING = (
    "How to read it. The verdict is the slope of the least-squares line through the host's RSS after the "
    "warm-up, per 10 minutes, in % of its mean there (target: within +-5 %); a short window gives a noisy "
    "slope, and the first minutes of any process grow (allocator arenas, sqlite's page cache, bounded id "
    "sets filling), so only a run of 30 minutes or more, with 10 of warm-up, says much. The paper venue keeps finished "
    "orders for 10 minutes, so its RSS rises for the first 10 minutes by design: a warm-up of 10 minutes "
    "or more leaves that out (a run shorter than ~20 minutes cannot). The runners' RSS and the runner "
    "count dip each time `crashloop` is restarted. The ledger grows with the order history (sqlite's WAL "
    "starts at ~4 MiB); `engine.ledgerRetentionDays` bounds it. Log growth is what the event table says."
)


def report(args: argparse.Namespace, run: Run, began: datetime) -> str:
    samples = run.samples
    return "\n".join([
        f"# Soak: {args.minutes:g} min live at {args.rate:,.0f} market messages/s",
        "",
        f"Run {began:%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}): `python -m bench.bench_soak --minutes {args.minutes:g} "
        f"--rate {args.rate:g} --sample-s {args.sample_s:g} --warmup-min {args.warmup_min:g}`. What ran is in "
        "the docstring of `bench/bench_soak.py`: the three built-ins, `flaky` (raises every 300th tick, asks "
        "for orders risk refuses), `crashloop` (its runner exits every 4,000th tick and is restarted), live "
        "against `strategy-engine paper-venue` over gRPC, redis-server and nats-server.",
        "",
        f"**{verdict(samples, args.warmup_min)}**",
        "",
        totals(run),
        "",
        "## Trends after the warm-up (least squares)",
        "",
        "| series | at warm-up end | at the end | slope / 10 min | % of mean / 10 min | change over the window "
        "| median, 1st half -> 2nd half |",
        "|---|---|---|---|---|---|---|",
        *trend_rows(samples, args.warmup_min),
        "",
        READING,
        "",
        "## Log events of the engine (whole run)",
        "",
        "| event | lines |",
        "|---|---|",
        *(f"| `{name}` | {count:,} |" for name, count in run.events.most_common(15)),
        "",
        "## Samples (one a minute)",
        "",
        "| min | host MiB | venue MiB | runners | runners MiB | host fds | venue fds | ledger MiB | log MiB "
        "| orders | fills | refused | restarts |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *sample_rows(samples),
    ]) + "\n"  # fmt: skip


def verdict(samples: list[Sample], warmup_min: float) -> str:
    rss = trend(samples, "host_rss_mib", warmup_min)
    if not rss:
        return "No verdict: too few samples after the warm-up."
    flat = "FLAT" if abs(rss["pct_per_10min"]) <= TARGET_PCT else "NOT FLAT"
    return (
        f"{flat}: host RSS slope after the warm-up {rss['per_10min']:+.2f} MiB per 10 min = "
        f"{rss['pct_per_10min']:+.2f} % of its {rss['mean']:.1f} MiB per 10 min (target: within +-{TARGET_PCT:g} %); "
        f"{rss['window_pct']:+.2f} % over the {rss['window_min']:.1f} min measured."
    )


def totals(run: Run) -> str:
    last, sent, seconds = run.samples[-1], run.published.get("sent", 0), run.published.get("seconds", 0.0)
    per_10 = 10 / last.t_min if last.t_min else 0.0
    return (
        f"Published {sent:,} ticks in {seconds:.0f} s ({sent / max(seconds, 1.0):,.0f}/s). At the end: "
        f"{last.orders:,} orders sent, {last.fills:,} fills, {last.rejected:,} orders refused by risk, "
        f"{last.restarts:,} runner restarts, {last.errors:,} strategy failures charged; exit codes: engine "
        f"{run.codes.get('engine')}, venue {run.codes.get('venue')}. Per 10 minutes over the whole run: "
        f"ledger +{last.ledger_mib * per_10:.2f} MiB, engine log +{last.engine_log_mib * per_10:.2f} MiB, "
        f"{last.orders * per_10:,.0f} orders, {last.fills * per_10:,.0f} fills, {last.rejected * per_10:,.0f} "
        "refusals."
    )


def trend_rows(samples: list[Sample], warmup_min: float) -> list[str]:
    rows = []
    for name, series, unit in SERIES:
        t = trend(samples, series, warmup_min)
        if t:
            rows.append(
                f"| {name} | {t['start']:.2f} {unit} | {t['end']:.2f} {unit} | {t['per_10min']:+.3f} {unit} | "
                f"{t['pct_per_10min']:+.2f} % | {t['window_pct']:+.2f} % | "
                f"{t['median_first_half']:.2f} -> {t['median_second_half']:.2f} |"
            )
    return rows


def sample_rows(samples: list[Sample]) -> list[str]:
    rows, shown = [], -1.0
    for s in samples:
        if s.t_min - shown >= 1.0 or s is samples[-1]:
            shown = s.t_min
            rows.append(
                f"| {s.t_min:.1f} | {s.host_rss_mib:.1f} | {s.venue_rss_mib:.1f} | {s.runners} | "
                f"{s.runners_rss_mib:.0f} | {s.host_fds} | {s.venue_fds} | {s.ledger_mib:.2f} | "
                f"{s.engine_log_mib:.2f} | {s.orders:,} | {s.fills:,} | {s.rejected:,} | {s.restarts} |"
            )
    return rows


# --- the run -------------------------------------------------------------------------------------


def soak(args: argparse.Namespace, folder: Path) -> Run:
    """Start everything, feed and sample for ``args.minutes``, stop everything; what was measured."""
    redis_server, nats_server = RedisServer(folder / "redis"), NatsServer(folder / "nats")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    run = Run()
    try:
        redis_server.start()
        nats_server.start()
        path, http_port = project(folder, (redis_server, nats_server))
        procs["venue"] = start(folder, path, "paper-venue")
        procs["engine"] = start(folder, path, "run")
        poll_until(lambda: serving(procs["engine"], http_port, folder), 60, "the built-in strategies running")
        procs["publisher"] = subprocess.Popen(
            [sys.executable, "-c", _PUBLISHER, str(redis_server.port), str(args.rate), str(args.minutes * 60),
             json.dumps(SHARES), json.dumps(PRICES)], stdout=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        measure(args, run, folder, procs, http_port)
    finally:
        publisher = procs.get("publisher")
        if publisher is not None and publisher.poll() is None:
            os.killpg(publisher.pid, signal.SIGKILL)
            publisher.wait(10)
        run.codes = {"engine": stop(procs.get("engine")), "venue": stop(procs.get("venue"))}
        nats_server.stop()
        redis_server.stop()
    if (folder / "run.log").exists():
        run.events = log_events(folder / "run.log")
    return run


def serving(engine: subprocess.Popen[bytes], http_port: int, folder: Path) -> bool:
    if engine.poll() is not None:
        raise SystemExit(f"the engine exited with {engine.returncode}: see {folder / 'run.log'}")
    now = status(http_port)
    return now is not None and all(s["state"] == "running" for s in now["strategies"] if s["id"] in BUILTINS)


def measure(
    args: argparse.Namespace, run: Run, folder: Path, procs: dict[str, subprocess.Popen[bytes]], http_port: int
) -> None:
    """Sample every ``args.sample_s`` while the publisher runs (a line a minute on stdout), then once more."""
    engine, venue, publisher = procs["engine"], procs["venue"], procs["publisher"]
    t0 = next_at = time.monotonic()
    every_minute = max(1, round(60 / args.sample_s))
    while publisher.poll() is None:
        run.samples.append(sample(t0, folder, engine.pid, venue.pid, http_port))
        if engine.poll() is not None:
            print(f"the engine exited with {engine.returncode} after {run.samples[-1].t_min:.1f} min", flush=True)
            return
        if len(run.samples) % every_minute == 1:
            print(progress(run.samples[-1]), flush=True)
        next_at += args.sample_s
        time.sleep(max(0.0, next_at - time.monotonic()))
    out, _ = publisher.communicate(timeout=60)
    run.published = json.loads(out or b"{}")
    run.samples.append(sample(t0, folder, engine.pid, venue.pid, http_port))


def progress(s: Sample) -> str:
    return (
        f"{s.t_min:6.1f} min  host {s.host_rss_mib:7.1f} MiB  venue {s.venue_rss_mib:7.1f} MiB  runners "
        f"{s.runners} ({s.runners_rss_mib:.0f} MiB)  fds {s.host_fds}/{s.venue_fds}  ledger {s.ledger_mib:.2f} MiB  "
        f"log {s.engine_log_mib:.2f} MiB  orders {s.orders:,}  refused {s.rejected:,}  restarts {s.restarts}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the market data flows (default 30)")
    parser.add_argument("--rate", type=float, default=2000.0, help="market messages a second, all symbols (2000)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples (5)")
    parser.add_argument("--warmup-min", type=float, help="minutes left out of the trends (default: a third of the run)")
    parser.add_argument("--out", type=Path, help="the report (default bench/results/soak-<date>-<minutes>min.md)")
    parser.add_argument("--keep", type=Path, help="run in this new folder and keep it (logs, ledger), not a temp one")
    args = parser.parse_args()
    if args.warmup_min is None:
        args.warmup_min = round(args.minutes / 3, 2)
    began = datetime.now(UTC)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        run = soak(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
            run = soak(args, Path(tmp))
    if not run.samples:
        raise SystemExit("no samples: the run did not get as far as the market data")
    text = report(args, run, began)
    out = args.out or RESULTS / f"soak-{began:%Y%m%d-%H%M}-{args.minutes:g}min.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps([asdict(sample) for sample in run.samples]))
    print(f"\n{text}\nreport: {out}", flush=True)


if __name__ == "__main__":
    main()

"""``strategy-engine backtest`` as users run it: events a second and peak memory, on the shared data.

    python -m bench.bench_backtest [--case SUBSTRING ...] [--repeat N] [--save DIR] [--compare DIR]

Each case runs ``python -m host.cli backtest ... --json`` as a subprocess (the minute candles of
``btc-perp_ftx_1m_2022-01.jsonl``, and the two tick files of 2024-08-08 alone and merged) with one
strategy that trades, one that stays quiet (the same strategy with a threshold it never reaches)
and the three built-in strategies together. Figures per case (the best of ``repeat`` runs by wall
time):

- ``wall``: the whole command, start to exit (imports, runner start-up, the data, the report);
- ``stepping``: the seconds the command reports between the runners being ready and the data being
  done (its stderr line ``N events in S s after a T s start-up``), and events / that;
- ``wall - zero``: wall time less that of the same command over no events (``--to 2000-01-01``:
  start-up and shut-down only), and events / that;
- CPU seconds of the host and of its runners (from /proc, sampled every 50 ms);
- peak RSS (VmHWM) of the host and the largest runner;
- trades (a run that trades nothing is not a fair speed figure on its own).

``--save DIR`` keeps each case's JSON report; ``--compare DIR`` checks each against the one saved
there, byte for byte (a speed change must not change any result). The table goes to stdout with the
date, the machine's load average and its core count.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import cpu_seconds

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CANDLES = "btc-perp_ftx_1m_2022-01.jsonl"
BTC = "btcusdt_spot_ticks_2024-08-08T2354Z.jsonl"
ETH = "ethusdt_spot_ticks_2024-08-08T2354Z.jsonl"
THREE = ("momentum", "market_making", "scalping")
_SPEED = re.compile(r"([\d,]+) events in ([\d.]+) s after a ([\d.]+) s start-up")


@dataclass(frozen=True)
class Case:
    name: str
    files: tuple[str, ...]
    strategies: tuple[str, ...]
    sets: tuple[str, ...] = ()

    def argv(self, data: Path, *extra: str) -> list[str]:
        argv = [sys.executable, "-m", "host.cli", "backtest", "--json"]
        for name in self.files:
            argv += ["--data", str(data / name)]
        for strategy in self.strategies:
            argv += ["--strategy", strategy]
        for assignment in self.sets:
            argv += ["--set", assignment]
        return argv + list(extra)


def cases() -> list[Case]:
    candle = "momentum.price_source=candle"
    tick = ("momentum.price_source=tick", "momentum.lookback_period=50", "momentum.threshold=0.0003")
    quiet = "momentum.threshold=0.5"
    found = [
        Case("candles: momentum (trades)", (CANDLES,), ("momentum",), (candle,)),
        Case("candles: momentum (quiet)", (CANDLES,), ("momentum",), (candle, quiet)),
        Case("candles: 3 strategies", (CANDLES,), THREE, (candle,)),
    ]
    for label, files in (("btc ticks", (BTC,)), ("eth ticks", (ETH,)), ("btc+eth ticks", (BTC, ETH))):
        found += [
            Case(f"{label}: momentum (trades)", files, ("momentum",), tick),
            Case(f"{label}: momentum (quiet)", files, ("momentum",), (*tick[:2], quiet)),
            Case(f"{label}: 3 strategies", files, THREE, tick),
        ]
    return found


@dataclass
class Run:
    wall_s: float
    stdout: bytes
    stderr: str
    returncode: int
    host_cpu_s: float = 0.0
    runner_cpu_s: dict[int, float] = field(default_factory=dict)
    host_peak_kb: int = 0
    runner_peak_kb: dict[int, int] = field(default_factory=dict)


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return found


def _peak_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _sample(run: Run, pid: int) -> None:
    try:
        run.host_cpu_s = cpu_seconds(pid)
    except (OSError, IndexError):
        return
    run.host_peak_kb = max(run.host_peak_kb, _peak_kb(pid))
    for child in _children(pid):
        try:
            run.runner_cpu_s[child] = max(run.runner_cpu_s.get(child, 0.0), cpu_seconds(child))
        except (OSError, IndexError):
            continue
        run.runner_peak_kb[child] = max(run.runner_peak_kb.get(child, 0), _peak_kb(child))


def execute(argv: list[str]) -> Run:
    """Run the command to its end, sampling its processes every 50 ms."""
    started = time.monotonic()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        run = Run(0.0, b"", "", 0)
        out: list[bytes] = []
        err: list[bytes] = []
        readers = [
            threading.Thread(target=lambda: out.append(proc.stdout.read()) if proc.stdout else None),
            threading.Thread(target=lambda: err.append(proc.stderr.read()) if proc.stderr else None),
        ]
        for reader in readers:
            reader.start()
        while proc.poll() is None:
            _sample(run, proc.pid)
            time.sleep(0.05)
        run.wall_s = time.monotonic() - started
        for reader in readers:
            reader.join()
        run.stdout, run.stderr, run.returncode = b"".join(out), b"".join(err).decode(errors="replace"), proc.returncode
    return run


def best(argv: list[str], repeat: int) -> Run:
    runs = [execute(argv) for _ in range(repeat)]
    for run in runs:
        if run.returncode != 0:
            raise SystemExit(f"failed ({run.returncode}): {' '.join(argv)}\n{run.stderr[-3000:]}")
    return min(runs, key=lambda run: run.wall_s)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", action="append", default=[], help="only cases whose name contains this")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DATA, help=f"where the data files are ({DATA})")
    parser.add_argument("--save", type=Path, help="keep each case's JSON report in this directory")
    parser.add_argument("--compare", type=Path, help="check each case's JSON report against this directory's")
    args = parser.parse_args(argv)
    chosen = [c for c in cases() if not args.case or any(part in c.name for part in args.case)]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load {load()}\n")
    zero: dict[int, float] = {}
    for count in sorted({len(c.strategies) for c in chosen}):
        case = next(c for c in chosen if len(c.strategies) == count)
        zero[count] = best(case.argv(args.data_dir, "--to", "2000-01-01"), args.repeat).wall_s
        print(f"zero-event run, {count} strateg{'y' if count == 1 else 'ies'}: {zero[count]:.2f} s wall")
    print()
    print(
        "| case | events | trades | wall s | stepping s | ev/s stepping | wall-zero s | ev/s wall-zero "
        "| host CPU s | runners CPU s | host peak MB | runner peak MB | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    mismatched = []
    for case in chosen:
        run = best(case.argv(args.data_dir), args.repeat)
        report = json.loads(run.stdout)
        speed = _SPEED.search(run.stderr)
        events = int(speed.group(1).replace(",", "")) if speed else report["run"]["events"]
        stepping = float(speed.group(2)) if speed else float("nan")
        net = run.wall_s - zero[len(case.strategies)]
        trades = ", ".join(f"{sid} {s['trades']}" for sid, s in report["strategies"].items())
        slug = re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-")
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"{slug}.json").write_bytes(run.stdout)
        if args.compare is not None and (args.compare / f"{slug}.json").read_bytes() != run.stdout:
            mismatched.append(case.name)
        print(
            f"| {case.name} | {events:,} | {trades} | {run.wall_s:.2f} | {stepping:.2f} | {events / stepping:,.0f} "
            f"| {net:.2f} | {events / net:,.0f} | {run.host_cpu_s:.2f} | "
            f"{' + '.join(f'{v:.2f}' for v in run.runner_cpu_s.values())} | {run.host_peak_kb / 1024:.0f} | "
            f"{max(run.runner_peak_kb.values(), default=0) / 1024:.0f} | {load()} |",
            flush=True,
        )
    if args.compare is not None:
        print(f"\nreports against {args.compare}: " + (f"DIFFERENT: {mismatched}" if mismatched else "all identical"))
        if mismatched:
            raise SystemExit(1)


if __name__ == "__main__":
    main()

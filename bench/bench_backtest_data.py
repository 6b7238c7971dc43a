"""The backtest's data reader and result recorder alone: events a second on real market data files.

    python -m bench.bench_backtest_data [FILE ...] [--repeat 3]

For each file (default: the tick and candle files in ../shared/data) and for the files merged
(default: the two tick files, which cover the same ten minutes), three figures, each the best of
``repeat`` runs in CPU seconds of this process:

- ``count``: ``DataSet.count_lines`` (the progress bar's total), in lines a second;
- ``read``: iterating ``open_data`` (decode, order check, merge), in events a second;
- ``read+record``: the same with every event marked on an ``EquityRecorder`` (candle close, tick
  and book mid, trade price) and sampled each minute, as the driver does.

Peak RSS of the process comes last. Figures go to stdout only.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from host.backtest.data import open_data
from host.backtest.results import EquityRecorder
from sdk.events import Book, Candle, Tick, Trade

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT = (
    "btcusdt_spot_ticks_2024-08-08T2354Z.jsonl",
    "ethusdt_spot_ticks_2024-08-08T2354Z.jsonl",
    "btc-perp_ftx_1m_2022-01.jsonl",
)
MINUTE = 60_000_000_000


def best(repeat: int, run: Callable[[], int]) -> tuple[int, float]:
    """(what run returned, its fewest CPU seconds over ``repeat`` runs)."""
    fastest, result = float("inf"), 0
    for _ in range(repeat):
        start = time.process_time()
        result = run()
        fastest = min(fastest, time.process_time() - start)
    return result, fastest


def read(paths: Sequence[Path]) -> int:
    return sum(1 for _ in open_data(paths))


def read_and_record(paths: Sequence[Path]) -> int:
    recorder = EquityRecorder(initial_cash=10_000.0, interval_ns=MINUTE, strategies=["bench"])
    count, last = 0, 0
    for event in open_data(paths):
        count, last = count + 1, event.timestamp_ns
        match event:
            case Candle():
                recorder.mark(event.timestamp_ns, event.symbol, event.close)
            case Tick():
                recorder.mark(event.timestamp_ns, event.symbol, event.mid)
            case Trade():
                recorder.mark(event.timestamp_ns, event.symbol, event.last_price)
            case Book():
                mid = event.mid
                if mid is not None:
                    recorder.mark(event.timestamp_ns, event.symbol, mid)
    recorder.finish(last)
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    files = args.files or [DATA / name for name in DEFAULT]
    merged = files if args.files else files[:2]
    groups = [[path] for path in files] + ([merged] if len(merged) > 1 else [])
    print(f"{'input':<48} {'events':>9} {'count l/s':>11} {'read ev/s':>11} {'read+record ev/s':>17}")
    for group in groups:
        name = group[0].name if len(group) == 1 else f"all {len(group)} merged"
        lines, count_s = best(args.repeat, lambda g=group: open_data(g).count_lines())  # type: ignore[misc]
        events, read_s = best(args.repeat, lambda g=group: read(g))  # type: ignore[misc]
        _, record_s = best(args.repeat, lambda g=group: read_and_record(g))  # type: ignore[misc]
        print(
            f"{name:<48} {events:>9,} {lines / count_s:>11,.0f} {events / read_s:>11,.0f} {events / record_s:>17,.0f}"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()

"""Cost of one ``update`` of each sdk.indicators class, at a short and a long period.

Not a test: from the repository root run ``python -m bench.bench_indicators [updates]`` (default
200000 per indicator and period). Prints nanoseconds per update (best of 5 runs, each timing the
whole loop with ``perf_counter_ns`` after a warm-up of one period, garbage collector off) and writes
bench/results/indicators.json. The prices are a random walk from 60,000; the loop's own cost (a
Python for loop calling a method) is included, as it is in a strategy.
"""

from __future__ import annotations

import gc
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sdk.indicators import ATR, EMA, RSI, SMA, VWAP, BollingerBands, RollingHigh, RollingLow, ZScore

RESULTS = Path(__file__).resolve().parent / "results" / "indicators.json"
PERIODS = (20, 1000)


def makers(period: int) -> dict[str, Callable[[], Callable[[float], object]]]:
    def atr() -> Callable[[float], object]:
        indicator = ATR(period=period)
        return lambda x: indicator.update(x, x, x)

    def vwap() -> Callable[[float], object]:
        indicator = VWAP(window=period)
        return lambda x: indicator.update(x, 1.0)

    return {
        "SMA": lambda: SMA(period=period).update,
        "EMA": lambda: EMA(period=period).update,
        "RSI": lambda: RSI(period=period).update,
        "ATR": atr,
        "BollingerBands": lambda: BollingerBands(period=period).update,
        "ZScore": lambda: ZScore(period=period).update,
        "RollingHigh": lambda: RollingHigh(period=period).update,
        "RollingLow": lambda: RollingLow(period=period).update,
        "VWAP(window)": vwap,
    }


def time_one(make: Callable[[], Callable[[float], object]], prices: list[float], warm: int) -> float:
    best = float("inf")
    for _ in range(5):
        update = make()
        for price in prices[:warm]:
            update(price)
        gc.disable()
        started = time.perf_counter_ns()
        for price in prices:
            update(price)
        elapsed = time.perf_counter_ns() - started
        gc.enable()
        best = min(best, elapsed / len(prices))
    return best


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rng = random.Random(1)
    price, prices = 60_000.0, []
    for _ in range(count):
        price *= 1 + rng.gauss(0.0, 0.001)
        prices.append(price)
    table: dict[str, dict[str, float]] = {}
    for period in PERIODS:
        for name, make in makers(period).items():
            table.setdefault(name, {})[f"period_{period}_ns"] = round(time_one(make, prices, period), 1)
    print(f"{'indicator':16}" + "".join(f"{f'period {p}':>14}" for p in PERIODS) + "   (ns per update)")
    for name, row in table.items():
        print(f"{name:16}" + "".join(f"{row[f'period_{p}_ns']:>14.1f}" for p in PERIODS))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"updates": count, "python": platform.python_version(), "ns_per_update": table}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()

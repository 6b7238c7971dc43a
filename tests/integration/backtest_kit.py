"""What the backtest tests share: generated candles and ticks, a config file, and the command line."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import ROOT, RUNNERS

START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
MINUTE_NS = 60_000_000_000
WIDE_RISK = {
    "maxOrderValue": 1e12, "maxPositionSize": 1e9, "maxDailyLoss": 1e12, "maxDrawdown": 1, "minAccountBalance": 0,
    "maxOrdersPerSecond": 1_000_000, "maxOrdersPerMinute": 1_000_000, "priceCollar": 0.9, "maxOrderQuantity": 1e9,
    "maxPortfolioNotional": 1e15, "referenceStaleAfter": "10000h", "initialBalance": 1_000_000,
}  # fmt: skip


@dataclass(frozen=True)
class Bar:
    time_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def candles(count: int, *, seed: int = 11, start: float = 100.0) -> list[Bar]:
    """A random walk of 1-minute bars with trends that switch every few dozen bars (momentum has work)."""
    rng = random.Random(seed)
    bars, price, drift = [], start, 0.0
    for i in range(count):
        if i % rng.randint(20, 60) == 0:
            drift = rng.choice((-0.002, 0.0, 0.002))
        open_ = price
        close = max(1.0, open_ * (1 + drift + rng.gauss(0, 0.004)))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.002)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.002)))
        bars.append(Bar(START_NS + i * MINUTE_NS, round(open_, 4), round(high, 4), round(low, 4), round(close, 4),
                        round(rng.uniform(1, 50), 3)))  # fmt: skip
        price = bars[-1].close
    return bars


def stamp(ns: int) -> str:
    base = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def write_candles(path: Path, bars: list[Bar], symbol: str = "TEST") -> Path:
    lines = [
        json.dumps({"symbol": symbol, "timestamp": stamp(b.time_ns), "sequence": i + 1, "type": "candle",
                    "open": b.open, "high": b.high, "low": b.low, "close": b.close, "volume": b.volume})
        for i, b in enumerate(bars)
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ticks(path: Path, count: int, *, symbol: str = "TEST", seed: int = 5, step_ms: int = 100) -> Path:
    """Best bid/ask ticks of a random walk, with sizes."""
    rng = random.Random(seed)
    mid, lines = 100.0, []
    for i in range(count):
        mid *= 1 + rng.gauss(0, 0.0005)
        half = mid * rng.uniform(0.0001, 0.0004)
        lines.append(json.dumps({
            "symbol": symbol, "timestamp": stamp(START_NS + i * step_ms * 1_000_000), "sequence": i + 1,
            "type": "tick", "bid_price": round(mid - half, 4), "ask_price": round(mid + half, 4),
            "bid_size": round(rng.uniform(1, 5), 3), "ask_size": round(rng.uniform(1, 5), 3),
        }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(path: Path, strategies: dict[str, Any], **engine: Any) -> Path:
    config = {
        "engine": {"pluginsDir": str(RUNNERS), "handshakeTimeout": "20s", **engine},
        "strategies": strategies,
        "risk": dict(WIDE_RISK),
        "logging": {"level": "warning"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def backtest(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``strategy-engine backtest ARGS`` as a user runs it (``python -m host.cli``, this checkout first)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "host.cli", "backtest", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-3000:]
    document: dict[str, Any] = json.loads(result.stdout)
    return document

"""sdk.testing's fill model against ``strategy-engine backtest``: the same limit-order strategy, the same fills.

An author tests a strategy with ``run_strategy(..., fills=FillModel())`` and then backtests it; the
two must tell the same story. The test plugin ``bander`` bids a limit at the lower Bollinger band
in slot "bid", moving it as the band moves (a slot replacement each time), and sells at market at
the middle band: marketable limits on arrival, resting limits crossed by later quotes, and many
replaced orders. Over a random walk of ticks the backtest (a subprocess, as the author runs it)
makes exactly the fills run_strategy makes, side, price and time.
"""

from __future__ import annotations

import csv
import importlib
import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sdk.testing import FillModel, run_strategy
from tests.integration.test_cli import cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BANDER = '''"""Test plugin: bids a limit at the lower Bollinger band in slot "bid" (moved as the band moves),
sells at market when the mid reaches the middle band; one order in flight at a time."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import OrderType, OrderUpdate, Side, Signal, Strategy, StrategyConfig, Tick, hookimpl, indicators


@dataclass(frozen=True)
class BanderConfig(StrategyConfig):
    period: int = 10
    move: float = 5.0  # re-place the bid when the band moved this much


class Bander(Strategy[BanderConfig]):
    name = "bander"

    def __init__(self, config: BanderConfig) -> None:
        super().__init__(config)
        self.bands = indicators.BollingerBands(period=config.period)
        self.bid: tuple[str, float] | None = None  # client order id, limit
        self.exit: str | None = None

    def on_tick(self, tick: Tick) -> None:
        bands = self.bands.update_tick(tick)
        if bands is None or self.exit is not None:
            return
        held = self.position_quantity(tick.symbol)
        if held > 0:
            if tick.mid >= bands.mid:
                self.exit = self.emit(Signal(symbol=tick.symbol, side=Side.SELL, quantity=held))
            return
        price = round(bands.lower, 2)
        if self.bid is None or abs(self.bid[1] - price) >= self.config.move:
            bid = Signal(symbol=tick.symbol, side=Side.BUY, quantity=0.01, order_type=OrderType.LIMIT, price=price,
                         slot="bid")  # fmt: skip
            self.bid = (self.emit(bid), price)

    def on_order(self, update: OrderUpdate) -> None:
        if not update.done:
            return
        if self.bid is not None and update.client_order_id == self.bid[0]:
            self.bid = None
        if update.client_order_id == self.exit:
            self.exit = None


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[BanderConfig]]]:
    return [Bander]
'''


def random_walk(path: Path, count: int, seed: int) -> Path:
    """``count`` BTCUSDT ticks 250 ms apart, a random walk of the mid, one cent wide."""
    rng = random.Random(seed)
    start, mid = datetime(2024, 8, 8, 23, 54, tzinfo=UTC), 61_800.0
    with path.open("w") as out:
        for i in range(count):
            mid *= 1 + rng.gauss(0, 0.0008)
            stamp = (start + timedelta(milliseconds=250 * i)).isoformat().replace("+00:00", "Z")
            out.write(json.dumps({"symbol": "BTCUSDT", "timestamp": stamp, "sequence": i + 1, "type": "tick",
                                  "bid_price": round(mid - 0.01, 2), "bid_size": 1.5,
                                  "ask_price": round(mid + 0.01, 2), "ask_size": 2.0}) + "\n")  # fmt: skip
    return path


def test_run_strategy_and_the_backtest_make_the_same_fills(tmp_path: Path) -> None:
    """Every fill of run_strategy(fills=FillModel()) is a fill of the backtest, in order: side, price, time."""
    plugins = tmp_path / "plugins"
    (plugins / "bander").mkdir(parents=True)
    (plugins / "bander" / "__init__.py").write_text(BANDER)
    config = tmp_path / "config.yaml"
    config.write_text("engine:\n  pluginsDir: plugins\nstrategies:\n  bander:\n    symbols: [BTCUSDT]\n")
    data = random_walk(tmp_path / "ticks.jsonl", 1500, seed=1)
    done = cli("backtest", "--config", config, "--data", data, "--report", tmp_path / "report", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    backtested = []
    with (tmp_path / "report" / "trades.csv").open() as trades:
        for row in csv.DictReader(trades):
            backtested.append(("buy", round(float(row["entry_price"]), 2), row["entry_time"]))
            if row["exit_reason"] != "end_of_data":
                backtested.append(("sell", round(float(row["exit_price"]), 2), row["exit_time"]))

    sys.path.insert(0, str(plugins))
    try:
        bander = importlib.import_module("bander")
        result = run_strategy(bander.Bander(bander.BanderConfig()), data, fills=FillModel())
    finally:
        sys.path.remove(str(plugins))
        sys.modules.pop("bander", None)
    tested = [(f.side.value, round(f.price, 2), f.time.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")) for f in result.fills]
    assert len(tested) > 20 and sum(u.status.value == "cancelled" for u in result.orders) > 100
    assert tested == backtested

"""The backtest against an established library (backtesting.py): the same strategy, the same trades and P&L.

A fully specified strategy (``tests/runners/closes_momentum``: momentum on closes, market orders
filled at the next bar's open) runs through ``strategy-engine backtest`` as a subprocess (runners,
aggregation, risk, paper matching, ledger) and through backtesting.py on the same generated candles.
Every round trip must match: entry and exit time and price, size, P&L; and so must the final equity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from backtesting import Backtest
from backtesting import Strategy as ReferenceStrategy

from tests.integration.backtest_kit import Bar, backtest, candles, report, write_candles, write_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek is deprecated"),  # inside backtesting.py's stats
]

LOOKBACK, THRESHOLD = 10, 0.01


class ClosesReference(ReferenceStrategy):  # type: ignore[misc]
    """tests/runners/closes_momentum, written for backtesting.py."""

    def init(self) -> None:
        pass

    def next(self) -> None:
        closes = self.data.Close
        if len(closes) <= LOOKBACK:
            return
        change = closes[-1] / closes[-1 - LOOKBACK] - 1
        if not self.position and change > THRESHOLD:
            self.buy(size=1)
        elif self.position.is_long and change < -THRESHOLD:
            self.position.close()


def reference(bars: list[Bar], commission: float) -> tuple[list[dict[str, Any]], float]:
    frame = pd.DataFrame(
        {"Open": [b.open for b in bars], "High": [b.high for b in bars], "Low": [b.low for b in bars],
         "Close": [b.close for b in bars], "Volume": [b.volume for b in bars]},
        index=pd.to_datetime([b.time_ns for b in bars], unit="ns", utc=True),
    )  # fmt: skip
    run = Backtest(frame, ClosesReference, cash=1_000_000, commission=commission, finalize_trades=True)
    stats = run.run()
    trades = [
        {"entry_ns": int(row.EntryTime.value), "exit_ns": int(row.ExitTime.value), "entry_price": row.EntryPrice,
         "exit_price": row.ExitPrice, "quantity": float(row.Size), "net_pnl": row.PnL}
        for row in stats._trades.itertuples()
    ]  # fmt: skip
    return trades, float(stats["Equity Final [$]"])


def engine(tmp_path: Path, bars: list[Bar], fees_bps: float) -> dict[str, Any]:
    data = write_candles(tmp_path / "bars.jsonl", bars)
    parameters = {"lookback": LOOKBACK, "threshold": THRESHOLD, "quantity": 1}
    config = write_config(tmp_path / "config.yaml", {"closes": {"plugin": "closes_momentum", "parameters": parameters}})
    return report(backtest("--data", data, "--config", config, "--json", "--fees-bps", fees_bps, cwd=tmp_path))


@pytest.mark.parametrize("fees_bps", [0, 10])
def test_momentum_on_closes_matches_backtesting_py(tmp_path: Path, fees_bps: float) -> None:
    bars = candles(1500)
    expected, final_equity = reference(bars, fees_bps / 10_000)
    document = engine(tmp_path, bars, fees_bps)

    assert len(expected) >= 20  # the generated walk gives the strategy real work
    got = document["trades"]
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        assert ours["side"] == "long"
        assert (ours["entry_ns"], ours["exit_ns"]) == (theirs["entry_ns"], theirs["exit_ns"])
        assert ours["entry_price"] == pytest.approx(theirs["entry_price"], rel=1e-9)
        assert ours["exit_price"] == pytest.approx(theirs["exit_price"], rel=1e-9)
        assert ours["quantity"] == pytest.approx(theirs["quantity"])
        assert ours["net_pnl"] == pytest.approx(theirs["net_pnl"], rel=1e-6, abs=1e-6)
    summary = document["strategies"]["closes"]
    assert summary["final_equity"] == pytest.approx(final_equity, rel=1e-9)
    assert summary["trades"] == len(expected)
    assert summary["rejections"] == {} and summary["breaker_events"] == []
    assert document["run"]["strategy_errors"] == {}  # it raises on a bar that comes before its order's fill

"""``strategy-engine optimize`` run as a user runs it: a subprocess on generated candles, real backtests.

The command runs as ``python -m host.backtest.optimize_cli`` (``main`` there is what
``strategy-engine optimize`` dispatches to once host/cli.py registers ``add_optimize``). The data is
twelve hours of one-minute BTCUSDT candles, a seeded random walk, and the strategy the built-in
momentum on candle closes. Each combination's figures must equal what ``strategy-engine backtest``
gives with the same ``--set`` values, and the JSON must not depend on how many workers ran it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sdk._codec import encode_market
from sdk.events import Candle
from tests.helpers import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MINUTE = 60_000_000_000
T0 = 1_722_470_400 * 1_000_000_000  # 2024-08-01T00:00:00Z
BASE = ("--strategy", "momentum", "--set", "momentum.price_source=candle", "--set", "momentum.quantity=0.01")
GRID = ("--grid", "lookback_period=5,15", "--grid", "threshold=0.0005,0.001")


def run(module: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)  # fmt: skip


def optimize(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``strategy-engine optimize ARGS`` (``python -m host.cli``, this checkout first)."""
    return run("host.cli", "optimize", *args, cwd=cwd)


@pytest.fixture(scope="module")
def candles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(11)
    price, lines = 60_000.0, []
    for i in range(720):
        close = price * (1 + rng.gauss(0, 0.0015))
        bar = Candle(symbol="BTCUSDT", timestamp_ns=T0 + i * MINUTE, open=price, high=max(price, close) + 5.0,
                     low=min(price, close) - 5.0, close=close, volume=3.0)  # fmt: skip
        lines.append(json.dumps(encode_market(bar)))
        price = close
    path = tmp_path_factory.mktemp("data") / "btcusdt_1m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def document(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


class TestOptimize:
    def test_grid_is_ranked_and_each_row_is_that_backtest(self, candles: Path, tmp_path: Path) -> None:
        """Four combinations ranked by P&L; the best row's figures are the backtest command's with its values."""
        found = document(optimize("--data", candles, *BASE, *GRID, "--objective", "pnl", "--jobs", "2", "--json",
                                  cwd=tmp_path))  # fmt: skip
        ranking = found["ranking"]
        assert sorted(row["grid_index"] for row in ranking) == [0, 1, 2, 3]
        assert [row["rank"] for row in ranking] == [1, 2, 3, 4]
        assert [row["pnl"] for row in ranking] == sorted((row["pnl"] for row in ranking), reverse=True)
        assert found["grid"] == {"lookback_period": [5, 15], "threshold": [0.0005, 0.001]}
        best = ranking[0]
        assert best["trades"] > 0
        sets = [f"--set=momentum.{name}={value}" for name, value in best["params"].items()]
        backtest = document(run("host.cli", "backtest", "--data", candles, *BASE, *sets, "--json", cwd=tmp_path))
        assert backtest["overall"]["pnl"] == best["pnl"]
        assert backtest["overall"]["trades"] == best["trades"]
        assert backtest["overall"]["sharpe"] == best["sharpe"]

    def test_same_json_with_one_worker_or_two(self, candles: Path, tmp_path: Path) -> None:
        """The ranking is byte-identical whether the grid ran in one process or two."""
        outputs = [optimize("--data", candles, *BASE, *GRID, "--jobs", jobs, "--json", cwd=tmp_path)
                   for jobs in ("1", "2")]  # fmt: skip
        assert outputs[0].returncode == outputs[1].returncode == 0, outputs[0].stderr[-2000:]
        assert outputs[0].stdout == outputs[1].stdout

    def test_walk_forward_reports_in_and_out_of_sample(self, candles: Path, tmp_path: Path) -> None:
        """6h train, 3h test over 12 h: two windows, each a choice and its test, and the stitched result."""
        found = document(optimize("--data", candles, *BASE, *GRID, "--walk-forward", "6h,3h", "--objective",
                                  "return", "--jobs", "2", "--json", cwd=tmp_path))  # fmt: skip
        walk = found["walk_forward"]
        assert [row["test"] for row in walk["windows"]] == [
            ["2024-08-01T06:00:00.000000000Z", "2024-08-01T09:00:00.000000000Z"],
            ["2024-08-01T09:00:00.000000000Z", "2024-08-01T12:00:00.000000000Z"],
        ]
        assert all(set(row["params"]) == {"lookback_period", "threshold"} for row in walk["windows"])
        assert walk["in_sample"]["windows"] == 2
        assert walk["out_of_sample"]["windows"] == 2
        expected = 1.0
        for row in walk["windows"]:
            expected *= 1 + row["out_of_sample"]["return_pct"] / 100
        assert walk["out_of_sample"]["return_pct"] == pytest.approx((expected - 1) * 100, rel=1e-6, abs=1e-9)

    def test_table_without_json(self, candles: Path, tmp_path: Path) -> None:
        """Without --json a ranking table goes to stdout, best first."""
        done = optimize("--data", candles, *BASE, "--grid", "lookback_period=5,15", "--jobs", "2", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        lines = done.stdout.splitlines()
        assert lines[0].split()[:3] == ["rank", "params", "score"]
        assert lines[1].startswith("1 ")
        assert "optimizing momentum: 2 combinations" in done.stderr

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("--grid", "lookback_period"), "--grid: expected NAME=V1,V2,... (e.g. lookback=10,20,40)"),
            (("--grid", "lookback_period=5", "--strategy", "scalping"), "--strategy: name exactly one strategy"),
            (
                ("--grid", "lookback_period=5", "--walk-forward", "1d,1h"),
                "the data spans 12 hours: too short for one train window of 24 hours",
            ),
            (("--grid", "lookback_period=5", "--walk-forward", "1d"), "--walk-forward: expected TRAIN,TEST"),
            (("--grid", "lookback_period=5", "--jobs", "0"), "--jobs: must be >= 1, got 0"),
        ],
    )
    def test_bad_options_exit_2_naming_them(self, candles: Path, tmp_path: Path, args: tuple[str, ...],
                                            message: str) -> None:  # fmt: skip
        """A bad option is refused before any backtest runs, exit 2, naming the option."""
        done = optimize("--data", candles, *BASE, *args, cwd=tmp_path)
        assert done.returncode == 2, done.stderr[-2000:]
        assert message in done.stderr

    def test_parameter_the_strategy_refuses_is_an_error_row(self, candles: Path, tmp_path: Path) -> None:
        """Every combination failing (a parameter the strategy does not have) exits 1 with each error shown."""
        done = optimize("--data", candles, *BASE, "--grid", "lookbak=5,15", "--jobs", "2", cwd=tmp_path)
        assert done.returncode == 1, done.stderr[-2000:]
        assert done.stdout.count("ended with its breaker open") == 2
        assert "lookbak: unknown key" in done.stderr
        assert "no combination gave a result" in done.stderr

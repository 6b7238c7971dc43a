"""docs/first-strategy.md end to end: the page's strategy (sdk.indicators' SMA) through `strategy-engine`.

The page's Python runs in a scratch folder (tests/unit/test_docs.py's ``materialise``), then each
``strategy-engine`` command of the page runs there as a subprocess, the way the author types it:
``check-plugin`` loads the package in a sandboxed runner, and ``backtest`` and ``run --replay``
trade it on the page's candles through a real runner, risk, the paper venue and the ledger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_cli import cli, summary_rows
from tests.unit.test_docs import PAGE, commands, materialise

pytestmark = pytest.mark.integration


class TestFirstStrategy:
    def test_page_commands_load_and_trade_the_strategy(self, tmp_path: Path) -> None:
        """check-plugin lists sma_cross with its parameters; the replay runs it to the end, and its
        SMA crossings become signals, orders and fills (its `crossed` log lines reach the engine's log)."""
        materialise(tmp_path)
        check, _, replay = commands(PAGE.read_text(encoding="utf-8"), "strategy-engine")
        checked = cli(*check[1:], cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "sma_cross  (sma_cross.strategy.SmaCross)" in checked.stdout
        assert "slow: int = 20" in checked.stdout
        assert "max_hold_minutes: float = 0.0" in checked.stdout
        replayed = cli(*replay[1:], cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        row = summary_rows(replayed.stdout)["sma_cross"]
        assert (row["state"], row["breaker"], row["rejected"]) == ("running", "closed", "0")
        assert int(row["signals"]) >= 1 and int(row["fills"]) >= 1, row
        assert '"message": "crossed"' in replayed.stderr

    def test_the_backtest_makes_the_trades_the_unit_test_run_makes(self, tmp_path: Path) -> None:
        """The page's backtest of candles.jsonl makes as many round trips as the page's run_strategy
        with FillModel() makes fills / 2 (section 5 prints them), as the page says."""
        page = materialise(tmp_path)
        _, backtest, _ = commands(PAGE.read_text(encoding="utf-8"), "strategy-engine")
        assert backtest[1] == "backtest"
        fills = int(page.stdout.split(" fills,")[0].split()[-1])
        done = cli(*backtest[1:], cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        [row] = [line.split() for line in done.stdout.splitlines() if line.startswith("sma_cross ")]
        assert fills > 0 and int(row[1]) * 2 == fills, (fills, row)

"""``strategy-engine backtest``'s speed line on stderr: events, seconds after the runners were ready, batches,
events sent. No speed is asserted here (bench/bench_backtest.py measures it); what is checked is that the line
tells the truth and that a batch cut short re-sends no more than its lane was offered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.backtest_kit import backtest, candles, report, write_candles, write_config

pytestmark = pytest.mark.integration

_LINE = re.compile(
    r"([\d,]+) events in ([\d.]+) s after a ([\d.]+) s start-up \(([\d,]+) events/s; "
    r"([\d,]+) batches, ([\d,]+) events sent to runners\)"
)


def _speed(stderr: str) -> tuple[int, float, int, int]:
    found = _LINE.search(stderr)
    assert found is not None, stderr[-2000:]
    number = [int(found.group(i).replace(",", "")) for i in (1, 5, 6)]
    return number[0], float(found.group(2)), number[1], number[2]


class TestSpeedLine:
    def test_quiet_strategy_gets_every_event_once(self, tmp_path: Path) -> None:
        """A strategy that never acts runs through every batch: each event is sent once, in few batches."""
        bars = write_candles(tmp_path / "bars.jsonl", candles(3000))
        quiet = {"plugin": "closes_momentum", "parameters": {"lookback": 5, "threshold": 0.9}}
        config = write_config(tmp_path / "c.yaml", {"quiet": quiet})
        result = backtest("--data", bars, "--config", config, "--json", cwd=tmp_path)
        document = report(result)
        events, seconds, batches, sent = _speed(result.stderr)
        assert events == document["run"]["events"] == 3000
        assert document["overall"]["trades"] == 0
        assert sent == events
        assert 1 <= batches < 20  # 64, 128, ... up to 4096 a batch
        assert seconds > 0

    def test_a_trading_strategy_is_offered_batches_near_its_cuts(self, tmp_path: Path) -> None:
        """Every order cuts a batch and what follows the cut is sent again, so a batch offers at most its
        lane's size (64 after a cut, doubling while batches run through), not everything read so far:
        at most 64 a batch plus twice the events (a doubled batch cut early) plus the fills in front."""
        bars = write_candles(tmp_path / "bars.jsonl", candles(3000))
        trading = {"plugin": "closes_momentum", "parameters": {"lookback": 5, "threshold": 0.01}}
        config = write_config(tmp_path / "c.yaml", {"trading": trading})
        result = backtest("--data", bars, "--config", config, "--json", cwd=tmp_path)
        document = report(result)
        events, _, batches, sent = _speed(result.stderr)
        assert document["overall"]["trades"] > 20
        assert batches > document["overall"]["trades"]  # a decision ends a batch
        assert events <= sent <= 3 * events + 70 * batches  # 17k here; 32k when a batch took all read so far

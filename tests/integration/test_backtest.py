"""``strategy-engine backtest`` as users run it: the same bytes under load, reports, bad input, failing strategies."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.backtest_kit import (
    MINUTE_NS,
    START_NS,
    backtest,
    candles,
    report,
    stamp,
    write_candles,
    write_config,
    write_ticks,
)

pytestmark = pytest.mark.integration


@contextmanager
def cpu_load(processes: int = 2) -> Iterator[None]:
    """Busy processes on every core while the block runs."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_the_same_inputs_give_the_same_bytes_whatever_the_load(tmp_path: Path) -> None:
    """The built-ins on ticks (market making floods its order quota: restarts, then its breaker opens)."""
    ticks = write_ticks(tmp_path / "ticks.jsonl", 4000)
    quiet = backtest("--data", ticks, "--json", cwd=tmp_path)
    with cpu_load():
        loaded = backtest("--data", ticks, "--json", cwd=tmp_path)
    document = report(quiet)
    assert loaded.stdout == quiet.stdout
    making = document["strategies"]["market_making"]
    assert making["trades"] > 0 and making["rejections"]  # real work: fills, risk refusals ...
    assert [e["kind"] for e in making["breaker_events"]][:2] == ["restart", "restart"]  # ... and restarts
    assert document["run"]["final_states"]["momentum"] == "running"


def test_report_directory_json_csvs_and_html(tmp_path: Path) -> None:
    bars = write_candles(tmp_path / "bars.jsonl", candles(400))
    closes = {"plugin": "closes_momentum", "parameters": {"lookback": 5, "threshold": 0.005}}
    config = write_config(tmp_path / "c.yaml", {"closes": closes})
    out = tmp_path / "out"
    result = backtest("--data", bars, "--config", config, "--report", out, "--fees-bps", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "closes" in result.stdout and "overall" in result.stdout  # the summary table
    document = json.loads((out / "report.json").read_text())
    with (out / "trades.csv").open() as f:
        trades = list(csv.DictReader(f))
    assert len(trades) == document["strategies"]["closes"]["trades"] > 0
    assert document["run"]["options"]["fees_bps"] == 5
    html = (out / "report.html").read_text()
    assert "<svg" in html and "closes" in html
    with (out / "equity.csv").open() as f:
        assert len(list(csv.reader(f))) > 100


def test_bad_rows_are_reported_or_fatal_with_strict(tmp_path: Path) -> None:
    bars = write_candles(tmp_path / "bars.jsonl", candles(50))
    lines = bars.read_text().splitlines()
    lines.insert(10, '{"symbol": "TEST", "type": "candle", "timestamp": "nope"}')
    bars.write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path / "c.yaml", {"closes": {"plugin": "closes_momentum"}})
    document = report(backtest("--data", bars, "--config", config, "--json", cwd=tmp_path))
    bad = document["run"]["data"]["bad_rows"]
    assert bad["total"] == 1 and bad["first"][0]["line"] == 11
    strict = backtest("--data", bars, "--config", config, "--json", "--strict", cwd=tmp_path)
    assert strict.returncode == 1
    assert f"{bars}:11" in strict.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "closes.lookback"], "--set: expected STRATEGY.PARAM=VALUE"),
        (["--strategy", "nobody"], "no strategy 'nobody'"),
        (["--fill", "close", "--latency", "-5"], "must be >= 0"),
        (["--from", "2024-02-01", "--to", "2024-01-01"], "must be before"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(tmp_path: Path, args: list[str], message: str) -> None:
    bars = write_candles(tmp_path / "bars.jsonl", candles(20))
    config = write_config(tmp_path / "c.yaml", {"closes": {"plugin": "closes_momentum"}})
    result = backtest("--data", bars, "--config", config, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_strategy_with_a_bad_parameter_or_that_crashes_is_reported_and_the_rest_run(tmp_path: Path) -> None:
    bars = write_candles(tmp_path / "bars.jsonl", candles(600))
    ticks = write_ticks(tmp_path / "ticks.jsonl", 200, symbol="CRASH")  # scripted crashes on a tick
    config = write_config(tmp_path / "c.yaml", {
        "closes": {"plugin": "closes_momentum", "symbols": ["TEST"], "parameters": {"lookback": 5, "threshold": 0.005}},
        "crashes": {"plugin": "scripted", "parameters": {"mode": "segv"}},
    })  # fmt: skip
    result = backtest("--data", bars, "--data", ticks, "--json", "--config", config, cwd=tmp_path)
    document = report(result)
    assert "held open by its circuit breaker: crashes" in result.stderr
    crashes = document["strategies"]["crashes"]
    assert crashes["breaker_events"][-1]["kind"] == "open"
    assert [e["kind"] for e in crashes["breaker_events"]] == ["restart"] * 5 + ["open"]
    assert crashes["breaker_events"][0]["detail"] == "crash (segmentation fault (SIGSEGV))"
    assert document["run"]["final_states"]["crashes"] == "open"
    assert document["strategies"]["closes"]["trades"] > 0
    assert "closes" not in document["run"]["strategy_errors"]  # it raises if a candle beats its order's fill
    bad = backtest("--data", bars, "--config", config, "--set", "closes.lookback=many", cwd=tmp_path)
    assert bad.returncode == 0  # the strategy fails to boot with a config error: held open, reported
    assert "closes" in bad.stdout


def test_from_and_to_bound_the_data(tmp_path: Path) -> None:
    bars = write_candles(tmp_path / "bars.jsonl", candles(180))  # 2024-01-01 00:00 to 02:59
    config = write_config(tmp_path / "c.yaml", {"closes": {"plugin": "closes_momentum"}})
    document = report(backtest("--data", bars, "--config", config, "--json", "--from", "2024-01-01T01:00:00Z",
                               "--to", "2024-01-01T02:00:00Z", cwd=tmp_path))  # fmt: skip
    assert document["run"]["events"] == 60
    assert document["period"]["start"].startswith("2024-01-01T01:00")


def test_timers_fire_in_simulated_time(tmp_path: Path) -> None:
    """A strategy trading only on a 10-minute timer: each order fills at the open of the bar its timer's
    time opens (the timer fires, and its order is placed, before that bar is matched)."""
    bars = write_candles(tmp_path / "bars.jsonl", candles(125))  # 00:00 .. 02:04
    config = write_config(tmp_path / "c.yaml", {"timed": {"plugin": "timed_trader"}})
    document = report(backtest("--data", bars, "--config", config, "--json", cwd=tmp_path))
    trades = document["trades"]
    minutes = [(t["entry_ns"] - START_NS) // MINUTE_NS for t in trades] + [
        (trades[-1]["exit_ns"] - START_NS) // MINUTE_NS
    ]
    assert minutes[:6] == [10, 30, 50, 70, 90, 110]  # on_start's every(600 s) is anchored at the first event
    assert [(t["exit_ns"] - START_NS) // MINUTE_NS for t in trades[:5]] == [20, 40, 60, 80, 100]


@pytest.mark.parametrize(("cancel_after_s", "filled"), [(2.0, False), (3.0, True)])
def test_a_timers_decision_is_acted_on_before_the_next_event_is_matched(
    tmp_path: Path, cancel_after_s: float, filled: bool
) -> None:
    """A buy limit at 95 rests from 0 s; a tick at 2.5 s asks 90. A timer cancel at 2.0 s beats it."""
    lines = [
        {"symbol": "TEST", "timestamp": stamp(START_NS + ms * 1_000_000), "type": "tick", "bid_price": bid,
         "ask_price": bid + 0.5, "bid_size": 1, "ask_size": 1}
        for ms, bid in ((0, 99.5), (1000, 99.5), (2500, 89.5), (3500, 89.5))
    ]  # fmt: skip
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_text("".join(json.dumps(line) + "\n" for line in lines))
    drop = {"plugin": "timer_cancel", "parameters": {"cancel_after_s": cancel_after_s}}
    config = write_config(tmp_path / "c.yaml", {"drop": drop})
    summary = report(backtest("--data", ticks, "--config", config, "--json", cwd=tmp_path))["strategies"]["drop"]
    assert (summary["traded_notional"] > 0) is filled

"""Crash capture end to end: ``strategy-engine run`` writes captures, ``strategy-engine reproduce`` replays them.

The test plugin ``faulty`` counts the ticks it is given and, on the ``at``-th, fails the way its
``mode`` says: ``raise`` (a RuntimeError whose text carries that tick's values), ``hang``, ``exit``
(``os._exit(3)``) or ``segv``. Replays run as subprocesses with ``--ledger`` in a scratch folder,
so the captures land in ``captures/`` beside it; one case runs live against real redis-server and
nats-server and reads the capture off ``/status`` and ``/metrics``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator_stack import OperatorStack, poll_until
from tests.integration.test_cli import _env, write_ticks
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FAULTY = '''"""Test plugin: fails on the ``at``-th tick it is given, as ``mode`` says."""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass

from sdk import Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class FaultyConfig(StrategyConfig):
    at: int = 1000
    mode: str = "raise"
    every: bool = False  # raise on every tick from the at-th on


class Faulty(Strategy[FaultyConfig]):
    name = "faulty"

    def __init__(self, config: FaultyConfig) -> None:
        super().__init__(config)
        self.seen = 0

    def on_tick(self, tick: Tick) -> None:
        self.seen += 1
        if self.seen == self.config.at or (self.config.every and self.seen > self.config.at):
            getattr(self, "_" + self.config.mode)(tick)

    def _raise(self, tick: Tick) -> None:
        raise RuntimeError(
            f"tick #{self.seen}: {tick.symbol} sequence {tick.sequence} bid {tick.bid_price} ask {tick.ask_price} "
            f"at {tick.timestamp_ns}"
        )

    def _hang(self, tick: Tick) -> None:
        while True:
            time.sleep(1)

    def _exit(self, tick: Tick) -> None:
        os._exit(3)

    def _segv(self, tick: Tick) -> None:
        ctypes.string_at(0)


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[FaultyConfig]]]:
    return [Faulty]
'''


def cli(*args: str | Path, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host.cli", *map(str, args)], cwd=cwd, env=_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def project(folder: Path, engine: dict[str, Any] | None = None, **parameters: Any) -> Path:
    """A project with the ``faulty`` plugin and a config running it as strategy ``f`` on BTCUSDT."""
    (folder / "plugins" / "faulty").mkdir(parents=True)
    (folder / "plugins" / "faulty" / "__init__.py").write_text(FAULTY)
    config = {
        "engine": {"pluginsDir": "plugins", "handshakeTimeout": "5s", "stopGrace": "1s", **(engine or {})},
        "strategies": {"f": {"plugin": "faulty", "strategy": "faulty", "symbols": ["BTCUSDT"],
                             "parameters": parameters}},
    }  # fmt: skip
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def replay(folder: Path, config: Path, ticks: int) -> subprocess.CompletedProcess[str]:
    data = write_ticks(folder / "ticks.jsonl", ticks)
    return cli("run", "--config", config, "--replay", data, "--ledger", folder / "ledger.sqlite", cwd=folder)


def captures(folder: Path) -> list[Path]:
    return sorted((folder / "captures" / "f").glob("*.json"))


def tick_line(folder: Path, number: int) -> dict[str, Any]:
    lines = (folder / "ticks.jsonl").read_text().splitlines()
    tick: dict[str, Any] = json.loads(lines[number - 1])
    return tick


class TestRaise:
    def test_raise_on_the_1000th_tick_is_captured_and_reproduced_exactly(self, tmp_path: Path) -> None:
        """The capture holds the error and the events; reproduce raises the same text at the 1000th tick."""
        config = project(tmp_path, at=1000)
        result = replay(tmp_path, config, 1200)
        assert result.returncode == 0, result.stderr[-3000:]
        [path] = captures(tmp_path)
        assert path.name.endswith("-error.json")
        assert f"capture (error) of f: {path}" in result.stdout
        document = json.loads(path.read_text())
        tick = tick_line(tmp_path, 1000)
        assert document["strategy"] == {
            "id": "f", "plugin": "faulty", "name": "faulty", "params": {"at": 1000, "symbols": ["BTCUSDT"]},
            "plugins_dir": str(tmp_path / "plugins"),
        }  # fmt: skip
        error = document["error"]
        assert error["handler"] == "on_tick" and error["kind"] == "exception"
        assert error["location"].startswith("faulty/__init__.py:")
        assert f"sequence 1000 bid {tick['bid_price']} ask {tick['ask_price']}" in error["text"]
        assert "Traceback" in error["traceback"] and "_raise" in error["traceback"]
        assert document["ring"]["overflowed"] is False and document["restore"] is None
        assert document["events"][0]["sequence"] == 1 and len(document["events"]) >= 1000
        assert document["sdk_version"]

        reproduced = cli("reproduce", path, cwd=tmp_path)
        assert reproduced.returncode == 1, reproduced.stdout + reproduced.stderr
        assert "Traceback (most recent call last)" in reproduced.stderr
        assert 'faulty/__init__.py", line' in reproduced.stderr and "in _raise" in reproduced.stderr
        assert f"reproduced on event 1000 of {len(document['events'])}" in reproduced.stderr
        assert f"(tick at {tick['timestamp'].removesuffix('Z')}" in reproduced.stderr  # the time as the file has it
        assert f"{error['text']} (the captured error)" in reproduced.stderr

    def test_reproduce_of_a_clean_run_exits_0(self, tmp_path: Path) -> None:
        """Plugin code fixed since the capture: the events run clean, exit 0 and says so."""
        config = project(tmp_path, at=30)
        assert replay(tmp_path, config, 50).returncode == 0
        [path] = captures(tmp_path)
        source = tmp_path / "plugins" / "faulty" / "__init__.py"
        source.write_text(source.read_text().replace("getattr(self, ", "None and getattr(self, "))
        reproduced = cli("reproduce", path, cwd=tmp_path)
        assert reproduced.returncode == 0, reproduced.stderr
        assert "no error reproduced" in reproduced.stdout

    def test_plugins_option_finds_a_moved_package(self, tmp_path: Path) -> None:
        """--plugins DIR loads the package from another folder than the one the capture names."""
        config = project(tmp_path / "a", at=5)
        assert replay(tmp_path / "a", config, 10).returncode == 0
        [path] = captures(tmp_path / "a")
        (tmp_path / "a" / "plugins").rename(tmp_path / "moved")
        missing = cli("reproduce", path, cwd=tmp_path)
        assert missing.returncode == 2 and "plugin 'faulty': no folder" in missing.stderr
        found = cli("reproduce", path, "--plugins", tmp_path / "moved", cwd=tmp_path)
        assert found.returncode == 1 and "tick #5" in found.stderr

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("not json", "not JSON"),
            ('{"format": "other"}', "format: expected 'strategy-engine-capture/1', got 'other'"),
            ('{"format": "strategy-engine-capture/1", "strategy": {"id": "f"}, "events": []}',
             "strategy.plugin: expected a non-empty string"),
            ('{"format": "strategy-engine-capture/1", "strategy": {"id": "f", "plugin": "p", "name": "n", '
             '"params": {}}, "events": [{"type": "tick"}]}', "events[0]: "),
        ],
    )  # fmt: skip
    def test_bad_capture_file_exits_2_naming_what_is_wrong(self, tmp_path: Path, content: str, message: str) -> None:
        """A file that is not a readable capture is refused with exit 2, naming the file and the field."""
        path = tmp_path / "bad.json"
        path.write_text(content)
        result = cli("reproduce", path, cwd=tmp_path)
        assert result.returncode == 2
        assert str(path) in result.stderr and message in result.stderr

    def test_missing_file_exits_2(self, tmp_path: Path) -> None:
        result = cli("reproduce", tmp_path / "nope.json", cwd=tmp_path)
        assert result.returncode == 2 and "nope.json: cannot be read" in result.stderr


class TestBacktest:
    def test_a_raise_in_a_backtest_leaves_a_capture_that_reproduces(self, tmp_path: Path) -> None:
        """``strategy-engine backtest``: the summary names the error and a capture that outlives the run
        (in the temporary folder's strategy-engine-captures/, not the run's scratch folder), and
        ``reproduce`` raises the same error at the 1000th tick."""
        config = project(tmp_path, at=1000)
        data = write_ticks(tmp_path / "ticks.jsonl", 1200)
        temporary = tmp_path / "tmp"
        temporary.mkdir()
        result = subprocess.run(
            [sys.executable, "-m", "host.cli", "backtest", "--config", str(config), "--data", str(data)],
            cwd=tmp_path, env=_env() | {"TMPDIR": str(temporary)}, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        [path] = sorted((temporary / "strategy-engine-captures" / "f").glob("*-error.json"))
        tick = tick_line(tmp_path, 1000)
        assert "f: 1 error(s), the last: on_tick at faulty/__init__.py:" in result.stdout
        assert f"sequence 1000 bid {tick['bid_price']}" in result.stdout
        assert f"capture (error) of f: {path}" in result.stdout
        assert "strategy-engine reproduce CAPTURE" in result.stdout
        reproduced = cli("reproduce", path, cwd=tmp_path)
        assert reproduced.returncode == 1, reproduced.stdout + reproduced.stderr
        assert "reproduced on event 1000 of " in reproduced.stderr and "(the captured error)" in reproduced.stderr

    def test_json_output_stays_json_and_the_capture_goes_to_stderr(self, tmp_path: Path) -> None:
        """With --json stdout is the report alone; the error and the capture's path are on stderr."""
        config = project(tmp_path, at=5, engine={"captureDir": "caps"})
        data = write_ticks(tmp_path / "ticks.jsonl", 20)
        result = cli("backtest", "--config", config, "--data", data, "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout)
        assert report["run"]["strategy_errors"]["f"]["count"] == 1
        [path] = sorted((tmp_path / "caps" / "f").glob("*-error.json"))
        assert f"capture (error) of f: {path}" in result.stderr


class TestRunnerFailures:
    @pytest.mark.parametrize("mode", ["hang", "exit", "segv"])
    def test_hung_and_crashed_runners_leave_captures(self, tmp_path: Path, mode: str) -> None:
        """A missed deadline is a timeout capture, an exit or a segfault a crash capture, with the batch in flight."""
        config = project(tmp_path, {"restartBudget": 1, "backoffInitial": "5s"}, at=40, mode=mode)
        replay(tmp_path, config, 60)
        kind = "timeout" if mode == "hang" else "crash"
        [path] = captures(tmp_path)
        assert path.name.endswith(f"-{kind}.json")
        document = json.loads(path.read_text())
        assert document["kind"] == kind
        in_flight = document["ring"]["in_flight"]
        assert in_flight >= 1
        assert 40 in [event["sequence"] for event in document["events"][-in_flight:]]
        if mode == "hang":
            assert "missed the" in document["error"]["text"] and "deadline" in document["error"]["text"]
        else:
            assert "lost" in document["error"]["text"]
            assert document["error"]["output"] or mode == "exit"


class TestLimits:
    def test_one_capture_per_kind_per_interval(self, tmp_path: Path) -> None:
        """A strategy raising on every tick leaves one capture for the interval; the rest are suppressed."""
        config = project(tmp_path, {"breakerConsecutiveFailures": 100000, "breakerWindowFailures": 100000}, at=10,
                         every=True)  # fmt: skip
        result = replay(tmp_path, config, 300)
        assert result.returncode == 0, result.stderr[-2000:]
        [path] = captures(tmp_path)
        assert "tick #10:" in json.loads(path.read_text())["error"]["text"]
        written = [line for line in result.stderr.splitlines() if "capture_written" in line]
        assert len(written) == 1, written
        errors = [line for line in result.stderr.splitlines() if '"strategy_error"' in line]
        assert len(errors) > 100  # every raise was charged; only the first was captured

    def test_newest_files_are_kept(self, tmp_path: Path) -> None:
        """captureInterval 0 writes a capture per failing batch; only the newest captureFiles stay."""
        engine = {"captureInterval": "0s", "captureFiles": 3, "breakerConsecutiveFailures": 100000,
                  "breakerWindowFailures": 100000, "maxBatchEvents": 1}  # fmt: skip
        config = project(tmp_path, engine, at=10, every=True)
        assert replay(tmp_path, config, 40).returncode == 0
        kept = captures(tmp_path)
        assert len(kept) == 3
        texts = [json.loads(p.read_text())["error"]["text"] for p in kept]
        assert [t.split(": ")[1] for t in texts] == ["tick #38", "tick #39", "tick #40"]


def test_live_capture_is_listed_on_status_and_counted(
    tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer
) -> None:
    """Live: the capture lands beside the ledger, /status lists it, captures_written_total counts it."""
    stack = OperatorStack(tmp_path / "project", redis_server, nats_server)
    (stack.plugins / "faulty").mkdir()
    (stack.plugins / "faulty" / "__init__.py").write_text(FAULTY)
    stack.config["strategies"] = {
        "f": {"plugin": "faulty", "strategy": "faulty", "symbols": ["BTCUSDT"], "parameters": {"at": 20}},
    }
    try:
        stack.start(ready=("f",))
        listed = poll_until(
            lambda: (stack.status() or {}).get("captures"), 30, f"a capture on /status ({stack.tail()})"
        )
        [record] = listed
        path = Path(record["path"])
        assert record["strategy"] == "f" and record["kind"] == "error"
        assert path.parent == stack.folder / "captures" / "f" and path.is_file()
        assert stack.metric("captures_written_total", strategy="f", kind="error") == 1
        [written] = stack.logs("capture_written")
        assert written["path"] == str(path)
        reproduced = cli("reproduce", path, cwd=stack.folder)
        assert reproduced.returncode == 1 and "tick #20:" in reproduced.stderr
    finally:
        stack.stop()

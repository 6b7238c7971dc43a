"""The replay as an operator runs it: ``strategy-engine run --config C --replay FILE`` as a subprocess.

A replay is composed by the same root as a live run (``host.app.compose``), so what the live tests
show holds here too where it makes sense: the HTTP port can be watched during a long replay
(``--http``), the ledger is the file named by ``--ledger`` or ``engine.ledgerPath``, and a plugin
edited mid-replay is swapped to new code with its state carried. Demo-feed options with a live
config are a usage error, not a silent live run.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.operator_stack import engine_command, environment, poll_until, write_counter
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def write_ticks(path: Path, count: int) -> Path:
    """``count`` BTCUSDT ticks 100 ms apart, a gentle zig-zag around 60,000."""
    start = datetime(2024, 8, 8, 23, 54, tzinfo=UTC)
    with path.open("w") as out:
        for i in range(count):
            mid = 60_000.0 * (1 + 0.0002 * (i % 20))
            stamp = (start + timedelta(milliseconds=100 * i)).isoformat().replace("+00:00", "Z")
            out.write(json.dumps({
                "symbol": "BTCUSDT", "timestamp": stamp, "sequence": i + 1, "type": "tick",
                "bid_price": round(mid - 0.01, 2), "ask_price": round(mid + 0.01, 2), "bid_size": 5.0,
                "ask_size": 5.0,
            }) + "\n")  # fmt: skip
    return path


def project(tmp_path: Path, *, every: int = 10, ledger: str | None = None, delay_ms: float = 0.0) -> tuple[Path, int]:
    """A project folder with config.yaml (one COUNTER strategy, HTTP on a free port) and plugins/counter."""
    folder = tmp_path / "project"
    write_counter(folder / "plugins", "counter", "v1")
    port = free_port()
    engine: dict[str, object] = {"mode": "simulation", "pluginsDir": "plugins", "handshakeTimeout": "5s"}
    if ledger is not None:
        engine["ledgerPath"] = ledger
    config = {
        "server": {"port": port},
        "engine": engine,
        "risk": {"maxOrdersPerSecond": 100000, "maxOrdersPerMinute": 1000000, "maxPositionSize": 10,
                 "maxOrderValue": 1e9, "maxPortfolioNotional": 1e12},
        "strategies": {"counter": {"symbols": ["BTCUSDT"],
                                   "parameters": {"every": every, "delay_ms": delay_ms, "side": "buy"}}},
    }  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder, port


def replay(folder: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*engine_command(), "run", "--config", "config.yaml", *args], cwd=folder, env=environment(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def orders(ledger: Path) -> list[dict[str, str]]:
    if not ledger.exists():
        return []
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT metadata FROM orders ORDER BY created_ns, rowid").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    return [json.loads(metadata) for (metadata,) in rows]


def http_status(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as reply:
            data: dict[str, object] = json.loads(reply.read())
            return data
    except OSError:
        return None


class TestReplayParity:
    def test_http_is_served_during_the_replay_and_the_named_ledger_is_written(self, tmp_path: Path) -> None:
        """--http serves /status while it replays; --ledger PATH holds the orders afterwards."""
        # 0.3 ms a tick paces the replay to >= 1.5 s whatever the machine: /status is asked meanwhile.
        folder, port = project(tmp_path, delay_ms=0.3)
        ticks = write_ticks(tmp_path / "ticks.jsonl", 5_000)
        ledger = tmp_path / "out" / "replay.sqlite"
        proc = replay(folder, "--replay", str(ticks), "--ledger", str(ledger), "--http")
        try:
            status = poll_until(lambda: proc.poll() is None and http_status(port), 30, "/status during the replay")
            assert status["mode"] == "simulation"
            out, err = proc.communicate(timeout=90)
        finally:
            proc.kill()
        assert proc.returncode == 0, err[-2000:]
        assert "replayed 5,000 events" in out
        placed = orders(ledger)
        # How many signals become orders depends on how the aggregator batches them (issue: backtest
        # determinism); that the orders are in the named file is what this test is about.
        assert placed and all(o["version"] == "v1" for o in placed)
        assert http_status(port) is None, "the port closes with the replay"

    def test_config_ledger_path_is_honoured_and_the_default_is_temporary(self, tmp_path: Path) -> None:
        """engine.ledgerPath (relative to the config's folder) receives a replay; without it nothing is left."""
        folder, _ = project(tmp_path, ledger="var/backtest.sqlite")
        ticks = write_ticks(tmp_path / "ticks.jsonl", 500)
        proc = replay(folder, "--replay", str(ticks))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert orders(folder / "var" / "backtest.sqlite")

        bare, _ = project(tmp_path / "bare")
        proc = replay(bare, "--replay", str(ticks))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert not list(bare.rglob("*.sqlite")) and not (bare / "var").exists()

    def test_a_plugin_edited_mid_replay_serves_new_code_with_its_state(self, tmp_path: Path) -> None:
        """The hot reload of a live run, in a replay: v2 takes over and the tick count carries on."""
        # 0.3 ms a tick paces the replay to >= 3.6 s whatever else the machine runs: the reload
        # (about 1 s) lands mid-replay.
        folder, _ = project(tmp_path, every=5, delay_ms=0.3)
        ticks = write_ticks(tmp_path / "ticks.jsonl", 12_000)
        ledger = tmp_path / "replay.sqlite"
        proc = replay(folder, "--replay", str(ticks), "--ledger", str(ledger), "--http")
        try:
            poll_until(lambda: proc.poll() is None and orders(ledger), 30, "the replay trading")
            source = folder / "plugins" / "counter" / "__init__.py"
            source.write_text(source.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
            poll_until(lambda: proc.poll() is not None or any(o["version"] == "v2" for o in orders(ledger)), 30,
                       "v2 trading")  # fmt: skip
            _, err = proc.communicate(timeout=90)
        finally:
            proc.kill()
        assert proc.returncode == 0, err[-2000:]
        placed = orders(ledger)
        versions = [o["version"] for o in placed]
        assert "v2" in versions, "the replay ended before the reload; make the feed longer"
        first_v2 = versions.index("v2")
        assert set(versions[:first_v2]) == {"v1"} and set(versions[first_v2:]) == {"v2"}
        seen = [int(o["seen"]) for o in placed]
        assert seen == sorted(set(seen)) and seen[first_v2] > seen[first_v2 - 1], "the tick count did not carry over"


class TestUsage:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("--minutes", "5"), "--minutes shape(s) the generated demo feed, but a run with --config and no --replay "
                                 "is live"),
            (("--seed", "3", "--replay", "ticks.jsonl"), "--seed shape(s) the generated demo feed, but --replay"),
        ],
    )  # fmt: skip
    def test_demo_options_outside_the_demo_exit_2(self, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
        """--minutes/--seed with a live config or a replay: exit 2 before anything starts, saying why."""
        folder, _ = project(tmp_path)
        write_ticks(folder / "ticks.jsonl", 10)
        started = time.monotonic()
        proc = replay(folder, *args)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 2 and message in err, err
        assert time.monotonic() - started < 15


class TestOutput:
    def test_stderr_is_json_lines_when_not_a_terminal(self, tmp_path: Path) -> None:
        """Piped stderr: one JSON object a line (no progress text glued to log lines); stdout has the summary."""
        folder, _ = project(tmp_path)
        ticks = write_ticks(tmp_path / "ticks.jsonl", 3000)
        proc = replay(folder, "--replay", str(ticks))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert "\r" not in err
        for line in err.splitlines():
            if not line.startswith("strategy-engine:"):
                assert isinstance(json.loads(line), dict), line
        assert "replayed 3,000 events" in out

    def test_log_level_and_format_flags_override_the_config(self, tmp_path: Path) -> None:
        """--log-level warning drops the info lines; --log-format console makes them text, not JSON."""
        folder, _ = project(tmp_path)
        ticks = write_ticks(tmp_path / "ticks.jsonl", 100)
        proc = replay(folder, "--replay", str(ticks), "--log-level", "warning")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "strategy_ready" not in err, err[-2000:]
        proc = replay(folder, "--replay", str(ticks), "--log-format", "console")
        _, err = proc.communicate(timeout=60)
        ready = [line for line in err.splitlines() if "strategy_ready" in line]
        assert ready and not ready[0].lstrip().startswith("{"), err[-2000:]

    def test_run_help_says_config_alone_is_live(self, tmp_path: Path) -> None:
        """run --help says what --config without --replay does."""
        help_text = subprocess.run([*engine_command(), "run", "--help"], env=environment(), capture_output=True,
                                   text=True, timeout=30).stdout  # fmt: skip
        assert "With --config and no --replay: run LIVE" in " ".join(help_text.split())

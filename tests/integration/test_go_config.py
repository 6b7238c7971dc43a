"""The Go service's own config.yaml runs the engine: a drop-in for the Go service's operators.

``strategy-engine run --config config.yaml`` (as ``python -m host.cli``, so this checkout's code
runs) is started as a subprocess against a real redis-server and nats-server on free ports. The
config is ``tests/compat/go-service-config.yaml`` (a byte-identical copy of the Go service's
config.example.yaml, see tests/compat/README.md) with only its ports and addresses moved to the
test's servers, by exact text replacement, so every other byte is the Go service's; a test below
checks that the parsed result differs from the original at those keys only.

The Go file says ``engine.pluginsDir: "./plugins"``, which the engine resolves against the config
file's folder (as the Go service's deployment had its plugins next to its config). The simplest
honest layout is the operator's: the config in a folder of its own whose ``plugins`` is a symlink to
this project's ``plugins/`` folder, where the built-in momentum, market_making and scalping live.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import PLUGINS, ROOT
from tests.integration.operator_stack import Publisher, environment, poll_until
from tests.servers import NatsServer, RedisServer, free_port

pytestmark = pytest.mark.integration

# A byte-for-byte copy of the Go service's config.example.yaml (the shared compat fixture).
GO_CONFIG = ROOT / "tests" / "compat" / "go-service-config.yaml"
BUILTINS = ("momentum", "market_making", "scalping")


@dataclass(frozen=True)
class Moved:
    """The test's servers: the only values of the Go file that change."""

    http_port: int
    redis_port: int
    nats_url: str
    order_execution_addr: str


def moved_config(moved: Moved) -> str:
    """The Go file's text with its ports and addresses replaced, each replacement made exactly once."""
    text = GO_CONFIG.read_text(encoding="utf-8")
    replacements = [
        ('  host: "0.0.0.0"\n  port: 9092\n', f'  host: "127.0.0.1"\n  port: {moved.http_port}\n'),
        ('  host: "localhost"\n  port: 6379\n', f'  host: "127.0.0.1"\n  port: {moved.redis_port}\n'),
        ('  url: "nats://localhost:4222"\n', f'  url: "{moved.nats_url}"\n'),
        ('  orderExecutionAddr: "localhost:50051"\n', f'  orderExecutionAddr: "{moved.order_execution_addr}"\n'),
        ('  port: 9092\n  path: "/metrics"\n', f'  port: {moved.http_port}\n  path: "/metrics"\n'),
    ]
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in differences(old.get(k), new.get(k), f"{path}.{k}" if path else k)]
    return [] if old == new else [path]


@pytest.fixture
def moved(redis_server: RedisServer, nats_server: NatsServer) -> Moved:
    return Moved(free_port(), redis_server.port, nats_server.url, f"127.0.0.1:{free_port()}")


@pytest.fixture
def engine(tmp_path: Path, moved: Moved) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The engine running the moved Go config from a folder whose plugins/ is the project's."""
    folder = tmp_path / "go-service"
    folder.mkdir()
    (folder / "plugins").symlink_to(PLUGINS, target_is_directory=True)
    config = folder / "config.yaml"
    config.write_text(moved_config(moved), encoding="utf-8")
    log = folder / "engine.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host.cli", "run", "--config", str(config)], cwd=folder, env=environment(),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def strategies(port: int, proc: subprocess.Popen[bytes], log: Path) -> dict[str, dict[str, Any]] | None:
    if proc.poll() is not None:
        raise AssertionError(f"the engine exited with {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as reply:
            status = json.loads(reply.read())
    except OSError:
        return None
    return {s["id"]: s for s in status["strategies"]}


def log_events(log: Path, event: str) -> list[dict[str, Any]]:
    records = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                records.append(record)
    return records


class TestGoServiceConfigRuns:
    def test_only_ports_and_addresses_are_moved(self, moved: Moved) -> None:
        """The test's config differs from the Go service's at its ports and addresses only."""
        original = yaml.safe_load(GO_CONFIG.read_text(encoding="utf-8"))
        changed = yaml.safe_load(moved_config(moved))
        assert differences(original, changed) == [
            "server.host", "server.port", "redis.host", "redis.port", "nats.url", "grpc.orderExecutionAddr",
            "metrics.port",
        ]  # fmt: skip

    def test_the_three_builtin_strategies_run(self, engine: tuple[subprocess.Popen[bytes], Path], moved: Moved) -> None:
        """Started on the Go service's config, the engine runs momentum, market_making and scalping (each
        fed market data from Redis), logs the ignored keys once with their reasons, and stops cleanly."""
        proc, log = engine

        def serving() -> bool:
            found = strategies(moved.http_port, proc, log) or {}
            return all(s in found and found[s]["state"] == "running" and found[s]["events"] > 0 for s in BUILTINS)

        publisher = Publisher(moved.redis_port, rate=20.0)
        publisher.start()
        try:
            what = f"{BUILTINS} running and fed on /status ({log.read_text(errors='replace')[-2000:]})"
            poll_until(serving, 60, what, interval=0.2)
        finally:
            publisher.stop()
        ignored = {record["key"] for record in log_events(log, "config_key_ignored")}
        assert {"server.mode", "engine.maxConcurrent", "engine.reloadInterval", "strategies.pythonPath"} <= ignored
        assert "grpc.orderExecutionAddr" in {record["key"] for record in log_events(log, "config_key_mapped")}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

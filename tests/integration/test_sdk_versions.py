"""SDK and protocol versions between host and runner: told in Hello, checked by the host.

A runner of another protocol version is a real runner process started from a copy of the engine's
runner-side packages (``runner``, ``sdk``, ``protocol``, ``engine_proto``) whose ``protocol`` says that
version, as an engine upgraded on one side only would be: the host's ``_code_roots`` (what a runner's
``PYTHONPATH`` is made of) points at the copy, while the host keeps its own modules. A package in
the plugins folder cannot do it: the runner never imports from there before its sandbox (``-P``).
``api_1_0`` is a strategy written against the SDK 1.0 public API only and never edited since.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sdk
from engine_proto import strategy_pb2 as pb
from host.session import BootFailed
from host.supervisor import process
from protocol import wire
from tests.helpers import ROOT, RUNNERS
from tests.integration.conftest import RunnerHarness
from tests.integration.test_cli import _env, cli, summary_rows, write_config, write_ticks

pytestmark = pytest.mark.integration

REFUSED_2_0 = "runner speaks strategy protocol 2.0, this host speaks 1.x; install a matching SDK"
RUNNER_SIDE = ("runner", "sdk", "protocol", "engine_proto")


def runner_side_speaking(folder: Path, version: str) -> Path:
    """A copy of the runner's packages whose ``protocol`` says ``version``; the folder holding them."""
    root = folder / f"engine-{version}"
    for package in RUNNER_SIDE:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    wire_py = root / "protocol" / "wire.py"
    source = wire_py.read_text()
    line = f'PROTOCOL_VERSION = "{wire.PROTOCOL_VERSION}"\n'
    assert source.count(line) == 1, "protocol/wire.py no longer sets PROTOCOL_VERSION on one line"
    wire_py.write_text(source.replace(line, f'PROTOCOL_VERSION = "{version}"\n'))
    return root


def plugins_with_api_1_0(folder: Path) -> Path:
    plugins = folder / "plugins"
    shutil.copytree(RUNNERS / "api_1_0", plugins / "api_1_0")
    return plugins


class TestHello:
    async def test_hello_carries_the_protocol_and_sdk_versions(self, runners: RunnerHarness) -> None:
        """A runner says the protocol version it speaks and the SDK version its strategies run on."""
        live = await runners.spawn(RUNNERS / "api_1_0", [{"id": "a", "name": "api_1_0", "params": {}}])
        hello = await (await runners.connect(live)).handshake({}, timeout_s=10)
        assert (hello.protocol_version, hello.sdk_version) == (wire.PROTOCOL_VERSION, sdk.__version__)
        assert (wire.PROTOCOL_VERSION, sdk.__version__) == ("1.0", "1.0.0")

    async def test_runner_of_another_major_version_is_refused(
        self, runners: RunnerHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Hello from a protocol 2.0 runner is a boot failure of kind PROTOCOL_VERSION that says why."""
        root = runner_side_speaking(tmp_path, "2.0")
        monkeypatch.setattr(process, "_code_roots", lambda: [str(root)])
        plugins = plugins_with_api_1_0(tmp_path)
        live = await runners.spawn(plugins / "api_1_0", [{"id": "a", "name": "api_1_0", "params": {}}])
        session = await runners.connect(live)
        with pytest.raises(BootFailed) as refused:
            await session.loaded(timeout_s=10)
        failure = refused.value.failure
        assert (failure.kind, failure.plugin, failure.reason) == (pb.PROTOCOL_VERSION, "api_1_0", REFUSED_2_0)
        assert str(refused.value).endswith(f"failed to boot [PROTOCOL_VERSION] api_1_0: {REFUSED_2_0}")
        assert session.hello is None  # a refused runner is never started

    async def test_runner_of_an_older_minor_version_is_accepted(
        self, runners: RunnerHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A runner on an older minor version of the host's major (here 1.0 for a 1.x host) is served.

        The host speaks 1.0, the lowest 1.x, so the runner's copy says "1.0" too; the rule for a
        lower minor is the pure ``wire.protocol_refusal`` (tests/unit/test_wire.py).
        """
        root = runner_side_speaking(tmp_path, "1.0")
        monkeypatch.setattr(process, "_code_roots", lambda: [str(root)])
        plugins = plugins_with_api_1_0(tmp_path)
        live = await runners.spawn(plugins / "api_1_0", [{"id": "a", "name": "api_1_0", "params": {}}])
        hello = await (await runners.connect(live)).handshake({}, timeout_s=10)
        assert hello.protocol_version == "1.0"


class TestEngine:
    def test_engine_refuses_a_runner_of_another_major_version(self, tmp_path: Path) -> None:
        """strategy-engine run: the strategy's breaker opens on the refusal, shown with its reason; exit 1.

        The engine runs as a subprocess, its runners from a 2.0 copy of the runner side (the host's
        ``_code_roots`` set to it before ``host.cli.main`` runs)."""
        root = runner_side_speaking(tmp_path, "2.0")
        plugins_with_api_1_0(tmp_path)
        config = write_config(tmp_path / "config.yaml", "plugins", "  old:\n    plugin: api_1_0\n")
        ticks = write_ticks(tmp_path / "ticks.jsonl")
        launch = (
            "import sys; from host.supervisor import process; from host.cli import main; "
            f"process._code_roots = lambda: [{str(root)!r}]; sys.exit(main())"
        )
        result = subprocess.run(
            [sys.executable, "-c", launch, "run", "--config", str(config), "--replay", str(ticks)],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr[-3000:]
        row = summary_rows(result.stdout)["old"]
        assert (row["breaker"], row["restarts"], row["signals"]) == ("open", "0", "0")
        assert f"[PROTOCOL_VERSION] api_1_0: {REFUSED_2_0}" in result.stdout

    def test_a_strategy_written_for_sdk_1_0_loads_and_trades(self, tmp_path: Path) -> None:
        """api_1_0 replays through the engine: orders and fills; the log names both versions."""
        shutil.copytree(RUNNERS / "api_1_0", tmp_path / "plugins" / "api_1_0")
        strategies = "  v10:\n    plugin: api_1_0\n    parameters:\n      every: 20\n"
        config = write_config(tmp_path / "config.yaml", "plugins", strategies)
        result = cli("run", "--config", config, "--replay", write_ticks(tmp_path / "ticks.jsonl"), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        row = summary_rows(result.stdout)["v10"]
        assert (row["state"], row["breaker"]) == ("running", "closed")
        assert int(row["orders"]) > 0 and int(row["fills"]) > 0
        loaded = [json.loads(line) for line in result.stderr.splitlines() if '"runner_loaded"' in line]
        assert [(e["strategy"], e["protocol_version"], e["sdk_version"]) for e in loaded] == [
            ("v10", wire.PROTOCOL_VERSION, sdk.__version__)
        ]

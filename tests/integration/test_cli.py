"""The ``strategy-engine`` command line, run as a user runs it: a subprocess in a scratch folder.

These tests walk the strategy author's flow of plugins/README.md (scaffold a package, unit-test
it, load it in a sandboxed runner, replay recorded data through it with a config of one's own)
and check the command line's answers to the usual mistakes: exit code 2 and the key, file or
folder at fault for a usage or config error, 1 for a plugin that does not load or bad data.
The SDK's wheel is built offline and installed alone in a fresh venv, where the strategy and
tests of sdk/README.md run (pluggy and pytest copied from this interpreter: no network).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from host.scaffold import new_plugin
from tests.helpers import ROOT, RUNNERS, pid_alive
from tests.servers import NatsServer, RedisServer

pytestmark = pytest.mark.integration

BUILTINS = ("momentum", "market_making", "scalping")
SUMMARY_COLUMNS = (
    "strategy", "state", "breaker", "restarts", "events", "signals", "orders", "fills", "rejected", "position",
)  # fmt: skip


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m host.cli ARGS`` in ``cwd``, as a user would type ``strategy-engine ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "host.cli", *map(str, args)],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTEST_ADDOPTS", None)
    return env


def write_ticks(path: Path, count: int = 300, *, bad_line: int | None = None) -> Path:
    """``count`` BTCUSDT ticks in the seed's JSON-lines format, a zig-zag of 0.5 % legs."""
    start = datetime(2024, 8, 8, 23, 54, tzinfo=UTC)
    lines = []
    for i in range(count):
        mid = 60_000.0 * (1 + 0.005 * ((i // 10) % 2) + 0.0005 * (i % 10))
        stamp = (start + timedelta(milliseconds=250 * i)).isoformat().replace("+00:00", "Z")
        bid, ask = round(mid - 0.01, 2), round(mid + 0.01, 2)
        tick = {"symbol": "BTCUSDT", "timestamp": stamp, "sequence": i + 1, "type": "tick",
                "bid_price": bid, "bid_size": 1.5, "ask_price": ask, "ask_size": 2.0}  # fmt: skip
        lines.append(json.dumps(tick))
    if bad_line is not None:
        lines[bad_line - 1] = lines[bad_line - 1][:-10]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(path: Path, plugins_dir: str, strategies: str) -> Path:
    path.write_text(f"engine:\n  pluginsDir: {plugins_dir}\nstrategies:\n{strategies}")
    return path


def summary_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The per-strategy table of a replay summary, by strategy id."""
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:3] == ["strategy", "state", "breaker"])
    rows = {}
    for line in lines[head + 1 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = dict(zip(SUMMARY_COLUMNS, cells, strict=False))
    return rows


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An author's folder outside the repository, with a scaffolded ``my_strat`` in plugins/."""
    folder = tmp_path / "project"
    new_plugin("my_strat", folder / "plugins")
    return folder


MY_STRAT = "  my_strat:\n    symbols: [BTCUSDT]\n    parameters:\n      quantity: 0.01\n      min_move: 0.002\n"


class TestVersion:
    def test_prints_the_version(self, tmp_path: Path) -> None:
        """--version names the program, its version, the SDK's and the strategy protocol's, and exits 0."""
        result = cli("--version", cwd=tmp_path)
        assert result.returncode == 0
        assert result.stdout.startswith("strategy-engine ")
        assert result.stdout.rstrip().endswith("(SDK 1.0.0, strategy protocol 1.0)")


class TestRun:
    def test_demo_without_config_runs_the_builtin_strategies(self, tmp_path: Path) -> None:
        """With no config, a short generated feed goes through the three built-in strategies."""
        result = cli("run", "--minutes", "1", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        rows = summary_rows(result.stdout)
        assert set(rows) == set(BUILTINS)
        assert all(row["state"] == "running" and int(row["events"].replace(",", "")) > 0 for row in rows.values())

    def test_unknown_config_key_exits_2_naming_its_path(self, tmp_path: Path) -> None:
        """An unknown key stops loading with exit 2 and the full key path on stderr."""
        config = tmp_path / "config.yaml"
        config.write_text("engine:\n  pluginsDir: plugins\n  bogusKey: 1\n")
        result = cli("run", "--config", config, "--replay", write_ticks(tmp_path / "t.jsonl"), cwd=tmp_path)
        assert result.returncode == 2
        assert "engine.bogusKey: unknown key" in result.stderr

    def test_live_run_stops_cleanly_on_sigterm(
        self, project: Path, redis_server: RedisServer, nats_server: NatsServer
    ) -> None:
        """``run --config`` runs live on Redis and NATS until SIGTERM, then stops its runners and exits 0."""
        ledger = project / "var" / "ledger.sqlite"
        config = project / "config.yaml"
        config.write_text(
            f"redis: {{port: {redis_server.port}, marketDataChannels: ['market:btcusdt']}}\n"
            f"nats: {{url: '{nats_server.url}'}}\n"
            f"server: {{port: 0}}\nmetrics: {{port: 0}}\n"
            f"engine: {{mode: simulation, pluginsDir: plugins, ledgerPath: {ledger}}}\nstrategies:\n{MY_STRAT}"
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "host.cli", "run", "--config", str(config)],
            cwd=project, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        pids: list[int] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                assert line, f"the engine exited early: {proc.poll()}"
                if '"runner_spawned"' in line:
                    pids.append(json.loads(line)["pid"])
                if '"strategy_ready"' in line:
                    break
            else:
                raise AssertionError("no strategy became ready within 30 s")
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 0, err[-2000:]
        assert "Shutting down strategy engine" in err
        assert pids and not any(pid_alive(pid) for pid in pids)
        assert ledger.is_file()

    def test_malformed_replay_line_is_named(self, project: Path) -> None:
        """A line that is not JSON ends the replay with exit 1, naming the file and line."""
        config = write_config(project / "config.yaml", "plugins", MY_STRAT)
        ticks = write_ticks(project / "ticks.jsonl", 20, bad_line=7)
        result = cli("run", "--config", config, "--replay", ticks, cwd=project)
        assert result.returncode == 1
        assert "bad market data: " in result.stderr and "ticks.jsonl:7:" in result.stderr
        assert "Traceback" not in result.stderr

    def test_missing_replay_file_exits_2(self, tmp_path: Path) -> None:
        """A --replay file that does not exist is named before anything starts."""
        result = cli("run", "--replay", tmp_path / "nope.jsonl", cwd=tmp_path)
        assert result.returncode == 2
        assert "nope.jsonl: no such file" in result.stderr

    def test_missing_plugin_folder_names_where_it_looked(self, project: Path, tmp_path: Path) -> None:
        """A pluginsDir without the strategy's package exits 2, naming the folder resolved against the config's."""
        config = write_config(project / "config.yaml", "plugin", MY_STRAT)
        result = cli("run", "--config", config, "--replay", write_ticks(project / "t.jsonl", 5), cwd=tmp_path)
        assert result.returncode == 2
        assert f"strategies.my_strat: no plugin folder {project / 'plugin' / 'my_strat'}" in result.stderr
        assert "the config file's folder" in result.stderr

    def test_rejected_parameters_exit_1_with_the_breaker_open(self, project: Path) -> None:
        """Parameters the strategy's config rejects open its breaker; the run says why and exits 1."""
        config = write_config(project / "config.yaml", "plugins", "  my_strat:\n    parameters:\n      min_mov: 1\n")
        result = cli("run", "--config", config, "--replay", write_ticks(project / "t.jsonl", 5), cwd=project)
        assert result.returncode == 1
        assert summary_rows(result.stdout)["my_strat"]["breaker"] == "open"
        assert "strategies.my_strat.min_mov: unknown key" in result.stdout
        assert "stopped by its circuit breaker: my_strat" in result.stderr


class TestNewPlugin:
    def test_scaffold_passes_its_own_tests(self, tmp_path: Path) -> None:
        """new-plugin writes a package whose tests pass with pytest run from the plugins' parent."""
        created = cli("new-plugin", "my_strat", "--dir", "plugins", cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        assert "python -m pytest plugins/my_strat" in created.stdout
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "plugins/my_strat", "-q", "-p", "no:cacheprovider"],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert tests.returncode == 0, tests.stdout[-3000:]
        assert "9 passed" in tests.stdout

    def test_scaffold_shows_the_current_api(self, project: Path) -> None:
        """The template (what authors start from) declares the config once, follows its orders in
        on_order, schedules a timer in on_start, and its tests use fills, order updates and timers."""
        package = project / "plugins" / "my_strat"
        strategy = (package / "strategy.py").read_text()
        assert "class MyStrat(Strategy[MyStratConfig]):" in strategy and "Config = " not in strategy
        assert (
            "def on_order(self, update: OrderUpdate)" in strategy
            and "self.in_flight[tick.symbol] = self.emit(" in strategy
        )
        assert 'self.every("report", ' in strategy and "def on_timer(self, timer: Timer)" in strategy
        assert "__post_init__" not in (package / "config.py").read_text()
        tests = (package / "tests" / "test_my_strat.py").read_text()
        assert "fills=FillModel()" in tests and "OrderUpdateStatus.REJECTED" in tests and "until_ns=" in tests

    def test_scaffold_passes_mypy_strict_and_the_repository_ruff_settings(self, project: Path) -> None:
        """As plugins/README.md says: mypy --strict, ruff check and ruff format --check pass on the new package,
        whatever the length of its name (ruff with the engine's pyproject.toml, the package's folder as a source
        root as in the checkout)."""
        plugins = project / "plugins"
        long_name = "mean_reversion_on_bollinger_bands_of_the_mid"
        new_plugin(long_name, plugins)
        typed = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "my_strat", long_name],
            cwd=plugins, env=_env() | {"MYPYPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert typed.returncode == 0, typed.stdout[-3000:]
        settings = ["--config", str(ROOT / "pyproject.toml"), "--config", f"src = ['{ROOT}', '{plugins}']"]
        for command in (["check"], ["format", "--check"]):
            linted = subprocess.run(
                [sys.executable, "-m", "ruff", *command, *settings, "my_strat", long_name],
                cwd=plugins, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert linted.returncode == 0, linted.stdout[-3000:] + linted.stderr[-3000:]

    @pytest.mark.parametrize("name", ["My-Strat", "MyStrat", "class", "1st", "sdk", "protocol"])
    def test_bad_name_exits_2(self, tmp_path: Path, name: str) -> None:
        """A name that is not a free lower-case identifier is refused and nothing is written."""
        result = cli("new-plugin", name, "--dir", "plugins", cwd=tmp_path)
        assert result.returncode == 2
        assert f"plugin name {name!r}" in result.stderr
        assert not (tmp_path / "plugins").exists()

    def test_existing_folder_exits_2(self, project: Path) -> None:
        """An existing package is never overwritten."""
        before = (project / "plugins" / "my_strat" / "strategy.py").read_text()
        result = cli("new-plugin", "my_strat", "--dir", "plugins", cwd=project)
        assert result.returncode == 2
        assert "already exists" in result.stderr
        assert (project / "plugins" / "my_strat" / "strategy.py").read_text() == before


class TestCheckPlugin:
    def test_good_plugin_lists_strategy_fields_and_sandbox(self, project: Path) -> None:
        """A package that loads: its strategy, its config fields with defaults and the sandbox layers."""
        result = cli("check-plugin", "plugins/my_strat", cwd=project)
        assert result.returncode == 0, result.stderr
        assert "plugin 'my_strat' registers 1 strategy(ies)" in result.stdout
        assert "my_strat  (my_strat.strategy.MyStrat)" in result.stdout
        assert "quantity: float = 0.01" in result.stdout and "min_move: float = 0.001" in result.stdout
        layers = result.stdout.split("sandbox layers applied: ", 1)[1]
        assert "pdeathsig" in layers and "rlimit_as" in layers

    def test_engine_named_packages_beside_the_plugin_are_not_run(self, project: Path) -> None:
        """check-plugin starts its runner in the plugins folder: packages there named runner, sdk,
        protocol or engine_proto are not what that interpreter imports (they would run unsandboxed)."""
        marker = project / "shadow-ran"
        for package in ("runner", "sdk", "protocol", "engine_proto"):
            shadow = project / "plugins" / package
            shadow.mkdir()
            code = f"from pathlib import Path\nPath({str(marker)!r}).write_text({package!r})\n"
            (shadow / "__init__.py").write_text(code)
            (shadow / "__main__.py").write_text(code)
        result = cli("check-plugin", "plugins/my_strat", cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "plugin 'my_strat' registers 1 strategy(ies)" in result.stdout
        assert not marker.exists(), f"{marker.read_text()} from the plugins folder ran"

    def test_bad_hook_exits_1_naming_hook_and_reason(self, tmp_path: Path) -> None:
        """A hook that returns garbage: exit 1, the hook and what it returned."""
        result = cli("check-plugin", RUNNERS / "bad_hook", cwd=tmp_path)
        assert result.returncode == 1
        assert "plugin 'bad_hook' does not load (hook strategy_engine_strategies)" in result.stdout
        assert "returned 42" in result.stdout

    def test_not_a_folder_exits_2(self, tmp_path: Path) -> None:
        """A path that is not a folder is a usage error."""
        (tmp_path / "file.py").write_text("")
        result = cli("check-plugin", "file.py", cwd=tmp_path)
        assert result.returncode == 2
        assert "is not a folder" in result.stderr


class TestCheckConfig:
    # The Go service's config.example.yaml, byte for byte (tests/compat/README.md says where it is from).
    GO_CONFIG = ROOT / "tests" / "compat" / "go-service-config.yaml"

    def test_go_service_config_says_how_each_key_is_taken(self, tmp_path: Path) -> None:
        """The Go service's file loads (exit 0) and each key is listed as used, mapped (to what) or ignored (why)."""
        config = shutil.copy(self.GO_CONFIG, tmp_path / "config.yaml")
        done = cli("check-config", config, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        keys = done.stdout.split("\n\nwarnings:")[0].splitlines()[2:]  # after the "loads (...)" line
        lines = dict(line.split(None, 1) for line in keys)
        assert lines["server.port"] == "used"
        assert lines["grpc.orderExecutionAddr"] == "mapped -> grpc.orderExecutionAddress"
        assert lines["strategies.enabled"].startswith("mapped -> strategies momentum, market_making, scalping")
        assert lines["logging.maxSize"] == "mapped -> logging.maxBytes = 100 MiB"
        assert lines["engine.reloadInterval"].startswith("ignored: hot reload is event-driven")
        assert lines["logging.file"].startswith("ignored: logging.output is stdout")
        assert "loads (" in done.stdout.splitlines()[0]
        assert "no plugin folder" in done.stdout  # ./plugins next to the copy does not exist: a warning

    def test_bad_file_exits_2_naming_the_key(self, tmp_path: Path) -> None:
        """A key neither service knows: exit 2, the key path and a did-you-mean on stdout."""
        config = tmp_path / "config.yaml"
        config.write_text(self.GO_CONFIG.read_text().replace("maxConcurrent:", "maxConcurent:"))
        done = cli("check-config", config, cwd=tmp_path)
        assert done.returncode == 2
        assert "error: engine.maxConcurent: unknown key; did you mean 'maxConcurrent'?" in done.stdout

    def test_risk_disabled_exits_2(self, tmp_path: Path) -> None:
        """risk.enabled: false is refused with the reason."""
        config = tmp_path / "config.yaml"
        config.write_text(
            self.GO_CONFIG.read_text().replace(
                "  enabled: true\n  maxPositionSize", "  enabled: false\n  maxPositionSize"
            )
        )
        done = cli("check-config", config, cwd=tmp_path)
        assert done.returncode == 2 and "risk.enabled: risk checks cannot be turned off" in done.stdout


def build_sdk_wheel(tmp_path: Path) -> Path:
    """``pip wheel ./sdk`` offline, from a copy so the build leaves nothing in the repository."""
    pytest.importorskip("setuptools", reason="building offline (--no-build-isolation) needs setuptools here")
    source = tmp_path / "sdk"
    shutil.copytree(ROOT / "sdk", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "-w", str(tmp_path / "dist"),
         "--no-deps", "--no-build-isolation", "--no-index", "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("strategy_engine_sdk-*.whl")
    return wheel


def copy_distributions(names: list[str], into: Path) -> None:
    """The installed files of ``names`` and of everything they require, copied into ``into``.

    What an author's venv would get from PyPI (pluggy for the SDK, pytest for the tests), taken
    from this interpreter's own installation so that the test needs no network.
    """
    from importlib.metadata import distribution

    from packaging.requirements import Requirement

    seen: set[str] = set()
    while names:
        dist = distribution(names.pop())
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        for file in dist.files or []:
            if file.parts[0] != ".." and Path(str(dist.locate_file(file))).is_file():
                (into / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(str(dist.locate_file(file)), into / file)
        requirements = [Requirement(text) for text in dist.requires or []]
        names += [r.name for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]


def readme_files(readme: Path, into: Path) -> list[Path]:
    """Each python block of ``readme`` whose first line is ``# path``, written to that path under ``into``."""
    written = []
    for block in re.findall(r"```python\n(.*?)```", readme.read_text(), re.S):
        first, _, _ = block.partition("\n")
        if first.startswith("# ") and first.endswith(".py"):
            path = into / first[2:]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block)
            written.append(path)
    return written


@pytest.fixture(scope="module")
def sdk_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdk wheel, built once for the tests that read or install it."""
    return build_sdk_wheel(tmp_path_factory.mktemp("wheel"))


class TestSdkWheel:
    def test_wheel_holds_only_the_sdk(self, sdk_wheel: Path) -> None:
        """``pip wheel ./sdk`` builds a wheel of the sdk package alone, depending on pluggy only."""
        wheel = sdk_wheel
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        packages = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
        assert packages == {"sdk"}
        assert {"sdk/__init__.py", "sdk/testing.py", "sdk/py.typed"} <= set(names)
        requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
        assert requires == ["Requires-Dist: pluggy>=1.5"]

    def test_wheel_carries_the_readme_and_the_version(self, sdk_wheel: Path) -> None:
        """The wheel's METADATA has sdk/README.md as its markdown long description and sdk.__version__."""
        import sdk

        wheel = sdk_wheel
        assert wheel.name == f"strategy_engine_sdk-{sdk.__version__}-py3-none-any.whl"
        with zipfile.ZipFile(wheel) as archive:
            metadata = archive.read(f"strategy_engine_sdk-{sdk.__version__}.dist-info/METADATA").decode()
        head, _, description = metadata.partition("\n\n")
        assert f"Version: {sdk.__version__}" in head.splitlines()
        assert "Description-Content-Type: text/markdown" in head.splitlines()
        assert description.strip() == (ROOT / "sdk" / "README.md").read_text().strip()

    def test_the_wheel_alone_is_enough_to_write_and_test_a_strategy(self, tmp_path: Path, sdk_wheel: Path) -> None:
        """In a fresh venv holding the wheel (and pluggy, pytest), the README's strategy and its tests pass,
        and so do new-plugin's package's tests, which use fills, order updates and timers from sdk.testing.

        The venv sees neither the repository nor this interpreter's packages: the SDK comes from
        the wheel, pluggy and pytest from copies of their installed files on a .pth path.
        """
        wheel = sdk_wheel
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
        python = venv / "bin" / "python"
        install = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
             str(wheel)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert install.returncode == 0, install.stderr[-3000:]
        (site,) = venv.glob("lib/python3*/site-packages")
        copy_distributions(["pluggy", "pytest"], tmp_path / "deps")
        (site / "deps.pth").write_text(str(tmp_path / "deps") + "\n")
        author = tmp_path / "author"
        written = readme_files(ROOT / "sdk" / "README.md", author)
        assert [p.relative_to(author).as_posix() for p in written] == [
            "crossover/config.py", "crossover/strategy.py", "crossover/__init__.py",
            "crossover/tests/test_crossover.py",
        ]  # fmt: skip
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        probe = "import sdk, importlib.util as u; print(sdk.__file__, [u.find_spec(m) for m in ('host', 'runner')])"
        seen = subprocess.run([str(python), "-c", probe], cwd=author, env=env, capture_output=True, text=True)
        assert seen.stdout.split() == [str(site / "sdk" / "__init__.py"), "[None,", "None]"], seen.stderr
        tests = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "crossover"],
            cwd=author, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
        assert "3 passed" in tests.stdout
        new_plugin("my_strat", author / "plugins")
        scaffolded = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "plugins/my_strat"],
            cwd=author, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert scaffolded.returncode == 0, scaffolded.stdout[-3000:] + scaffolded.stderr[-3000:]
        assert "9 passed" in scaffolded.stdout


class TestAuthorFlow:
    def test_new_plugin_runs_on_replayed_data_from_its_own_config(self, tmp_path: Path) -> None:
        """new-plugin -> config with a relative pluginsDir -> replay: the summary shows its signals."""
        project = tmp_path / "project"
        assert cli("new-plugin", "my_strat", "--dir", "project/plugins", cwd=tmp_path).returncode == 0
        config = write_config(project / "config.yaml", "plugins", MY_STRAT)
        ticks = write_ticks(project / "ticks.jsonl")
        # run from another folder: pluginsDir is relative to the config file's folder, not the cwd
        result = cli("run", "--config", "project/config.yaml", "--replay", "project/ticks.jsonl", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert ticks.exists() and config.exists()
        row = summary_rows(result.stdout)["my_strat"]
        assert (row["state"], row["breaker"]) == ("running", "closed")
        assert int(row["events"].replace(",", "")) >= 300
        assert int(row["signals"].replace(",", "")) > 0

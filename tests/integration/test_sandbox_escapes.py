"""The attacks of the "Sandbox" review, by a hostile plugin in real runners (``tests/runners/hostile``).

Reading the host's secrets, reaching local Unix sockets, starting processes that outlive the
runner: each fails, or the test is skipped with the runner's reason when no layer that would
stop it holds on this machine. Nothing the runner started survives it, whatever held.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from host.session import RunnerSession
from host.supervisor.cgroup import RunnerCgroup
from host.supervisor.process import end_runner
from host.supervisor.sandbox import SandboxLayers
from tests.helpers import RUNNERS, payload, tick_events
from tests.integration.conftest import LiveRunner, RunnerHarness

HOSTILE = RUNNERS / "hostile"
MARK = "se-hostile"


async def _hostile(
    runners: RunnerHarness, params: Mapping[str, Any] | None = None, *, user: tuple[int, int] | None = None
) -> tuple[LiveRunner, RunnerSession, SandboxLayers, dict[str, str]]:
    """A hostile runner past its first tick: the layers it reports and what its attempts got."""
    live = await runners.spawn(HOSTILE, [{"id": "h", "name": "hostile", "params": dict(params or {})}], user=user)
    session = await runners.connect(live)
    layers = SandboxLayers.parse((await session.handshake({}, timeout_s=10)).sandbox)
    result = await session.call(payload(tick_events(1)), 1, deadline_s=10)
    assert not result.outputs[0].errors, result.outputs[0].errors
    return live, session, layers, json.loads(result.outputs[0].signals[0].metadata["outcomes"])


def _require(layers: SandboxLayers, *any_of: str) -> None:
    if not any(layers.holds(name) for name in any_of):
        pytest.skip("; ".join(f"{name}: {layers.skipped.get(name, 'not reported')}" for name in any_of))


def _refused(outcome: str) -> bool:
    return outcome.startswith("PermissionError")


def _status(pid: int) -> str:
    return Path(f"/proc/{pid}/status").read_text()


def survivors(pid: int) -> list[str]:
    """Processes of the runner's session or process group, or marked by the hostile plugin."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        pgrp, session = int(fields[2]), int(fields[3])
        if comm == MARK or pid in (pgrp, session):
            found.append(f"{entry.name} {comm} pgrp={pgrp} sid={session}")
    return found


class TestReads:
    async def test_host_secrets_are_unreadable(self, runners: RunnerHarness, tmp_path: Path) -> None:
        """/etc/shadow, the host's /proc/<pid>/cmdline and environ and the config file all refuse the plugin."""
        config = tmp_path / "config.yaml"
        config.write_text("server:\n  authToken: s3cret\nredis:\n  password: hunter2\n")
        _, _, layers, outcomes = await _hostile(runners, {"paths": str(config)})
        _require(layers, "landlock_read", "runner_user")
        host = os.getpid()
        for path in ("/etc/shadow", f"/proc/{host}/cmdline", f"/proc/{host}/environ", str(config)):
            assert _refused(outcomes[f"read {path}"]), (path, outcomes[f"read {path}"])
        assert not any("s3cret" in outcome or "hunter2" in outcome for outcome in outcomes.values())

    async def test_plugin_folder_and_own_proc_stay_readable(self, runners: RunnerHarness) -> None:
        """What the runner needs stays readable: its plugin's files, its own /proc/self, /dev/urandom."""
        paths = [str(HOSTILE / "__init__.py"), "/proc/self/status", "/dev/urandom"]
        _, _, layers, outcomes = await _hostile(runners, {"paths": ",".join(paths)})
        _require(layers, "landlock_read")
        assert all(outcomes[f"read {path}"].startswith("ok") for path in paths), outcomes


class TestSockets:
    @pytest.fixture
    def unix_listener(self, tmp_path: Path) -> Iterator[socket.socket]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(tmp_path / "service.sock"))
            server.listen(8)
            server.setblocking(False)
            yield server

    async def test_unix_sockets_are_refused(self, runners: RunnerHarness, unix_listener: socket.socket) -> None:
        """Connecting to the runner's own link socket or any other Unix socket, or making a pair, is EPERM."""
        path = unix_listener.getsockname()
        _, _, layers, outcomes = await _hostile(runners, {"sockets": path})
        _require(layers, "no_new_sockets")
        link = str(runners.link.socket_path)
        for attempt in (f"connect {link}", f"connect {path}", "socketpair"):
            assert outcomes[attempt].startswith("PermissionError: [Errno 1]"), (attempt, outcomes[attempt])
        with pytest.raises(BlockingIOError):
            unix_listener.accept()

    async def test_sealed_runner_serves_a_whole_run(self, runners: RunnerHarness) -> None:
        """Under no_new_sockets the link carries Hello, batches, heartbeats and a clean Stop."""
        live, session = await runners.ready("scripted")
        for start in range(1, 41):
            await session.heartbeat(start)
            result = await session.call(payload(tick_events(1, start=start)), 1, deadline_s=5)
            assert len(result.outputs[0].signals) == 1
            await asyncio.sleep(0.02)
        assert session.stats.heartbeats > 0
        stopped = await session.stop("test", timeout_s=5)
        assert not stopped.errors
        assert await live.process.wait(5) == 0


class TestProcesses:
    async def test_new_processes_are_refused_and_threads_run(self, runners: RunnerHarness) -> None:
        """fork, setsid + double fork and subprocess fail with EPERM; a thread still starts."""
        _, _, layers, outcomes = await _hostile(runners)
        _require(layers, "no_processes")
        attempts = [*(f"fork {i}" for i in range(5)), "setsid double fork", "subprocess"]
        assert all(outcomes[a].startswith("PermissionError: [Errno 1]") for a in attempts), outcomes
        assert outcomes["thread"] == "ok: thread ran: True"

    async def test_nothing_survives_the_runner(self, runners: RunnerHarness) -> None:
        """After the runner ends, no process of its session, its group or the plugin's is left."""
        live, session, _, _ = await _hostile(runners, {"forks": 20})
        await end_runner(live.process, session, grace_s=2.0)
        assert survivors(live.process.pid) == []

    async def test_cgroup_kills_what_is_left_in_it(self, runners: RunnerHarness) -> None:
        """A process in the runner's cgroup (put there from outside) dies with the runner; the cgroup goes."""
        live, session, layers, _ = await _hostile(runners)
        _require(layers, "cgroup")
        cgroup = live.process.cgroup
        assert cgroup is not None and live.process.pid in cgroup.members()
        sleeper = await asyncio.create_subprocess_exec("sleep", "600", start_new_session=True)
        try:
            cgroup.add(sleeper.pid)
            await end_runner(live.process, session, grace_s=2.0)
            assert await asyncio.wait_for(sleeper.wait(), 5) == -9
        finally:
            if sleeper.returncode is None:
                sleeper.kill()
                await sleeper.wait()
        assert not cgroup.path.exists()

    async def test_new_host_removes_the_cgroups_of_a_host_that_is_gone(self, runners: RunnerHarness) -> None:
        """A host that crashed left its folder (and a process in it): the next spawn kills and removes both."""
        gone = await asyncio.create_subprocess_exec("true")
        await gone.wait()
        live, _, layers, _ = await _hostile(runners)
        _require(layers, "cgroup")
        assert live.process.cgroup is not None
        stale = live.process.cgroup.path.parent.parent / f"strategy-engine-{gone.pid}"
        (stale / "r1").mkdir(parents=True)
        sleeper = await asyncio.create_subprocess_exec("sleep", "600", start_new_session=True)
        try:
            RunnerCgroup(stale / "r1").add(sleeper.pid)
            await runners.spawn(HOSTILE, [{"id": "h2", "name": "hostile"}])
            assert await asyncio.wait_for(sleeper.wait(), 5) == -9
        finally:
            if sleeper.returncode is None:
                sleeper.kill()
                await sleeper.wait()
        assert not stale.exists()


class TestRunnerUser:
    async def test_runner_runs_as_the_configured_user(self, runners: RunnerHarness) -> None:
        """A root host's runner switches to the configured uid/gid before its plugin loads."""
        if os.geteuid() != 0:
            pytest.skip("the host is not root: runners keep its uid")
        live, _, layers, outcomes = await _hostile(runners, user=(65534, 65534))
        _require(layers, "runner_user")
        assert "Uid:\t65534\t65534\t65534\t65534" in _status(live.process.pid)
        assert _refused(outcomes["read /etc/shadow"])


class TestShadowedEnginePackages:
    """A plugins folder is where a runner starts (its working directory): a package there named like
    one of the engine's (``runner``, ``sdk``, ``protocol``, ``engine_proto``) must not be what the
    runner's interpreter imports. If it were, ``python -m runner`` would run the plugin author's
    ``runner/__main__.py`` before any sandbox layer is applied."""

    @pytest.mark.parametrize("package", ["runner", "sdk", "protocol", "engine_proto"])
    async def test_a_package_named_like_the_engines_is_not_imported_before_the_sandbox(
        self, runners: RunnerHarness, tmp_path: Path, package: str
    ) -> None:
        plugins = tmp_path / "plugins"
        shadow = plugins / package
        shadow.mkdir(parents=True)
        marker = tmp_path / "shadow-ran"
        code = f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran unsandboxed')\n"
        (shadow / "__init__.py").write_text(code)
        (shadow / "__main__.py").write_text(code)
        plugin = plugins / "scripted"
        plugin.mkdir()
        for source in (RUNNERS / "scripted").iterdir():
            if source.is_file():
                (plugin / source.name).write_bytes(source.read_bytes())
        live = await runners.spawn(plugin)
        session = await runners.connect(live)
        await session.handshake({}, timeout_s=10)
        result = await session.call(payload(tick_events(1)), 1, deadline_s=10)
        assert not result.outputs[0].errors, result.outputs[0].errors
        assert not marker.exists(), f"the plugins folder's {package!r} ran in the runner's interpreter"

"""The runner sandbox against real runners: each layer holds, or the runner says why it did not.

Kernel-dependent layers (namespaces, Landlock, seccomp) are asserted through what the runner
reports: a test of a layer's effect is skipped, with the runner's reason, when no layer that
would produce it holds on this machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from host.session import RunnerLost, RunnerSession
from host.supervisor.process import RunnerLimits, runner_environment
from host.supervisor.sandbox import SandboxLayers
from runner.sandbox import LAYERS, SandboxReport
from tests.helpers import ROOT, RUNNERS, payload, tick_events
from tests.integration.conftest import LiveRunner, RunnerHarness

_ALWAYS = ("pdeathsig", "rlimit_core", "rlimit_as", "rlimit_nofile", "rlimit_fsize", "no_new_privs")


async def _start(
    runners: RunnerHarness, params: Mapping[str, Any] | None = None, *, limits: RunnerLimits | None = None,
    strategies: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[LiveRunner, RunnerSession, SandboxLayers]:  # fmt: skip
    """A runner past its handshake, and the layers its Hello reports."""
    live = await runners.spawn(
        "scripted", strategies or [{"id": "s1", "name": "scripted", "params": dict(params or {})}], limits=limits
    )
    session = await runners.connect(live)
    hello = await session.handshake({}, timeout_s=10)
    return live, session, SandboxLayers.parse(hello.sandbox)


async def _report(runners: RunnerHarness, limits: RunnerLimits | None = None) -> dict[str, str]:
    """The ``report`` probe of a fresh runner: what it saw of itself when its strategy started."""
    _, session, _ = await _start(runners, {"mode": "report"}, limits=limits)
    result = await session.call(payload(tick_events(1)), 1, deadline_s=5)
    return dict(result.outputs[0].signals[0].metadata)


def _require(layers: SandboxLayers, *any_of: str) -> None:
    if not any(layers.holds(name) for name in any_of):
        pytest.skip("; ".join(f"{name}: {layers.skipped.get(name, 'not reported')}" for name in any_of))


def _limits(text: str) -> dict[str, tuple[str, str]]:
    """/proc/self/limits as {"Max open files": (soft, hard)}."""
    rows = {}
    for line in text.splitlines()[1:]:
        name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        rows[name] = (soft, hard)
    return rows


class TestSandboxLayers:
    def test_report_round_trips_through_hello(self) -> None:
        """What a runner puts in Hello.sandbox parses back into the same applied and skipped layers."""
        report = SandboxReport(applied=["pdeathsig", "no_network"], skipped={"landlock": "kernel has no Landlock"})
        layers = SandboxLayers.parse(report.wire())
        assert layers.applied == ("pdeathsig", "no_network")
        assert layers.to_status() == {
            "applied": ["pdeathsig", "no_network"], "skipped": {"landlock": "kernel has no Landlock"},
        }  # fmt: skip

    async def test_hello_accounts_for_every_layer(self, runners: RunnerHarness) -> None:
        """Every layer is in Hello either as applied or as skipped with a reason; the portable ones hold."""
        _, _, layers = await _start(runners)
        assert sorted([*layers.applied, *layers.skipped]) == sorted(LAYERS)
        assert all(layers.skipped.values())
        assert set(_ALWAYS) <= set(layers.applied)

    async def test_limit_configured_as_zero_is_skipped_not_applied(self, runners: RunnerHarness) -> None:
        """A limit of 0 means "leave as is": reported as skipped, "not configured"."""
        _, _, layers = await _start(runners, limits=RunnerLimits(cpu_seconds=0, file_size_mb=0))
        assert layers.skipped["rlimit_cpu"] == layers.skipped["rlimit_fsize"] == "not configured"
        assert not layers.holds("rlimit_cpu") and not layers.holds("rlimit_fsize")


class TestLimits:
    async def test_limits_are_in_place_when_strategy_code_runs(self, runners: RunnerHarness) -> None:
        """Address space, CPU, open files and file size are the configured ones; core dumps are off."""
        limits = RunnerLimits(memory_mb=1024, cpu_seconds=60, open_files=128, file_size_mb=8)
        rows = _limits((await _report(runners, limits))["limits"])
        assert rows["Max address space"] == (str(1024 * 2**20),) * 2
        assert rows["Max cpu time"] == ("60", "61")
        assert rows["Max open files"][0] == "128"
        assert rows["Max file size"] == (str(8 * 2**20),) * 2
        assert rows["Max core file size"] == ("0", "0")

    async def test_eating_memory_is_a_strategy_error_and_the_runner_goes_on(self, runners: RunnerHarness) -> None:
        """Under the address-space limit, allocation fails with MemoryError in the strategy, not in the runner."""
        live, session, _ = await _start(
            runners,
            strategies=[
                {"id": "hog", "name": "scripted", "params": {"mode": "eat_memory"}},
                {"id": "ok", "name": "scripted"},
            ],
            limits=RunnerLimits(memory_mb=512),
        )
        result = await session.call(payload(tick_events(1)), 1, deadline_s=20)
        by_id = {output.strategy: output for output in result.outputs}
        (error,) = by_id["hog"].errors
        assert "MemoryError" in error.text
        assert len(by_id["ok"].signals) == 1
        again = await session.call(payload(tick_events(1, start=2)), 1, deadline_s=20)
        assert len({o.strategy: o for o in again.outputs}["ok"].signals) == 1
        assert live.process.returncode is None

    async def test_spinning_past_the_cpu_limit_kills_only_the_runner(self, runners: RunnerHarness) -> None:
        """A strategy that spins is killed by SIGXCPU at its CPU limit; the host sees RunnerLost and goes on."""
        live, session, _ = await _start(runners, {"mode": "busy"}, limits=RunnerLimits(cpu_seconds=2))
        with pytest.raises(RunnerLost):
            await session.call(payload(tick_events(1)), 1, deadline_s=30)
        assert await live.process.wait(5) == -signal.SIGXCPU
        _, other, _ = await _start(runners)
        assert len((await other.call(payload(tick_events(1)), 1, deadline_s=5)).outputs[0].signals) == 1


class TestInheritance:
    async def test_runner_environment_has_no_host_secret(
        self, runners: RunnerHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A secret in the host's environment is not in the runner's: it gets only the scrubbed set."""
        monkeypatch.setenv("SE_TEST_BROKER_SECRET", "hunter2")
        environ = json.loads((await _report(runners))["environ"])
        assert "SE_TEST_BROKER_SECRET" not in environ
        assert set(environ) <= set(runner_environment())

    async def test_host_descriptors_are_not_inherited(self, runners: RunnerHarness) -> None:
        """An inheritable descriptor of the host is closed in the runner; fds 0-2 are there, the rest are its own."""
        read_end, write_end = os.pipe()
        os.set_inheritable(read_end, True)
        os.set_inheritable(write_end, True)
        try:
            host_pipe = os.readlink(f"/proc/self/fd/{read_end}")
            fds = json.loads((await _report(runners))["fds"])
        finally:
            os.close(read_end)
            os.close(write_end)
        assert host_pipe not in fds.values()
        assert {"0", "1", "2"} <= set(fds)
        others = [target for fd, target in fds.items() if int(fd) > 2]
        # the runner's own: gRPC's socket, epoll and eventfds, asyncio's self-pipe socketpair.
        assert all(target.startswith(("socket:", "anon_inode:")) for target in others), others

    async def test_strategy_runs_without_capabilities_or_privilege_gain(self, runners: RunnerHarness) -> None:
        """At strategy start: no effective or bounding capabilities, no_new_privs set, seccomp filtering."""
        status = json.loads((await _report(runners))["status"])
        assert status["NoNewPrivs"] == "1"
        assert int(status["CapEff"], 16) == 0
        _, _, layers = await _start(runners)
        if layers.holds("no_caps"):
            assert int(status["CapBnd"], 16) == 0
        if layers.holds("no_network"):
            assert status["Seccomp"] == "2"


class TestNoNetwork:
    @pytest.fixture
    def listener(self) -> Iterator[socket.socket]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.bind(("127.0.0.1", 0))
            server.listen(8)
            server.setblocking(False)
            yield server

    async def test_loopback_connection_never_arrives(self, runners: RunnerHarness, listener: socket.socket) -> None:
        """Connecting to a loopback listener is an error for the strategy; nothing arrives; the runner serves on."""
        port = listener.getsockname()[1]
        live, session, layers = await _start(
            runners,
            strategies=[
                {"id": "escape", "name": "scripted", "params": {"mode": "connect_tcp", "port": port}},
                {"id": "ok", "name": "scripted"},
            ],
        )
        _require(layers, "no_network", "net_namespace", "landlock_net")
        for start in (1, 2):
            result = await session.call(payload(tick_events(1, start=start)), 1, deadline_s=10)
            by_id = {output.strategy: output for output in result.outputs}
            (error,) = by_id["escape"].errors
            assert error.kind == "exception" and "Error" in error.text
            assert len(by_id["ok"].signals) == 1
        with pytest.raises(BlockingIOError):
            listener.accept()
        assert live.process.returncode is None

    async def test_seccomp_refuses_ip_sockets_with_eacces(
        self, runners: RunnerHarness, listener: socket.socket
    ) -> None:
        """With the seccomp layers, socket(AF_INET) itself fails: EPERM once sealed (EACCES from no_network alone)."""
        port = listener.getsockname()[1]
        _, session, layers = await _start(runners, {"mode": "connect_tcp", "port": port})
        _require(layers, "no_network")
        result = await session.call(payload(tick_events(1)), 1, deadline_s=10)
        code = 1 if layers.holds("no_new_sockets") else 13
        assert f"PermissionError: [Errno {code}]" in result.outputs[0].errors[0].text


class TestLandlock:
    async def test_writes_outside_dev_null_are_refused(self, runners: RunnerHarness, tmp_path: Path) -> None:
        """A strategy cannot create a file, even in a directory its uid owns."""
        target = tmp_path / "escaped.txt"
        _, session, layers = await _start(runners, {"mode": "write_file", "path": str(target)})
        _require(layers, "landlock")
        result = await session.call(payload(tick_events(1)), 1, deadline_s=5)
        assert "PermissionError" in result.outputs[0].errors[0].text
        assert not target.exists()

    async def test_runner_cannot_signal_its_host(self, runners: RunnerHarness) -> None:
        """kill(host, 0) is refused: a runner of the host's uid cannot signal it (nor, so, kill it)."""
        _, session, layers = await _start(runners, {"mode": "kill_parent:0"})
        _require(layers, "landlock_scope")
        result = await session.call(payload(tick_events(1)), 1, deadline_s=5)
        assert "PermissionError: [Errno 1]" in result.outputs[0].errors[0].text


_HOST_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from pathlib import Path
    from host.link import LinkServer
    from host.session import RunnerSession
    from host.supervisor.process import RunnerLaunch, end_runner, spawn_runner
    from host.supervisor.sandbox import make_host_undumpable
    from tests.helpers import payload, tick_events

    async def main(plugin, secret_name, undumpable):
        held = make_host_undumpable() if undumpable else False
        link = LinkServer()
        await link.start()
        inbox = asyncio.Queue()
        params = {"mode": "read_secrets", "host_pid": os.getpid(), "secret_name": secret_name}
        launch = RunnerLaunch("probe", Path(plugin), [{"id": "s1", "name": "scripted", "params": params}])
        process, registration = await spawn_runner(launch, link, inbox)
        session = RunnerSession("probe", inbox, await asyncio.wait_for(registration.connected, 10))
        hello = await session.handshake({}, 10)
        result = await session.call(payload(tick_events(1)), 1, 10)
        found = json.loads(result.outputs[0].signals[0].metadata["found"])
        await end_runner(process, session, 2.0)
        await link.stop()
        print(json.dumps({"undumpable": held, "found": found, "sandbox": list(hello.sandbox)}), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == "1"))
    """
)

_WAITING_HOST = textwrap.dedent(
    """
    import sys
    from host.supervisor.sandbox import make_host_undumpable
    print("UNDUMPABLE", make_host_undumpable(), flush=True)
    sys.stdin.readline()
    """
)

_CAPLESS_READER = textwrap.dedent(
    """
    import sys
    from runner.sandbox import _drop_caps
    _drop_caps()
    try:
        open(sys.argv[1], "rb").read()
        print("readable")
    except OSError as err:
        print(type(err).__name__)
    """
)


class TestUndumpableHost:
    @pytest.mark.parametrize("undumpable", [True, False], ids=["undumpable", "dumpable"])
    def test_runner_cannot_read_host_environ(self, undumpable: bool) -> None:
        """An undumpable host (which still spawns runners fine) keeps its environ from them.

        Runs in a child host process so that pytest itself stays dumpable. A dumpable host is
        readable by its runners only when no Landlock domain separates them (and, as root, only
        when the runner kept its capabilities).
        """
        secret = "SE_TEST_HOST_SECRET"
        child = subprocess.run(
            [sys.executable, "-c", _HOST_SCRIPT, str(RUNNERS / "scripted"), secret, "1" if undumpable else "0"],
            cwd=ROOT, env={**os.environ, secret: "hunter2"}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert child.returncode == 0, child.stderr[-2000:]
        outcome = json.loads(child.stdout.strip().splitlines()[-1])
        layers = SandboxLayers.parse(outcome["sandbox"])
        assert outcome["undumpable"] is undumpable
        assert outcome["found"]["environ"] is False
        # Landlock's ptrace rule stops a runner at its domain's edge, unless it kept CAP_SYS_PTRACE.
        capless = os.geteuid() != 0 or layers.holds("no_caps") or layers.holds("user_namespace")
        if undumpable or (layers.holds("landlock") and capless):
            assert outcome["found"] == {"environ": False, "proc_error": "PermissionError"}
        else:
            assert outcome["found"]["proc"] is True

    def test_only_capabilities_reach_an_undumpable_host(self) -> None:
        """Undumpable shuts out processes of the host's uid; CAP_SYS_PTRACE (root's) still gets in.

        This is why a runner gives up its capabilities (``user_namespace``, ``no_caps``).
        """
        secret = "SE_TEST_HOST_SECRET"
        host = subprocess.Popen(
            [sys.executable, "-c", _WAITING_HOST], cwd=ROOT, env={**os.environ, secret: "hunter2"},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert host.stdout is not None
            line = ""
            while not line.startswith("UNDUMPABLE"):
                line = host.stdout.readline()
                assert line, "the host script ended before it said whether it is undumpable"
            assert line.split() == ["UNDUMPABLE", "True"]
            environ = f"/proc/{host.pid}/environ"
            capless = subprocess.run(
                [sys.executable, "-c", _CAPLESS_READER, environ], cwd=ROOT, capture_output=True, text=True, timeout=30
            )
            assert capless.stdout.strip() == "PermissionError", capless.stderr
            if os.geteuid() == 0:
                assert secret.encode() in Path(environ).read_bytes()
            else:
                with pytest.raises(PermissionError):
                    Path(environ).read_bytes()
        finally:
            host.kill()
            host.wait(5)

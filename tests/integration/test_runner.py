"""The runner process against a real RunnerLink server: load, handshake, batches, failures, exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine_proto import strategy_pb2 as pb
from host.link import LinkServer, Received
from host.session import BootFailed, DeadlineMissed, RunnerLost
from host.supervisor.process import Rung, end_runner
from protocol import ExitCode
from tests.helpers import ROOT, RUNNERS, payload, pid_alive, tick_events, wait_until
from tests.integration.conftest import LiveRunner, RunnerHarness


@pytest.fixture(params=["socket", "grpc"])
def data_lane(request: pytest.FixtureRequest) -> str:
    """Every runner test on both paths for batches: the data lane and the gRPC stream."""
    return str(request.param)


def _signals(result: pb.BatchResult) -> list[pb.Signal]:
    return [signal for output in result.outputs for signal in output.signals]


async def _ended_as_the_supervisor_ends_it(live: LiveRunner) -> int | None:
    """End a runner that reported a BootFailure the way the supervisor does (``StrategyRunners.load``:
    SIGTERM at once, no Stop, as it will never serve) and return its exit code: its boot error's code,
    as when it leaves by itself (which it does only after waiting, bounded, for the host to close the
    stream: ``test_unknown_strategy_name_is_a_config_error`` covers that path)."""
    assert await end_runner(live.process, None, grace_s=10.0) is Rung.SIGTERM
    return live.process.returncode


class TestLoading:
    async def test_good_plugin_reports_its_strategies(self, runners: RunnerHarness) -> None:
        """Hello names every strategy instance the runner built, with its plugin and symbols."""
        live = await runners.spawn(
            "scripted",
            [
                {"id": "a", "name": "scripted", "params": {"symbols": ["BTCUSDT"]}},
                {"id": "b", "name": "scripted", "params": {}},
            ],
        )
        session = await runners.connect(live)
        hello = await session.handshake({}, timeout_s=10)
        assert [(s.id, s.name, s.plugin, list(s.symbols)) for s in hello.strategies] == [
            ("a", "scripted", "scripted", ["BTCUSDT"]),
            ("b", "scripted", "scripted", []),
        ]
        assert hello.pid == live.process.pid
        assert "pdeathsig" in hello.sandbox
        assert os.sched_getscheduler(live.process.pid) == os.SCHED_BATCH  # runner/__main__.py _yield_to_host

    @pytest.mark.parametrize(
        ("plugin", "name", "hook", "reason"),
        [
            ("broken_import", "scripted", "import", "ModuleNotFoundError: No module named 'no_such_module_anywhere'"),
            ("bad_hook", "scripted", "strategy_engine_strategies", "returned 42, expected a list of Strategy"),
            ("no_hook", "scripted", "strategy_engine_strategies", "implements no strategy_engine_strategies hook"),
            ("bad_config_class", "odd", "strategy_engine_strategies", "Odd.Config must derive from StrategyConfig"),
        ],
    )
    async def test_plugin_that_fails_to_load_says_why_and_exits_65(
        self, runners: RunnerHarness, plugin: str, name: str, hook: str, reason: str
    ) -> None:
        """A load failure reaches the host as BootFailure(plugin, hook, reason), then exit PLUGIN_LOAD_ERROR."""
        live = await runners.spawn(plugin, [{"id": "s1", "name": name, "params": {}}])
        session = await runners.connect(live)
        with pytest.raises(BootFailed) as failed:
            await session.handshake({}, timeout_s=10)
        failure = failed.value.failure
        assert (failure.kind, failure.plugin, failure.hook) == (pb.PLUGIN_LOAD, plugin, hook)
        assert reason in failure.reason
        assert await _ended_as_the_supervisor_ends_it(live) == ExitCode.PLUGIN_LOAD_ERROR

    @pytest.mark.parametrize(
        ("params", "reason"),
        [
            ({"evry": 2}, "strategies.s1.evry: unknown key"),
            ({"every": "two"}, "strategies.s1.every: expected an integer, got str 'two'"),
            ({"symbols": "BTCUSDT"}, "strategies.s1.symbols: expected a list"),
        ],
    )
    async def test_bad_config_names_the_key_and_exits_66(
        self, runners: RunnerHarness, params: dict[str, object], reason: str
    ) -> None:
        """A rejected strategy config reaches the host with the key path, then exit CONFIG_ERROR."""
        live = await runners.spawn("scripted", [{"id": "s1", "name": "scripted", "params": params}])
        session = await runners.connect(live)
        with pytest.raises(BootFailed) as failed:
            await session.handshake({}, timeout_s=10)
        assert failed.value.failure.kind == pb.CONFIG
        assert reason in failed.value.failure.reason
        assert await _ended_as_the_supervisor_ends_it(live) == ExitCode.CONFIG_ERROR

    async def test_unknown_strategy_name_is_a_config_error(self, runners: RunnerHarness) -> None:
        """Asking a plugin for a strategy it does not register names what it has. Left alone (the host
        neither closes the stream nor signals it), the runner still leaves, with its code: it
        half-closes after its BootFailure, so the host's end of the call ends at once (it waited 2 s
        for that half-close before) and the runner's wait for it is short."""
        live = await runners.spawn("scripted", [{"id": "s1", "name": "nope", "params": {}}])
        session = await runners.connect(live)
        with pytest.raises(BootFailed, match="has no strategy 'nope' \\(it has: scripted\\)"):
            await session.handshake({}, timeout_s=10)
        failed = time.monotonic()
        assert await live.process.wait(5) == ExitCode.CONFIG_ERROR
        assert time.monotonic() - failed < 1.5  # the 2 s waits are not both waited out


class TestBatches:
    async def test_batch_round_trip_over_the_unix_socket(self, runners: RunnerHarness) -> None:
        """A batch of 256 ticks comes back as one result with the same seq, every event counted."""
        _, session = await runners.ready(params={"every": 2})
        result = await session.call(payload(tick_events(256)), 256, deadline_s=5)
        assert result.seq == session.seq == 1
        (output,) = result.outputs
        assert (output.strategy, output.events, len(output.signals)) == ("s1", 256, 128)
        assert output.signals[0].side == pb.BUY and output.signals[0].metadata["seen"] == "2"
        assert output.compute_ns > 0

    async def test_market_data_is_filtered_by_symbols(self, runners: RunnerHarness) -> None:
        """Ticks for a symbol outside the strategy's config never reach it."""
        _, session = await runners.ready(params={"symbols": ["ETHUSDT"]})
        result = await session.call(payload(tick_events(3, "BTCUSDT") + tick_events(2, "ETHUSDT")), 5, 5)
        assert result.outputs[0].events == 2

    async def test_strategy_that_raises_gets_the_error_and_the_runner_goes_on(self, runners: RunnerHarness) -> None:
        """raise_once: the first event reports the exception with traceback; the next event is served."""
        live, session = await runners.ready(params={"mode": "raise_once"})
        first = await session.call(payload(tick_events(1)), 1, 5)
        (error,) = first.outputs[0].errors
        assert (error.kind, error.strategy, error.handler, error.seq) == ("exception", "s1", "on_tick", 1)
        assert "RuntimeError: scripted failure, once" in error.text
        assert "Traceback" in error.traceback
        second = await session.call(payload(tick_events(1, start=2)), 1, 5)
        assert not second.outputs[0].errors and len(second.outputs[0].signals) == 1
        assert live.process.returncode is None

    async def test_errors_are_per_strategy(self, runners: RunnerHarness) -> None:
        """In a runner with two strategies, one raising on every event does not stop the other's signals."""
        live = await runners.spawn(
            "scripted",
            [{"id": "bad", "name": "scripted", "params": {"mode": "raise"}}, {"id": "good", "name": "scripted"}],
        )
        session = await runners.connect(live)
        await session.handshake({}, 10)
        result = await session.call(payload(tick_events(4)), 4, 5)
        by_id = {o.strategy: o for o in result.outputs}
        assert len(by_id["bad"].errors) == 4 and not by_id["bad"].signals
        assert len(by_id["good"].signals) == 4 and not by_id["good"].errors

    async def test_targeted_event_reaches_only_its_strategy(self, runners: RunnerHarness) -> None:
        """An event with a target is delivered to that strategy id only."""
        live = await runners.spawn("scripted", [{"id": "a", "name": "scripted"}, {"id": "b", "name": "scripted"}])
        session = await runners.connect(live)
        await session.handshake({}, 10)
        result = await session.call(payload(tick_events(2), target="b"), 2, 5)
        assert {o.strategy: o.events for o in result.outputs} == {"a": 0, "b": 2}

    async def test_late_reply_is_dropped_not_matched(self, runners: RunnerHarness) -> None:
        """A reply that misses its deadline arrives later and is dropped; the next call gets its own seq."""
        _, session = await runners.ready(params={"mode": "slow:300"})
        with pytest.raises(DeadlineMissed):
            await session.call(payload(tick_events(1)), 1, deadline_s=0.05)
        result = await session.call(payload(tick_events(1, start=2)), 1, deadline_s=5)
        assert result.seq == 2
        assert session.stats.late_replies == 1

    async def test_snapshot_and_restore_carry_state(self, runners: RunnerHarness) -> None:
        """on_save of one runner, passed as restore to the next, arrives in on_load."""
        _, first = await runners.ready()
        await first.call(payload(tick_events(5)), 5, 5)
        snapshot = await first.snapshot(5)
        assert json.loads(snapshot.states["s1"]) == {"seen": 5}
        _, second = await runners.ready(restore=dict(snapshot.states))
        result = await second.call(payload(tick_events(1, start=6)), 1, 5)
        assert result.outputs[0].signals[0].metadata["seen"] == "6"


class TestEnding:
    async def test_stop_request_ends_it_cleanly(self, runners: RunnerHarness) -> None:
        """The ladder's first rung suffices for a healthy runner: it exits 0."""
        live, session = await runners.ready()
        assert await end_runner(live.process, session, grace_s=4) is Rung.STOP
        assert live.process.returncode == ExitCode.OK

    async def test_sigterm_ends_it_cleanly(self, runners: RunnerHarness) -> None:
        """SIGTERM runs on_stop (reported as Stopped) and exits 0."""
        live, _session = await runners.ready()
        live.process.signal_group(signal.SIGTERM)
        assert await live.process.wait(5) == ExitCode.OK
        kinds: list[str | None] = []

        def drained() -> bool:
            while not live.inbox.empty():
                item = live.inbox.get_nowait()
                kinds.append(item.message.WhichOneof("kind") if isinstance(item, Received) else type(item).__name__)
            return "StreamClosed" in kinds

        await wait_until(drained)
        assert "stopped" in kinds

    async def test_ignored_sigterm_reaches_sigkill(self, runners: RunnerHarness) -> None:
        """A runner hung in a handler with SIGTERM ignored is killed on the last rung."""
        live, session = await runners.ready(params={"mode": "ignore_sigterm"})
        with pytest.raises(DeadlineMissed):
            await session.call(payload(tick_events(1)), 1, deadline_s=0.2)
        # A short grace: neither Stop nor SIGTERM can end it, whatever the grace.
        assert await end_runner(live.process, session, grace_s=0.4) is Rung.SIGKILL
        assert live.process.returncode == -signal.SIGKILL

    async def test_host_closing_the_stream_ends_it(self, runners: RunnerHarness) -> None:
        """EOF on the stream means the host is gone: exit HOST_GONE, promptly."""
        live, session = await runners.ready()
        session.connection.close()
        assert await live.process.wait(5) == ExitCode.HOST_GONE

    async def test_process_exit_reaches_the_session_as_runner_lost(self, runners: RunnerHarness) -> None:
        """os._exit in a handler: the awaiting call raises RunnerLost, not a timeout."""
        live, session = await runners.ready(params={"mode": "exit:3"})
        with pytest.raises(RunnerLost):
            await session.call(payload(tick_events(1)), 1, deadline_s=5)
        assert await live.process.wait(5) == 3

    async def test_unknown_token_is_refused(self, link: LinkServer, tmp_path: Path) -> None:
        """A process presenting a token the host never issued is refused and exits HANDSHAKE_ERROR."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runner", "--socket", str(link.socket_path), "--plugin", str(RUNNERS / "scripted"),
            "--strategies", '[{"id": "s1", "name": "scripted"}]',
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            cwd=ROOT,
        )  # fmt: skip
        await proc.communicate(b"forged-token\n")
        assert proc.returncode == ExitCode.HANDSHAKE_ERROR
        assert link.rejected == 1


_HOST_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from host.link import LinkServer, Received
    from host.session import RunnerSession
    from host.supervisor.process import RunnerLaunch, spawn_runner

    async def main():
        link = LinkServer()
        await link.start()
        inbox = asyncio.Queue()
        launch = RunnerLaunch("orphan", Path(sys.argv[1]), [{"id": "s1", "name": "scripted"}])
        process, registration = await spawn_runner(launch, link, inbox)
        session = RunnerSession("orphan", inbox, await registration.connected)
        await session.handshake({}, 10)
        print("RUNNER_PID", process.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


class TestParentDeath:
    def test_runner_exits_when_its_host_is_killed(self, tmp_path: Path) -> None:
        """SIGKILL of the host process takes its runner with it (no orphans)."""
        host = subprocess.Popen(
            [sys.executable, "-c", _HOST_SCRIPT, str(RUNNERS / "scripted")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert host.stdout is not None
            line = ""
            while not line.startswith("RUNNER_PID"):
                line = host.stdout.readline()
                assert line, "the host script ended before it printed the runner's pid"
            runner_pid = int(line.split()[1])
            assert pid_alive(runner_pid)
            host.kill()
            host.wait(5)
            asyncio.run(wait_until(lambda: not pid_alive(runner_pid), timeout=5))
        finally:
            host.kill()
            host.wait(5)

    async def test_runner_started_after_host_died_exits_at_once(self, link: LinkServer) -> None:
        """A runner whose --host-pid is not its parent gives up before loading anything."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runner", "--socket", str(link.socket_path), "--plugin", str(RUNNERS / "scripted"),
            "--strategies", '[{"id": "s1", "name": "scripted"}]', "--host-pid", str(os.getpid() + 999_999),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            cwd=ROOT,
        )  # fmt: skip
        await proc.communicate(b"token\n")
        assert proc.returncode == ExitCode.HOST_GONE

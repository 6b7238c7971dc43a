"""The runners of one strategy: each brought up to its Hello, each ended through the stop ladder.

Model. ``StrategyRunners.load`` spawns a runner process for a definition (numbered per strategy,
``<id>#<n>``), waits, bounded by the handshake timeout, for it to connect to the RunnerLink and
say Hello, and returns a ``Runner``: its code is loaded but it has not been started, so it gets no
traffic yet. A runner that fails on the way is ended here, so a failed load leaves no process and
no link registration behind. From then on whoever holds the ``Runner`` must ``end`` it: the
strategy's loop for the one serving, the hot swap for a replacement it has not switched to.

``end`` is the one way a runner goes: the stop ladder (``end_runner``), with the full grace for an
orderly stop and a short one for a runner already failing, then the rung and the runner's late
replies added to the strategy's stats and metrics. ``boot_failure`` says what a runner that
failed to come up costs its strategy: a boot error (its code cannot load, or no process at all)
is not worth a restart, a missing Ready is a timeout, anything else a crash.

State across host restarts: with a ``StateStore``, the strategy's first runner is started with
what the last host saved (``stored_state``), and when the host closes the serving runner's
snapshot is saved (``save_state``, bounded and best effort) before it is ended.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import structlog

from engine_proto import strategy_pb2 as pb
from host.clock import Clock, SystemClock
from host.link import Inbound, LinkServer, Registration, RunnerConnection
from host.session import BootFailed, ProtocolViolation, RunnerLost, RunnerSession, SessionError
from host.strays import StrayBudget
from host.supervisor.policy import FailureKind
from host.supervisor.process import Rung, RunnerLaunch, RunnerProcess, crash_cause, end_runner, spawn_runner
from host.supervisor.status import StateStore, StrategyDefinition, StrategyMeter, StrategyStats, SupervisionSettings
from host.supervisor.strategy_logs import StrategyLogRelay
from protocol.exitcodes import BOOT_ERRORS, describe_exit

__all__ = ["Runner", "SpawnFailed", "StrategyRunners", "boot_failure", "explain_loss"]

log = structlog.get_logger("host.supervisor")

# Reasons for an orderly stop: the runner is healthy and gets the full grace to finish.
_ORDERLY = ("stopped", "host shutting down", "replaced")
_FAILING_GRACE_S = 0.2


@dataclass
class Runner:
    """One runner process of a strategy whose code has loaded (its Hello received)."""

    process: RunnerProcess
    inbox: asyncio.Queue[Inbound]
    session: RunnerSession
    hello: pb.Hello


class SpawnFailed(Exception):
    """The runner process could not be started at all."""


class StrategyRunners:
    """Starts and ends the runners of one strategy, counting what their ends cost."""

    def __init__(
        self,
        strategy_id: str,
        settings: SupervisionSettings,
        link: LinkServer,
        stats: StrategyStats,
        metrics: StrategyMeter,
        state_store: StateStore | None = None,
        logs: StrategyLogRelay | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.id = strategy_id
        self.clock = clock or SystemClock()
        self.logs = logs
        self.settings = settings
        self.link = link
        self.stats = stats
        self.metrics = metrics
        self.state_store = state_store
        self._spawns = 0

    async def load(self, definition: StrategyDefinition) -> Runner:
        """Spawn a runner and wait for its Hello. Raises SessionError / TimeoutError / SpawnFailed."""
        process, registration = await self._spawn(definition)
        timeout = self.settings.handshake_timeout_s
        try:
            async with asyncio.timeout(timeout):
                connection = await _connected(registration.connected, registration.inbox)
            relay = None if self.logs is None else functools.partial(self.logs.relay, runner_pid=process.pid)
            strays = StrayBudget(self.settings.strays, self.clock)
            session = RunnerSession(registration.runner_id, registration.inbox, connection, relay, strays, process.lane)
            hello = await session.loaded(timeout)
        except BaseException as err:
            self.link.unregister(registration)
            await end_runner(process, None, grace_s=_FAILING_GRACE_S)
            await process.aclose()  # its output is read to the end: the cause is in its tail
            if isinstance(err, RunnerLost):
                raise explain_loss(err, process, registration.runner_id) from None
            raise
        self._check_identity(hello)
        log.info(
            "runner_loaded", strategy=self.id, pid=process.pid, protocol_version=hello.protocol_version,
            sdk_version=hello.sdk_version,
        )  # fmt: skip
        return Runner(process, registration.inbox, session, hello)

    async def end(self, runner: Runner, reason: str) -> Rung:
        grace = self.settings.stop_grace_s if reason in _ORDERLY else _FAILING_GRACE_S
        rung = await end_runner(runner.process, runner.session, grace)
        await runner.process.aclose()
        runner.session.drain()  # on_stop's records ride on Stopped, which nobody awaited
        if self.logs is not None:
            self.logs.runner_ended(runner.process.pid)
        self.stats.last_rung = rung.value
        self.stats.late_replies += runner.session.stats.late_replies
        self.metrics.stopped(rung.value)
        log.info("runner_ended", strategy=self.id, pid=runner.process.pid, rung=rung.value, reason=reason)
        return rung

    def stored_state(self) -> dict[str, bytes]:
        if self.state_store is None:
            return {}
        state = self.state_store.load_state(self.id)
        return {self.id: state} if state else {}

    async def save_state(self, runner: Runner) -> None:
        """Ask the serving runner for its state and keep it for the next start (bounded, best effort)."""
        if self.state_store is None:
            return
        try:
            snapshot = await runner.session.snapshot(min(2.0, self.settings.stop_grace_s))
        except (SessionError, TimeoutError) as err:
            log.warning("strategy_state_not_saved", strategy=self.id, reason=str(err) or "no snapshot in time")
            return
        state = snapshot.states.get(self.id)
        if state:
            self.state_store.save_state(self.id, state)

    async def _spawn(self, definition: StrategyDefinition) -> tuple[RunnerProcess, Registration]:
        self._spawns += 1
        launch = RunnerLaunch(
            runner_id=f"{definition.id}#{self._spawns}",
            plugin=self.settings.plugins_dir / definition.plugin,
            strategies=[{"id": definition.id, "name": definition.name, "params": dict(definition.params)}],
            limits=self.settings.limits,
            handshake_timeout_s=self.settings.handshake_timeout_s,
            user=self.settings.runner_user,
            data_lane=self.settings.data_lane == "socket",
        )
        try:
            return await spawn_runner(launch, self.link, asyncio.Queue(), self.metrics.output_truncated)
        except OSError as err:
            raise SpawnFailed(f"cannot start a runner for {launch.plugin}: {err}") from err

    def _check_identity(self, hello: pb.Hello) -> None:
        claimed = [s.id for s in hello.strategies]
        if claimed != [self.id]:
            log.warning("runner_identity_mismatch", strategy=self.id, claimed=claimed)


def boot_failure(err: BaseException, handshake_timeout_s: float) -> tuple[FailureKind, str]:
    """The failure kind and reason to charge for a runner that did not come up."""
    if isinstance(err, (BootFailed, SpawnFailed)):  # could not load, or not even be spawned
        return FailureKind.BOOT, str(err)
    if isinstance(err, RunnerLost) and err.returncode in BOOT_ERRORS:
        return FailureKind.BOOT, str(err)
    if isinstance(err, ProtocolViolation):
        return FailureKind.PROTOCOL, str(err)
    if isinstance(err, TimeoutError):
        return FailureKind.TIMEOUT, f"no Ready within {handshake_timeout_s} s"
    return FailureKind.CRASH, str(err)


def explain_loss(err: RunnerLost, process: RunnerProcess, runner_id: str | None = None) -> RunnerLost:
    """``err`` with its cause, once the process is reaped: how it ended (signal or named exit code) and
    the last error it printed, instead of what the stream saw ("runner closed the stream")."""
    code = process.returncode if process.returncode is not None else err.returncode
    if code is None:
        return err
    cause = crash_cause(list(process.tail))
    reason = f"{describe_exit(code)} (return code {code})" + (f"; last error: {cause}" if cause else "")
    return RunnerLost(runner_id or err.runner_id, reason, code)


async def _connected(connected: asyncio.Future[RunnerConnection], inbox: asyncio.Queue[Inbound]) -> RunnerConnection:
    """The runner's connection, or RunnerLost if its process exits before it connects."""
    exited: asyncio.Future[Any] = asyncio.ensure_future(inbox.get())
    try:
        done, _ = await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
    if connected in done:
        if exited in done and not exited.cancelled():
            inbox.put_nowait(exited.result())
        return connected.result()
    item = exited.result()
    code = getattr(item, "returncode", None)
    raise RunnerLost("?", f"process exited before connecting ({code})", code)

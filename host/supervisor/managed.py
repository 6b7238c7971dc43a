"""One strategy instance under supervision: its runner, outbox, breaker, stats and serving loop.

Model. Each managed strategy has one task (``run``) that owns its runner: boot (spawn, Hello,
Start, Ready), serve (take the outbox as one batch, call with a deadline, hand the signals on,
repeat), and on failure ask the breaker what to do (keep serving, restart after a backoff, or
stay open until an operator resumes). What a result means (signals on, errors charged) is
``host.supervisor.judging``'s to say. Nothing else touches the runner, so there is exactly one
place that decides "runner gone": ``_lost``. Producers only put into the outbox and, when the
loop is idle, drop a ``Wakeup`` on the runner's inbox; the loop reads that single inbox for
results, stream ends, process exits, wakeups and heartbeats alike.

Reliability. Market data is conflated per (symbol, type) in the bounded outbox; fills, positions
and timers are never dropped: an item that was in flight when the runner died is queued again
for the replacement. Cancel-on-disconnect: the listener's ``strategy_down`` runs before any
restart decision is acted on.

Hot reload. ``prepare_swap`` boots a replacement up to Hello (its code loaded); the loop, between
batches, snapshots the serving runner, starts the replacement with that state, switches to it
once Ready, then ends the old one. If the replacement fails, the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from engine_proto import strategy_pb2 as pb
from host.link import Inbound, LinkServer, Wakeup
from host.router import Outbox
from host.session import BootFailed, DeadlineMissed, RunnerLost, RunnerSession, SessionError
from host.supervisor.judging import ResultJudge
from host.supervisor.policy import (
    CircuitBreaker,
    Continue,
    Decision,
    FailureKind,
    Open,
    Restart,
)
from host.supervisor.process import Rung, RunnerLaunch, RunnerProcess, end_runner, spawn_runner
from host.supervisor.status import (
    ReloadRecord,
    StateStore,
    StrategyDefinition,
    StrategyListener,
    StrategyMeter,
    StrategyState,
    StrategyStats,
    StrategyStatus,
    SupervisionSettings,
)
from runner import wire
from runner.exitcodes import BOOT_ERRORS, describe_exit

# The data types live in host.supervisor.status; they are re-exported here for the callers that
# think of them as the managed strategy's.
__all__ = [
    "ManagedStrategy",
    "SpawnFailed",
    "StateStore",
    "StrategyDefinition",
    "StrategyListener",
    "StrategyState",
    "StrategyStatus",
    "SupervisionSettings",
]

log = structlog.get_logger("host.supervisor")


@dataclass
class _Runner:
    process: RunnerProcess
    inbox: asyncio.Queue[Inbound]
    session: RunnerSession
    hello: pb.Hello


class SpawnFailed(Exception):
    """The runner process could not be started at all."""


class _Swap:
    """A replacement runner whose code has loaded, waiting for the loop to switch to it."""

    def __init__(self, runner: _Runner, definition: StrategyDefinition) -> None:
        self.runner = runner
        self.definition = definition
        self.done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()


class ManagedStrategy:
    """Supervision of one strategy instance (one runner at a time)."""

    def __init__(
        self,
        definition: StrategyDefinition,
        settings: SupervisionSettings,
        link: LinkServer,
        breaker: CircuitBreaker,
        listener: StrategyListener,
        metrics: StrategyMeter,
        state_store: StateStore | None = None,
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        self._notify = notify  # the supervisor's "something changed": state, queue taken, idle
        self.definition = definition
        self.settings = settings
        self.link = link
        self.breaker = breaker
        self.listener = listener
        self.metrics = metrics
        self.state_store = state_store
        self.outbox = Outbox(settings.outbox_capacity)
        self.stats = StrategyStats()
        self._judge = ResultJudge(definition.id, settings, self.stats, metrics, breaker, listener, self._serving)
        self._state = StrategyState.STARTING
        self._runner: _Runner | None = None
        self._idle = False
        self._closing = False
        self._resume = asyncio.Event()
        self._swap: _Swap | None = None
        self._unacked: list[bytes] = []
        self._spawns = 0
        self._restart_requested = False
        self._endings: set[asyncio.Future[Rung]] = set()  # replaced runners being stopped

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def state(self) -> StrategyState:
        return self._state

    @state.setter
    def state(self, state: StrategyState) -> None:
        self._state = state
        self._notify()

    # ---------------------------------------------------------------- producers (hot path)

    def offer_market(self, key: tuple[str, str], item: bytes) -> None:
        if self.state is StrategyState.OPEN or self.state is StrategyState.PAUSED:
            return
        self.outbox.put_market(key, item)
        self._wake()

    def offer_reliable(self, item: bytes) -> None:
        """A fill, position or timer: kept until a runner has answered the batch carrying it."""
        self.outbox.put_reliable(item)
        self._unacked.append(item)
        self._wake()

    def _wake(self) -> None:
        if self._idle and self._runner is not None:
            self._idle = False
            self._runner.inbox.put_nowait(Wakeup())

    # ---------------------------------------------------------------- operator

    def pause(self, reason: str = "paused by operator") -> None:
        self.breaker.pause(reason)
        self.state = StrategyState.PAUSED
        self._resume.clear()  # only a resume after this pause counts
        self._restart_requested = False
        self._interrupt()

    def resume(self) -> None:
        self.breaker.resume()
        self._resume.set()

    def restart(self) -> None:
        """Replace the serving runner with a fresh one (operator request: no breaker charge).

        Only a serving strategy is restarted; a paused or open one is started by ``resume``.
        """
        if self.state is StrategyState.RUNNING:
            self._restart_requested = True
            self._interrupt()

    def close(self) -> None:
        self._closing = True
        self._resume.set()
        self._interrupt()

    def _interrupt(self) -> None:
        if self._runner is not None:
            self._idle = False
            self._runner.inbox.put_nowait(Wakeup())

    # ---------------------------------------------------------------- status

    @property
    def quiescent(self) -> bool:
        """Nothing queued and nothing in flight (or not running, so nothing will be answered)."""
        if self.state is not StrategyState.RUNNING:
            return True
        return self._idle and not self.outbox

    def status(self) -> StrategyStatus:
        latencies = sorted(self.stats.latency_ns)
        runner = self._runner
        return StrategyStatus(
            id=self.id, plugin=self.definition.plugin, name=self.definition.name, state=self.state,
            breaker=self.breaker.status(), pid=runner.process.pid if runner else None,
            sandbox=tuple(runner.hello.sandbox) if runner else (), events_sent=self.stats.events_sent,
            batches=self.stats.batches,
            signals=self.stats.signals, errors=self.stats.errors, restarts=self.stats.restarts,
            reloads=self.stats.reloads, reload_failures=self.stats.reload_failures, last_reload=self.stats.last_reload,
            conflated=self.outbox.conflated, dropped=self.outbox.dropped,
            signals_dropped=self.stats.signals_dropped,
            late_replies=self.stats.late_replies + (runner.session.stats.late_replies if runner else 0),
            impersonations=self.stats.impersonations, last_error=self.stats.last_error,
            last_exit=self.stats.last_exit, latency_p50_us=_percentile(latencies, 0.50),
            latency_p99_us=_percentile(latencies, 0.99), outbox=len(self.outbox),
        )  # fmt: skip

    # ---------------------------------------------------------------- the loop

    async def run(self) -> None:
        """Boot, serve, recover, until closed."""
        restore = self._stored_state()  # the first runner continues where the last host left off
        try:
            while not self._closing:
                if self.state in (StrategyState.OPEN, StrategyState.PAUSED):
                    await self._wait_resume()
                    continue
                runner = await self._boot(self.definition, restore=restore)
                restore = {}  # after a failure a fresh start is safer than state that may have caused it
                if runner is not None:
                    await self._serve(runner)
        finally:
            await self._shutdown()

    async def _wait_resume(self) -> None:
        await self._resume.wait()
        self._resume.clear()
        if not self._closing:
            self.state = StrategyState.STARTING
            log.info("strategy_resumed", strategy=self.id)

    async def _shutdown(self) -> None:
        self.state = StrategyState.STOPPED
        if self._endings:
            await asyncio.gather(*self._endings, return_exceptions=True)
        if self._swap is not None:
            await self._end(self._swap.runner, "host shutting down")
            if not self._swap.done.done():
                self._swap.done.set_result("host shutting down")
        if self._runner is not None:
            await self._end(self._runner, "host shutting down")
            self._runner = None

    # ---------------------------------------------------------------- state across host restarts

    def _stored_state(self) -> dict[str, bytes]:
        if self.state_store is None:
            return {}
        state = self.state_store.load_state(self.id)
        return {self.id: state} if state else {}

    async def _store_state(self, runner: _Runner) -> None:
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

    # ---------------------------------------------------------------- boot

    async def _spawn(self, definition: StrategyDefinition) -> tuple[RunnerProcess, asyncio.Queue[Inbound], Any]:
        self._spawns += 1
        inbox: asyncio.Queue[Inbound] = asyncio.Queue()
        launch = RunnerLaunch(
            runner_id=f"{definition.id}#{self._spawns}",
            plugin=self.settings.plugins_dir / definition.plugin,
            strategies=[{"id": definition.id, "name": definition.name, "params": dict(definition.params)}],
            limits=self.settings.limits,
            handshake_timeout_s=self.settings.handshake_timeout_s,
        )
        try:
            process, registration = await spawn_runner(launch, self.link, inbox)
        except OSError as err:
            raise SpawnFailed(f"cannot start a runner for {launch.plugin}: {err}") from err
        return process, inbox, registration

    async def _load(self, definition: StrategyDefinition) -> _Runner:
        """Spawn a runner and wait for its Hello. Raises SessionError / TimeoutError."""
        process, inbox, registration = await self._spawn(definition)
        try:
            async with asyncio.timeout(self.settings.handshake_timeout_s):
                connection = await _connected(registration.connected, inbox)
            session = RunnerSession(registration.runner_id, inbox, connection)
            hello = await session.loaded(self.settings.handshake_timeout_s)
        except BaseException:
            self.link.unregister(registration)
            await end_runner(process, None, grace_s=0.2)
            await process.aclose()
            raise
        self._check_identity(hello)
        return _Runner(process, inbox, session, hello)

    def _check_identity(self, hello: pb.Hello) -> None:
        claimed = [s.id for s in hello.strategies]
        if claimed != [self.id]:
            log.warning("runner_identity_mismatch", strategy=self.id, claimed=claimed)

    async def _boot(self, definition: StrategyDefinition, restore: Mapping[str, bytes]) -> _Runner | None:
        self.state = StrategyState.STARTING
        try:
            runner = await self._load(definition)
            self._runner = runner
            await runner.session.start(restore, self.settings.handshake_timeout_s)
        except (SessionError, TimeoutError, SpawnFailed) as err:
            runner_or_none = self._runner
            self._runner = None
            await self._boot_failed(err, runner_or_none)
            return None
        if self.state is not StrategyState.STARTING or self._closing:
            # Paused (or closed) while it was starting: it does not get to serve.
            self._runner = None
            await self._end(runner, "stopped")
            return None
        self.breaker.runner_started()
        self.state = StrategyState.RUNNING
        self.listener.strategy_up(self.id)
        self._requeue_unacked()
        self._deliver_positions()
        log.info("strategy_ready", strategy=self.id, pid=runner.process.pid, sandbox=list(runner.hello.sandbox))
        return runner

    async def _boot_failed(self, err: BaseException, runner: _Runner | None) -> None:
        if runner is not None:
            await self._end(runner, "boot failed")
        if isinstance(err, (BootFailed, SpawnFailed)):  # could not load, or not even be spawned
            kind, reason = FailureKind.BOOT, str(err)
        elif isinstance(err, RunnerLost) and err.returncode in BOOT_ERRORS:
            kind, reason = FailureKind.BOOT, f"{err} [{describe_exit(err.returncode or 0)}]"
        elif isinstance(err, TimeoutError):
            kind, reason = FailureKind.TIMEOUT, f"no Ready within {self.settings.handshake_timeout_s} s"
        else:
            kind, reason = FailureKind.CRASH, str(err)
        if isinstance(err, RunnerLost) and err.returncode is not None:
            self.stats.last_exit = describe_exit(err.returncode)
        await self._failed(kind, reason)

    def _deliver_positions(self) -> None:
        for position in self.listener.positions(self.id):
            self.offer_reliable(wire.encode_event_item(position, target=self.id))

    def _requeue_unacked(self) -> None:
        """After a restart: reliable items the previous runner never answered, in their order.

        Market data queued for the dead runner is dropped (stale by the time a new runner is up;
        counted); fills, positions and timers are all delivered to the replacement.
        """
        stale = len(self.outbox) - self.outbox.pending_reliable
        self.outbox.take()
        self.stats.stale_dropped += max(0, stale)
        for item in self._unacked:
            self.outbox.put_reliable(item)

    # ---------------------------------------------------------------- serve

    async def _serve(self, runner: _Runner) -> None:
        while not self._closing and self.state is StrategyState.RUNNING:
            if self._restart_requested:
                self._restart_requested = False
                self.listener.strategy_down(self.id, "restarted by operator")
                self.state = StrategyState.STARTING
                break
            if self._swap is not None:
                runner = await self._switch(runner)
                continue
            items = self.outbox.take(self.settings.max_batch_events)
            self._notify()
            if not items:
                if not await self._idle_wait(runner):
                    return
                continue
            if not await self._call(runner, items):
                return
        if self._runner is not None:
            if self._closing:
                await self._store_state(self._runner)
            await self._end(self._runner, "stopped")
            self._runner = None

    async def _idle_wait(self, runner: _Runner) -> bool:
        """Wait for work or news from the runner; False when the runner is gone."""
        self._idle = True
        self._notify()
        try:
            async with asyncio.timeout(self.settings.heartbeat_interval_s):
                item = await runner.inbox.get()
        except TimeoutError:
            await runner.session.heartbeat(0)
            return True
        finally:
            self._idle = False
        try:
            message = runner.session.interpret(item)
        except RunnerLost as lost:
            await self._lost(runner, FailureKind.CRASH, lost)
            return False
        if message is not None:
            runner.session.note_idle(message)
        return True

    async def _call(self, runner: _Runner, items: list[bytes]) -> bool:
        """Send one batch and judge its result; False when the runner had to go."""
        deadline = self.settings.deadline(len(items))
        try:
            result = await runner.session.call(b"".join(items), len(items), deadline)
        except DeadlineMissed as missed:
            await self._lost(runner, FailureKind.TIMEOUT, missed)
            return False
        except RunnerLost as lost:
            await self._lost(runner, FailureKind.CRASH, lost)
            return False
        self._acked(items)
        self.stats.batches += 1
        self.stats.events_sent += len(items)
        rtt_ns = runner.session.stats.last_rtt_ns
        self.stats.latency_ns.append(rtt_ns)
        self.metrics.latency_us.observe(rtt_ns / 1000)
        self.metrics.processing_us.observe(result.compute_ns / 1000)
        decision = self._judge.judge(result)
        if isinstance(decision, Continue):
            return True
        await self._act(runner, decision)
        return False

    def _acked(self, items: list[bytes]) -> None:
        if self._unacked:
            sent = {id(item) for item in items}
            self._unacked = [item for item in self._unacked if id(item) not in sent]

    def _serving(self) -> bool:
        return self.state is StrategyState.RUNNING and not self._closing

    # ---------------------------------------------------------------- failure

    async def _lost(self, runner: _Runner, kind: FailureKind, err: SessionError) -> None:
        """The one handler for "runner gone" (timeout, exit, broken stream): charge it and recover."""
        if isinstance(err, RunnerLost) and err.returncode is None:
            code = await runner.process.wait(1.0)
            err = RunnerLost(err.runner_id, err.reason, code)
        if isinstance(err, RunnerLost) and err.returncode is not None:
            self.stats.last_exit = describe_exit(err.returncode)
        self.stats.last_error = str(err)
        self.listener.strategy_down(self.id, str(err))
        await self._end(runner, kind.value)
        self._runner = None
        await self._failed(kind, str(err))

    async def _failed(self, kind: FailureKind, reason: str) -> None:
        self.metrics.error(kind.value)
        decision = self.breaker.record_failure(kind, reason)
        log.warning("strategy_failed", strategy=self.id, kind=kind.value, reason=reason[:500])
        await self._apply(decision)

    async def _act(self, runner: _Runner, decision: Decision) -> None:
        """A decision taken while the runner is alive (errors tripped the breaker)."""
        self.listener.strategy_down(self.id, f"breaker tripped: {_reason(decision)}")
        await self._end(runner, "breaker tripped")
        self._runner = None
        await self._apply(decision)

    async def _apply(self, decision: Decision) -> None:
        match decision:
            case Restart(after_s=after, reason=reason):
                self.state = StrategyState.BACKOFF
                self.stats.restarts += 1
                self.metrics.restarts.inc()
                log.warning("runner_restart_scheduled", strategy=self.id, delay_s=round(after, 3), reason=reason)
                await self._sleep(after)
                if self.state is StrategyState.BACKOFF:
                    self.state = StrategyState.STARTING
            case Open(reason=reason):
                self.state = StrategyState.PAUSED if self.breaker.status().paused_by_operator else StrategyState.OPEN
                self._resume.clear()
                self.stats.last_error = self.stats.last_error or reason
                log.error("strategy_breaker_open", strategy=self.id, reason=reason)
            case Continue():
                pass

    async def _sleep(self, seconds: float) -> None:
        """A backoff delay that closing, pausing or resuming cuts short."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._resume.wait()
        if self.state is StrategyState.BACKOFF:
            self._resume.clear()

    async def _end(self, runner: _Runner, reason: str) -> Rung:
        grace = self.settings.stop_grace_s if reason in ("stopped", "host shutting down", "replaced") else 0.2
        rung = await end_runner(runner.process, runner.session, grace)
        await runner.process.aclose()
        self.stats.last_rung = rung.value
        self.stats.late_replies += runner.session.stats.late_replies
        self.metrics.stopped(rung.value)
        log.info("runner_ended", strategy=self.id, pid=runner.process.pid, rung=rung.value, reason=reason)
        return rung

    # ---------------------------------------------------------------- hot reload

    async def prepare_swap(self, definition: StrategyDefinition) -> str | None:
        """Load ``definition`` in a new runner and hand it to the loop; None on success, else why not."""
        if self._swap is not None:
            return "a reload is already in progress"
        if self.state is not StrategyState.RUNNING:
            # Not serving: the next boot uses the new definition. One held open (a boot error
            # the new code may fix) gets that boot now; an operator's pause is left alone.
            self.definition = definition
            if self.state is StrategyState.OPEN:
                self.resume()
            return None
        try:
            runner = await self._load(definition)
        except (SessionError, TimeoutError, SpawnFailed) as err:
            return self._reload_failed(str(err) or "no Hello in time")
        self._swap = _Swap(runner, definition)
        self._interrupt()
        return await self._swap.done

    def _reload_failed(self, reason: str) -> str:
        self.stats.reload_failures += 1
        self.stats.last_reload = ReloadRecord(time.time(), ok=False, error=reason)
        log.error("plugin_reload_failed", strategy=self.id, reason=reason[:500])
        return reason

    async def _switch(self, old: _Runner) -> _Runner:
        """Snapshot the serving runner, start the replacement with its state, move traffic over."""
        swap, self._swap = self._swap, None
        assert swap is not None
        timeout = self.settings.handshake_timeout_s
        try:
            snapshot = await old.session.snapshot(timeout)
            await swap.runner.session.start(dict(snapshot.states), timeout)
        except (SessionError, TimeoutError) as err:
            await self._end(swap.runner, "reload failed")
            swap.done.set_result(self._reload_failed(str(err) or "replacement did not become Ready"))
            return old
        self._runner = swap.runner
        self.definition = swap.definition
        self.stats.reloads += 1
        self.stats.last_reload = ReloadRecord(time.time(), ok=True)
        self._deliver_positions()  # the new runner's context starts empty; queued events stay queued
        swap.done.set_result(None)
        log.info("plugin_reloaded", strategy=self.id, old_pid=old.process.pid, new_pid=swap.runner.process.pid)
        # The new runner serves at once; the old one is drained and stopped alongside.
        ending = asyncio.ensure_future(self._end(old, "replaced"))
        self._endings.add(ending)
        ending.add_done_callback(self._endings.discard)
        return swap.runner


async def _connected(connected: asyncio.Future[Any], inbox: asyncio.Queue[Inbound]) -> Any:
    """The runner's connection, or RunnerLost if its process exits before it connects."""
    exited = asyncio.ensure_future(inbox.get())
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


def _reason(decision: Decision) -> str:
    return getattr(decision, "reason", "")


def _percentile(ordered: list[int], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0

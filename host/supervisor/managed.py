"""One strategy instance under supervision: the loop that boots its runner, serves it and recovers.

Model. Each managed strategy has one task (``run``) that owns its serving runner: boot (spawn,
Hello, Start, Ready), serve (take the outbox as one batch, call with a deadline, hand the signals
on, repeat), and on failure ask the breaker what to do (keep serving, restart after a backoff, or
stay open until an operator resumes). Nothing else touches the serving runner, so there is exactly
one place that decides "runner gone": ``_lost``. Producers only put into the outbox and, when the
loop is idle, drop a ``Wakeup`` on the runner's inbox; the loop reads that single inbox for
results, stream ends, process exits, wakeups and heartbeats alike.

The loop's helpers each have a module: ``judging`` says what a batch result means (signals on,
errors charged); ``runners`` starts and ends runner processes and keeps strategy state across host
restarts; ``swap`` holds a hot reload's replacement until the loop switches to it; ``control``
holds the operator's requests (pause, resume, restart, close) and charges observed outside a
batch; ``fairshare`` judges the runner's CPU use (``sample_cpu``, called by the supervisor's
sampler) and its orders' quota rejections (``over_quota``, reported by the execution engine).
The loop acts on a pending swap, on requests and on charges only between batches.

Crash capture and timers (each a few hooks): the events sent to the serving runner are kept in
its capture ring (``host.supervisor.capture``), written out when it raises, misses a deadline or
crashes; a new runner drops the strategy's timers from the supervisor's schedule and gets one empty
batch right after it serves, which brings back what its ``on_start`` asked for (timers, signals).

Reliability. Market data is conflated per (symbol, type) in the bounded outbox; fills, positions
and timers are never dropped: an item that was in flight when the runner died is queued again
for the replacement. Cancel-on-disconnect: the listener's ``strategy_down`` runs before any
restart decision is acted on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import structlog

from host.clock import Clock, SystemClock
from host.link import LinkServer, Wakeup
from host.router import Outbox
from host.session import DeadlineMissed, ProtocolViolation, RunnerLost, SessionError
from host.supervisor.capture import CaptureSubject, StrategyCapture
from host.supervisor.control import Control
from host.supervisor.fairshare import CpuBudget, QuotaStrikes
from host.supervisor.judging import ResultJudge
from host.supervisor.lockstep import Lockstep
from host.supervisor.lograte import LogRateLimiter
from host.supervisor.policy import CircuitBreaker, Continue, Decision, FailureKind, Open, Restart
from host.supervisor.runners import Runner, SpawnFailed, StrategyRunners, boot_failure, explain_loss
from host.supervisor.status import (
    StateStore,
    StrategyDefinition,
    StrategyListener,
    StrategyMeter,
    StrategyState,
    StrategyStats,
    StrategyStatus,
    SupervisionSettings,
)
from host.supervisor.strategy_logs import StrategyLogRelay
from host.supervisor.swap import HotSwap
from protocol import wire
from protocol.exitcodes import describe_exit
from sdk._timers import TimerBook

# The data types live in host.supervisor.status (SpawnFailed in host.supervisor.runners); they are
# re-exported here for the callers that think of them as the managed strategy's.
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


class ManagedStrategy:
    """Supervision of one strategy instance (one serving runner at a time)."""

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
        clock: Clock | None = None,
        capture: StrategyCapture | None = None,
        timers: TimerBook | None = None,
        lockstep: Lockstep | None = None,
    ) -> None:
        self._timers = timers  # the supervisor's schedule; this strategy's entries are its serving runner's
        self._capture = capture  # crash capture (host.supervisor.capture): the last events sent, kept per runner
        self._notify = notify  # the supervisor's "something changed": state, queue taken, idle
        self.definition = definition
        self.settings = settings
        self.breaker = breaker
        self.listener = listener
        self.metrics = metrics
        self.outbox = Outbox(settings.outbox_capacity)
        self.stats = StrategyStats()
        self._judge = ResultJudge(
            definition.id, settings, self.stats, metrics, breaker, listener, self._serving, timers=timers
        )
        clock = clock or SystemClock()
        limiter = LogRateLimiter(settings.log_rate, clock)
        self.logs = StrategyLogRelay(definition.id, definition.plugin, limiter, metrics)
        self._runners = StrategyRunners(
            definition.id, settings, link, self.stats, metrics, state_store, self.logs, clock
        )
        self._swap = HotSwap(definition.id, self._runners, self.stats, settings.handshake_timeout_s)
        self._control = Control(breaker, self._interrupt)
        clock = clock or SystemClock()
        self._cpu = CpuBudget(settings.cpu_share, settings.cpu_window_s, clock) if settings.cpu_share > 0 else None
        self._quota = QuotaStrikes(settings.flood_strikes, settings.flood_window_s, clock)
        self._state = StrategyState.STARTING
        self._shut = False  # the state is OPEN or PAUSED (read on every tick)
        self._runner: Runner | None = None
        self._idle = False
        self._unacked: list[bytes] = []
        self._collect = False  # a new runner's on_start outputs (signals, timers) are still to be fetched
        self._lockstep = lockstep  # a backtest's driver decides every batch (host.supervisor.lockstep)

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def state(self) -> StrategyState:
        return self._state

    @state.setter
    def state(self, state: StrategyState) -> None:
        self._state = state
        self._shut = state is StrategyState.OPEN or state is StrategyState.PAUSED
        self._notify()

    # ---------------------------------------------------------------- producers (hot path)

    def offer_market(self, key: tuple[str, str], item: bytes) -> None:
        if self._shut:  # open or paused: market data is not kept for it
            return
        self.outbox.put_market(key, item)
        if self._idle:
            self._interrupt()

    def offer_reliable(self, item: bytes) -> None:
        """A fill, position or timer: kept until a runner has answered the batch carrying it."""
        self.outbox.put_reliable(item)
        self._unacked.append(item)
        self._wake()

    def wake(self) -> None:
        """The lockstep driver has a batch for this strategy: wake the loop if it is idle."""
        self._wake()

    def _wake(self) -> None:
        if self._idle:
            self._interrupt()

    def _interrupt(self) -> None:
        """Wake the loop if it waits on an idle runner; with a batch in flight it looks after the batch."""
        if self._runner is not None:
            self._idle = False
            self._runner.inbox.put_nowait(Wakeup())

    # ---------------------------------------------------------------- operator and reload requests

    def pause(self, reason: str = "paused by operator") -> None:
        self._control.pause(reason)
        self.state = StrategyState.PAUSED

    def resume(self) -> None:
        """Start a paused or open strategy again: it is starting from this moment (what the operator is told)."""
        self._control.resume()
        if self.state in (StrategyState.PAUSED, StrategyState.OPEN):
            self.state = StrategyState.STARTING

    def restart(self) -> None:
        """Replace the serving runner with a fresh one (operator request: no breaker charge).

        Only a serving strategy is restarted; a paused or open one is started by ``resume``.
        """
        if self.state is StrategyState.RUNNING:
            self._control.restart()

    def close(self) -> None:
        self._control.close()

    async def prepare_swap(self, definition: StrategyDefinition) -> str | None:
        """Serve ``definition`` from a new runner (see ``host.supervisor.swap``); None on success, else why not."""
        if self._swap.pending is None and self.state is not StrategyState.RUNNING:
            # Not serving: the next boot uses the new definition. One held open (a boot error
            # the new code may fix) gets that boot now; an operator's pause is left alone.
            self.definition = definition
            if self.state is StrategyState.OPEN:
                self.resume()
            return None
        return await self._swap.prepare(definition, self._interrupt)

    # ---------------------------------------------------------------- fair share (outside batches)

    def sample_cpu(self, read: Callable[[int], float | None]) -> None:
        """Read the serving runner's CPU time (``read(pid)``) and charge it once it is over its share."""
        runner, budget = self._runner, self._cpu
        if runner is None or budget is None or self.state is not StrategyState.RUNNING:
            return
        pid = runner.process.pid
        used = read(pid)
        if used is None:
            return
        over = budget.observe(pid, used)
        if over is None:
            return
        budget.reset()
        log.warning(
            "strategy_cpu_exceeded", strategy=self.id, kind=FailureKind.CPU.value, pid=pid,
            share=round(over.share, 3), limit=over.limit, window_s=round(over.span_s, 1),
        )  # fmt: skip
        self._control.charge(FailureKind.CPU, over.reason)

    def over_quota(self, message: str) -> None:
        """One of its orders was rejected by its own order-rate quota; enough of them are a charge."""
        if self.state is not StrategyState.RUNNING:
            return  # orders of a runner already being replaced
        reason = self._quota.record()
        if reason is None:
            return
        log.warning(
            "strategy_order_flood", strategy=self.id, kind=FailureKind.ORDER_FLOOD.value,
            rejections=self._quota.strikes, window_s=self._quota.window_s, last=message[:300],
        )  # fmt: skip
        self._control.charge(FailureKind.ORDER_FLOOD, reason)

    # ---------------------------------------------------------------- status

    @property
    def quiescent(self) -> bool:
        """Nothing queued and nothing in flight (or not running, so nothing will be answered)."""
        if self.state is not StrategyState.RUNNING:
            return True
        return self._idle and not self.outbox

    def status(self) -> StrategyStatus:
        p50, p99 = self.stats.latency_us()
        runner = self._runner
        return StrategyStatus(
            id=self.id, plugin=self.definition.plugin, name=self.definition.name, state=self.state,
            breaker=self.breaker.status(), pid=runner.process.pid if runner else None,
            sandbox=tuple(runner.hello.sandbox) if runner else (), events_sent=self.stats.events_sent,
            batches=self.stats.batches, signals=self.stats.signals, errors=self.stats.errors,
            restarts=self.stats.restarts, reloads=self.stats.reloads, reload_failures=self.stats.reload_failures,
            last_reload=self.stats.last_reload, conflated=self.outbox.conflated, dropped=self.outbox.dropped,
            signals_dropped=self.stats.signals_dropped, impersonations=self.stats.impersonations,
            late_replies=self.stats.late_replies + (runner.session.stats.late_replies if runner else 0),
            last_error=self.stats.last_error, last_exit=self.stats.last_exit,
            latency_p50_us=p50, latency_p99_us=p99, outbox=len(self.outbox),
            protocol_version=runner.hello.protocol_version if runner else "",
            sdk_version=runner.hello.sdk_version if runner else "",
            cpu_share=self._cpu.measured() if self._cpu is not None and runner is not None else None,
        )  # fmt: skip

    def capture_memory(self) -> int:
        return self._capture.ring.memory_bytes() if self._capture is not None else 0

    # ---------------------------------------------------------------- the loop

    async def run(self) -> None:
        """Boot, serve, recover, until closed."""
        restore = self._runners.stored_state()  # the first runner continues where the last host left off
        try:
            while not self._control.closing:
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
        await self._control.resumed()
        if not self._control.closing:
            self.state = StrategyState.STARTING
            log.info("strategy_resumed", strategy=self.id)

    async def _shutdown(self) -> None:
        self.state = StrategyState.STOPPED
        await self._swap.close()
        if self._runner is not None:
            await self._runners.end(self._runner, "host shutting down")
            self._runner = None

    # ---------------------------------------------------------------- boot

    async def _boot(self, definition: StrategyDefinition, restore: Mapping[str, bytes]) -> Runner | None:
        self.state = StrategyState.STARTING
        self._new_runner()
        try:
            runner = await self._runners.load(definition)
            self._runner = runner
            await runner.session.start(restore, self.settings.handshake_timeout_s)
        except (SessionError, TimeoutError, SpawnFailed) as err:
            runner_or_none = self._runner
            self._runner = None
            await self._boot_failed(err, runner_or_none)
            return None
        if self.state is not StrategyState.STARTING or self._control.closing:
            # Paused (or closed) while it was starting: it does not get to serve.
            self._runner = None
            await self._runners.end(runner, "stopped")
            return None
        if self._capture is not None:
            self._capture.started(restore.get(self.id, b""))
        self.breaker.runner_started()
        self._fresh_budgets()
        self.state = StrategyState.RUNNING
        self.listener.strategy_up(self.id)
        self._requeue_unacked()
        self._deliver_positions()
        log.info(
            "strategy_ready", strategy=self.id, pid=runner.process.pid, sandbox=list(runner.hello.sandbox),
            data_lane=runner.session.on_lane,
        )  # fmt: skip
        return runner

    async def _boot_failed(self, err: BaseException, runner: Runner | None) -> None:
        if runner is not None:
            await self._runners.end(runner, "boot failed")
            if isinstance(err, RunnerLost):
                err = explain_loss(err, runner.process)
        if isinstance(err, RunnerLost) and err.returncode is not None:
            self.stats.last_exit = describe_exit(err.returncode)
        kind, reason = boot_failure(err, self.settings.handshake_timeout_s)
        self.stats.last_error = reason
        await self._failed(kind, reason)

    def _new_runner(self) -> None:
        """Timers belong to the runner that asked for them: a new one schedules its own in on_start, whose
        outputs are fetched with an empty batch right after it serves (nothing else may be queued)."""
        if self._timers is not None:
            self._timers.drop(self.id)
        self._collect = True

    def _fresh_budgets(self) -> None:
        """A new runner starts with nothing charged against it: charges pending were the old one's."""
        self._control.take_charge()
        self._quota.reset()
        if self._cpu is not None:
            self._cpu.reset()

    def _deliver_positions(self) -> None:
        for position in self.listener.positions(self.id):
            item = wire.encode_event_item(position, target=self.id)
            if self._lockstep is not None:
                self._lockstep.deliver(self.id, position, item)
            else:
                self.offer_reliable(item)

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

    async def _serve(self, runner: Runner) -> None:
        control, swap = self._control, self._swap
        while not control.closing and self.state is StrategyState.RUNNING:
            if control.restart_requested:
                control.restart_requested = False
                self.listener.strategy_down(self.id, "restarted by operator")
                self.state = StrategyState.STARTING
                break
            charged = control.take_charge()
            if charged is not None:
                await self._replace(runner, *charged)
                return
            if swap.pending is not None:
                runner = await self._switch(runner)
                continue
            if self._lockstep is not None:
                items = self._lockstep.chunk(self.id)
            else:
                items = self.outbox.take(self.settings.max_batch_events)
            self._notify()
            if not items and not self._collect:
                if not await self._idle_wait(runner):
                    return
                continue
            self._collect = False
            if not await self._call(runner, items):
                return
        if self._runner is not None:
            if control.closing:
                await self._runners.save_state(self._runner)
            await self._runners.end(self._runner, "stopped")
            self._runner = None

    async def _switch(self, old: Runner) -> Runner:
        """A hot reload's replacement takes over, or ``old`` keeps serving if it failed."""
        new = await self._swap.switch(old)
        if new is None:
            return old
        self._runner, self.definition = new.runner, new.definition
        self._new_runner()
        if self._capture is not None:
            self._capture.started(new.restored.get(self.id, b""))
        self._deliver_positions()  # the new runner's context starts empty; queued events stay queued
        return new.runner

    async def _idle_wait(self, runner: Runner) -> bool:
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
            if message is not None:
                runner.session.note_idle(message)
        except RunnerLost as lost:
            await self._lost(runner, FailureKind.CRASH, lost)
            return False
        except ProtocolViolation as flood:
            await self._lost(runner, FailureKind.PROTOCOL, flood)
            return False
        return True

    async def _call(self, runner: Runner, items: list[bytes]) -> bool:
        """Send one batch and judge its result; False when the runner had to go."""
        deadline = self.settings.deadline(len(items))
        if self._capture is not None:
            self._capture.sent(items)
        lockstep = self._lockstep
        try:
            result = await runner.session.call(
                b"".join(items), len(items), deadline, cut_on_output=lockstep is not None
            )
        except (DeadlineMissed, RunnerLost, ProtocolViolation) as err:
            if lockstep is not None:
                lockstep.lost(self.id)
            await self._lost(runner, _LOSS_KIND[type(err)], err)
            return False
        if lockstep is not None:
            lockstep.answered(self.id, min(result.consumed, len(items)))
        self._acked(items)
        self.stats.batches += 1 if items else 0  # the empty one fetching on_start's outputs is not an event batch
        self.stats.events_sent += len(items)
        rtt_ns = runner.session.stats.last_rtt_ns
        self.stats.latency_ns.append(rtt_ns)
        self.metrics.latency_us.observe(rtt_ns / 1000)
        self.metrics.processing_us.observe(result.compute_ns / 1000)
        decision = self._judge.judge(result)
        failure = self._capture.answered(self.id, result) if self._capture is not None else None
        if failure is not None and self._capture is not None:  # after the signals went on, never holding them up
            await self._capture.capture(self._subject(), failure)
        if isinstance(decision, Continue):
            return True
        await self._act(runner, decision)
        return False

    def _acked(self, items: list[bytes]) -> None:
        if self._unacked:
            sent = {id(item) for item in items}
            self._unacked = [item for item in self._unacked if id(item) not in sent]

    def _subject(self) -> CaptureSubject:
        d = self.definition
        return CaptureSubject(d.id, d.plugin, d.name, d.params, self.settings.plugins_dir.resolve())

    def _serving(self) -> bool:
        return self.state is StrategyState.RUNNING and not self._control.closing

    # ---------------------------------------------------------------- failure

    async def _lost(self, runner: Runner, kind: FailureKind, err: SessionError) -> None:
        """The one handler for "runner gone" (timeout, exit, broken stream, flood): charge it and recover."""
        if isinstance(err, RunnerLost):
            if await runner.process.wait(1.0) is not None:
                await runner.process.output_read(0.5)
            err = explain_loss(err, runner.process)
        if isinstance(err, RunnerLost) and err.returncode is not None:
            self.stats.last_exit = describe_exit(err.returncode)
        if self._capture is not None and kind in (FailureKind.TIMEOUT, FailureKind.CRASH):
            await self._capture.lost(self._subject(), kind.value, str(err), list(runner.process.tail))
        await self._replace(runner, kind, str(err))

    async def _replace(self, runner: Runner, kind: FailureKind, reason: str) -> None:
        """End ``runner`` (its orders cancelled first), charge ``kind`` and act on the breaker's decision."""
        self.stats.last_error = reason
        self.listener.strategy_down(self.id, reason)
        await self._runners.end(runner, kind.value)
        self._runner = None
        await self._failed(kind, reason)

    async def _failed(self, kind: FailureKind, reason: str) -> None:
        self.metrics.error(kind.value)
        decision = self.breaker.record_failure(kind, reason)
        log.warning("strategy_failed", strategy=self.id, kind=kind.value, reason=reason[:500])
        await self._apply(decision)

    async def _act(self, runner: Runner, decision: Decision) -> None:
        """A decision taken while the runner is alive (errors tripped the breaker)."""
        self.listener.strategy_down(self.id, f"breaker tripped: {_reason(decision)}")
        await self._runners.end(runner, "breaker tripped")
        self._runner = None
        await self._apply(decision)

    async def _apply(self, decision: Decision) -> None:
        match decision:
            case Restart(after_s=after, reason=reason):
                self.state = StrategyState.BACKOFF
                self.stats.restarts += 1
                self.metrics.restarts.inc()
                log.warning("runner_restart_scheduled", strategy=self.id, delay_s=round(after, 3), reason=reason)
                await self._control.backoff(after)
                if self.state is StrategyState.BACKOFF:  # not paused meanwhile
                    self._control.forget_resume()
                    self.state = StrategyState.STARTING
            case Open(reason=reason):
                self.state = StrategyState.PAUSED if self.breaker.status().paused_by_operator else StrategyState.OPEN
                self._control.forget_resume()
                self.stats.last_error = self.stats.last_error or reason
                log.error("strategy_breaker_open", strategy=self.id, reason=reason)
            case Continue():
                pass


_LOSS_KIND: dict[type[SessionError], FailureKind] = {  # what a lost batch is charged as
    DeadlineMissed: FailureKind.TIMEOUT,
    RunnerLost: FailureKind.CRASH,
    ProtocolViolation: FailureKind.PROTOCOL,
}


def _reason(decision: Decision) -> str:
    return getattr(decision, "reason", "")

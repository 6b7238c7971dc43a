"""The supervisor: every configured strategy in a runner of its own, fed, judged and replaced.

Model. ``run`` starts the RunnerLink server and one ``ManagedStrategy`` task per strategy in a
TaskGroup; it returns once ``close`` has stopped them all (each runner ends through the stop
ladder). The feeds call ``publish`` for market data on the event loop: the event is encoded
once and the same bytes are offered to the outbox of every strategy whose symbols want it,
through the router's cached lookup. ``deliver`` hands a fill, position, timer or order update to
one strategy, never dropped. Operators pause, resume and restart through the typed methods here;
``status`` is what the HTTP surface shows. Metrics are handed in by the composition root
(``metrics=``, an ``EngineMetrics`` seen through the ``Metering`` protocol): the supervisor binds
each strategy's children and registers ``status`` for scraping, and never imports ``host.metrics``.

Plugins are folders under ``settings.plugins_dir``; one runner per strategy instance, so one
strategy's crash never reaches another's process. ``reload_plugin`` swaps every strategy of a
changed package to a new runner (see ManagedStrategy), ``set_definitions`` applies a changed
strategy list (added, removed, parameters changed) without restarting the host.

Timers: ``timers`` is every strategy's schedule (``sdk._timers.TimerBook``), filled from their batch
results. Live (``settings.live_timers``) one task sleeps until the next is due on the wall clock
and ``fire_timers`` hands each firing to its strategy like a fill (reliable, never conflated); a
replay or a backtest fires them on its own clock through ``fire_timers`` or ``timers.due``. A
strategy's timers are dropped when its runner is replaced: the new runner's ``on_start`` asks again.

Fair share: one sampler task reads each serving runner's CPU time every
``settings.cpu_sample_interval_s`` (``host.supervisor.cpuwatch``) and hands it to that strategy's
budget; ``over_quota`` is the execution engine telling a strategy's order was refused by its own
order-rate quota. Either may end in a charge to that strategy's breaker (``ManagedStrategy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog

from host.clock import Clock, SystemClock, WallClock
from host.link import LinkServer
from host.router import Router, Subscription
from host.supervisor.capture import CaptureRecord, CaptureStore, StrategyCapture
from host.supervisor.cpuwatch import cpu_seconds
from host.supervisor.lockstep import Lockstep
from host.supervisor.managed import (
    ManagedStrategy,
    StateStore,
    StrategyDefinition,
    StrategyListener,
    StrategyState,
    StrategyStatus,
    SupervisionSettings,
)
from host.supervisor.policy import BreakerPolicy, CircuitBreaker
from host.supervisor.status import Metering
from protocol import wire
from sdk._timers import TimerBook
from sdk.events import Fill, MarketEvent, OrderUpdate, Position, Timer

__all__ = ["ReloadOutcome", "Supervisor", "UnknownStrategy"]

log = structlog.get_logger("host.supervisor")


_HELD = (StrategyState.RUNNING, StrategyState.PAUSED, StrategyState.OPEN)
_WAITING = {
    StrategyState.STARTING: "is starting",
    StrategyState.BACKOFF: "is waiting to restart (backoff)",
    StrategyState.STOPPED: "is stopped",
}


class UnknownStrategy(KeyError):
    def __init__(self, strategy_id: str) -> None:
        super().__init__(strategy_id)
        self.strategy_id = strategy_id

    def __str__(self) -> str:
        return f"no strategy {self.strategy_id!r}"


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did per strategy: None when the new code is serving, else why not."""

    plugin: str
    results: Mapping[str, str | None]

    @property
    def ok(self) -> bool:
        return all(reason is None for reason in self.results.values())


class Supervisor:
    """Runs the configured strategies, each in its own runner."""

    def __init__(
        self,
        settings: SupervisionSettings,
        definitions: Iterable[StrategyDefinition],
        listener: StrategyListener,
        *,
        metrics: Metering,
        breaker_policy: BreakerPolicy | None = None,
        clock: Clock | None = None,
        link: LinkServer | None = None,
        state_store: StateStore | None = None,
        wall: WallClock | None = None,
    ) -> None:
        self.settings = settings
        self.wall = wall or SystemClock()  # what live timers fire by
        self.listener = listener
        self.breaker_policy = breaker_policy or BreakerPolicy()
        self.clock = clock or SystemClock()
        self.link = link or LinkServer()
        self.router = Router()
        self.state_store = state_store
        self.metrics = metrics
        self.metrics.watch(self.status)
        self._definitions = {d.id: d for d in definitions}
        self._allow_labels()
        self._managed: dict[str, ManagedStrategy] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._closed = asyncio.Event()
        self._changed = asyncio.Event()
        self.started = asyncio.Event()
        self.captures = CaptureStore(settings.capture, time.time_ns)  # capture files are named by wall-clock time
        # Every strategy's timers: driven here on the wall clock when settings.live_timers, else by
        # whoever runs simulated time (a replay, a backtest) through next_due()/due(now_ns) or fire_timers.
        self._timers_changed = asyncio.Event()
        self.timers = TimerBook(settings.timer_limit, on_sooner=self._timers_changed.set)
        self._lockstep: Lockstep | None = None

    def use_lockstep(self, lockstep: Lockstep) -> None:
        """A backtest: ``lockstep`` decides every batch and hears every result (host.supervisor.lockstep).

        Called before ``run``. The driver becomes the strategies' listener (it hands their signals to
        the execution engine in event order) and takes what ``deliver`` is given.
        """
        self._lockstep = lockstep
        self.listener = lockstep

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Serve until ``close``; every runner is ended on the way out."""
        await self.link.start()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for definition in self._definitions.values():
                    self._start(definition)
                self.started.set()
                self.notify()
                if self.settings.cpu_share > 0:
                    group.create_task(self._sample_cpu(), name="cpu-sampler")
                if self.settings.live_timers:
                    group.create_task(self._drive_timers(), name="timers")
                await self._closed.wait()
                for managed in self._managed.values():
                    managed.close()
        finally:
            self._group = None
            await self.link.stop()

    def close(self) -> None:
        self._closed.set()
        self._timers_changed.set()

    async def _drive_timers(self) -> None:
        """Live: sleep until the next timer is due on the wall clock (or the schedule changes), fire, repeat."""
        while not self._closed.is_set():
            self._timers_changed.clear()
            self.fire_timers(self.wall.time_ns())
            due = self.timers.next_due()
            delay = None if due is None else max(0.0, (due - self.wall.time_ns()) / 1e9)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._timers_changed.wait()

    def fire_timers(self, now_ns: int, advance: Callable[[int], None] | None = None) -> int:
        """Deliver every timer due at ``now_ns`` to its strategy, in due order; how many fired.

        Live (``settings.live_timers``) a repeating timer the host fell behind on fires once, its missed
        periods counted; in simulated time (a replay) every period on the way fires (``TimerBook.step``).
        ``advance`` is called with each firing's due time before it is delivered (a replay moves its
        clock there). A timer of a strategy not running now is dropped with the firing: its next
        runner schedules its own.
        """
        live = self.settings.live_timers
        fired = self.timers.due(now_ns) if live else list(self.timers.step(now_ns))
        for owner, name, periods in self.timers.last_skipped if live and fired else ():
            log.warning("timer_periods_skipped", strategy=owner, timer=name, skipped=periods)
        for owner, timer in fired:
            managed = self._managed.get(owner)
            if managed is None or managed.state is not StrategyState.RUNNING:
                self.timers.drop(owner)
                continue
            if advance is not None:
                advance(timer.timestamp_ns)
            item = wire.encode_event_item(timer, target=owner)
            if self._lockstep is not None:
                self._lockstep.deliver(owner, timer, item)
            else:
                managed.offer_reliable(item)
        return len(fired)

    async def _sample_cpu(self, read: Callable[[int], float | None] = cpu_seconds) -> None:
        """Every interval, one /proc read per serving runner, until closed."""
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.cpu_sample_interval_s):
                    await self._closed.wait()
            for managed in list(self._managed.values()):
                managed.sample_cpu(read)

    def _start(self, definition: StrategyDefinition) -> ManagedStrategy:
        assert self._group is not None, "strategies start inside run()"
        meter = self.metrics.for_strategy(definition.id)
        managed = ManagedStrategy(
            definition, self.settings, self.link, CircuitBreaker(self.breaker_policy, self.clock),
            self.listener, meter, self.state_store, notify=self.notify, clock=self.clock,
            capture=StrategyCapture(self.captures, self.clock, meter.capture_written), timers=self.timers,
            lockstep=self._lockstep,
        )  # fmt: skip
        self._managed[definition.id] = managed
        self.router.set(definition.id, Subscription(symbols=definition.symbols))
        task = self._group.create_task(managed.run(), name=f"strategy:{definition.id}")
        self._tasks[definition.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(definition.id, None))
        return managed

    async def _stop(self, strategy_id: str) -> None:
        managed = self._managed.pop(strategy_id)
        self.router.remove(strategy_id)
        self.listener.strategy_down(strategy_id, "removed")
        managed.close()
        task = self._tasks.get(strategy_id)
        if task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.stop_grace_s + 5):
                    await asyncio.shield(task)

    def _allow_labels(self) -> None:
        """Metric labels follow the configuration: its strategy ids and symbols, nothing a runner names."""
        definitions = self._definitions.values()
        self.metrics.allow_strategies(self._definitions, {s for d in definitions for s in d.symbols})

    def notify(self) -> None:
        """Something a waiter of ``until`` may care about changed (a state, a queue, a close)."""
        self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, re-checked on every ``notify`` (bound it with asyncio.timeout)."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    # ---------------------------------------------------------------- traffic (hot path)

    def publish(self, event: MarketEvent) -> int:
        """Offer one market event to every strategy that wants it; return how many took it."""
        targets = self.router.targets(event.symbol, event.kind)
        if not targets:
            return 0
        item = wire.encode_event_item(event)
        key = (event.symbol, event.kind)
        managed = self._managed
        for strategy_id in targets:
            managed[strategy_id].offer_market(key, item)
        return len(targets)

    def deliver(self, strategy_id: str, event: Fill | Position | Timer | OrderUpdate) -> None:
        """A fill, position, timer or order update for one strategy: queued until its runner has answered it.

        Reliable, in the order given: never conflated or dropped, and carried over to the
        strategy's next runner if this one goes before answering it.
        """
        managed = self._managed.get(strategy_id)
        if managed is None:
            raise UnknownStrategy(strategy_id)
        item = wire.encode_event_item(event, target=strategy_id)
        if self._lockstep is not None:
            self._lockstep.deliver(strategy_id, event, item)
        else:
            managed.offer_reliable(item)

    def wake(self, strategy_id: str) -> None:
        """The lockstep driver has a batch for ``strategy_id``."""
        managed = self._managed.get(strategy_id)
        if managed is not None:
            managed.wake()

    # ---------------------------------------------------------------- operator

    def _get(self, strategy_id: str) -> ManagedStrategy:
        managed = self._managed.get(strategy_id)
        if managed is None:
            raise UnknownStrategy(strategy_id)
        return managed

    def pause(self, strategy_id: str) -> None:
        self._get(strategy_id).pause()
        self.listener.strategy_down(strategy_id, "paused by operator")
        log.info("strategy_paused", strategy=strategy_id)

    def resume(self, strategy_id: str) -> None:
        self._get(strategy_id).resume()

    def restart(self, strategy_id: str) -> None:
        self._get(strategy_id).restart()

    def over_quota(self, strategy_id: str, message: str) -> None:
        """An order of ``strategy_id`` was refused by its own order-rate quota (execution engine)."""
        managed = self._managed.get(strategy_id)
        if managed is not None:
            managed.over_quota(message)

    def status(self) -> list[StrategyStatus]:
        return [managed.status() for managed in self._managed.values()]

    def capture_records(self) -> list[CaptureRecord]:
        """Crash captures written (newest first; see host.supervisor.capture)."""
        return self.captures.records()

    def capture_memory(self) -> int:
        """Bytes the strategies' capture rings hold (an event shared by several rings counted in each)."""
        return sum(m.capture_memory() for m in self._managed.values())

    def states(self) -> dict[str, StrategyState]:
        """Each strategy's state (cheap: what a backtest's driver looks at every round)."""
        return {strategy_id: managed.state for strategy_id, managed in self._managed.items()}

    def restarts(self) -> dict[str, int]:
        return {strategy_id: managed.stats.restarts for strategy_id, managed in self._managed.items()}

    def strategy(self, strategy_id: str) -> StrategyStatus:
        return self._get(strategy_id).status()

    def backlog(self) -> int:
        """The longest outbox among running strategies (what a replay paces itself by)."""
        return max((len(m.outbox) for m in self._managed.values() if m.state is StrategyState.RUNNING), default=0)

    def quiescent(self) -> bool:
        """Every running strategy has answered everything queued for it."""
        return all(m.quiescent for m in self._managed.values())

    def knows(self, strategy_id: str) -> bool:
        """Whether ``strategy_id`` is a strategy this supervisor runs (configured now)."""
        return strategy_id in self._managed

    def definitions(self) -> list[StrategyDefinition]:
        return list(self._definitions.values())

    def ready(self) -> bool:
        """Every strategy that is meant to run has a Ready runner."""
        return not self.not_ready()

    def not_ready(self) -> list[str]:
        """Why not ``ready``, one short sentence per cause; empty when ready.

        A strategy paused by an operator or held open by its breaker is not meant to run until
        someone acts, so it is no reason: failing readiness for it would take the healthy ones out
        of service too. It shows in status and in the breaker_state metric instead.
        """
        reasons = [] if self.started.is_set() else ["strategies not started yet"]
        reasons.extend(
            f"strategy {m.id!r} {_WAITING.get(m.state, 'is ' + m.state.value)}"
            for m in self._managed.values()
            if m.state not in _HELD
        )
        return reasons

    # ---------------------------------------------------------------- change

    async def reload_plugin(self, plugin: str) -> ReloadOutcome:
        """New code on disk: swap each of the package's strategies to a new runner."""
        affected = [m for m in self._managed.values() if m.definition.plugin == plugin]
        results = await asyncio.gather(*(m.prepare_swap(m.definition) for m in affected))
        outcome = ReloadOutcome(plugin, {m.id: r for m, r in zip(affected, results, strict=True)})
        log.info("plugin_reload", plugin=plugin, ok=outcome.ok, results=dict(outcome.results))
        return outcome

    async def set_definitions(self, definitions: Iterable[StrategyDefinition]) -> dict[str, str]:
        """Apply a new strategy list: start added ones, stop removed ones, swap changed ones.

        Returns why each changed strategy that could not move to its new definition did not
        (it keeps serving on the old one); empty when all went through.
        """
        wanted = {d.id: d for d in definitions}
        for strategy_id in [sid for sid in self._managed if sid not in wanted]:
            await self._stop(strategy_id)
        changed: dict[str, Awaitable[str | None]] = {}
        for strategy_id, definition in wanted.items():
            current = self._managed.get(strategy_id)
            if current is None:
                self._start(definition)
            elif current.definition != definition:
                self.router.set(strategy_id, Subscription(symbols=definition.symbols))
                changed[strategy_id] = current.prepare_swap(definition)
        self._definitions = wanted
        self._allow_labels()
        results = await asyncio.gather(*changed.values())
        return {sid: reason for sid, reason in zip(changed, results, strict=True) if reason is not None}

    async def plugin_removed(self, plugin: str) -> None:
        """A package was deleted from disk: stop its strategies (they stay in the definitions)."""
        for strategy_id in [sid for sid, m in self._managed.items() if m.definition.plugin == plugin]:
            await self._stop(strategy_id)

    async def plugin_added(self, plugin: str) -> None:
        """A package appeared on disk: start the configured strategies that use it.

        One already managed but held open (it failed to boot while its package was missing)
        is resumed; one paused by an operator stays paused.
        """
        for definition in self._definitions.values():
            if definition.plugin != plugin:
                continue
            managed = self._managed.get(definition.id)
            if managed is None:
                self._start(definition)
            elif managed.state is StrategyState.OPEN:
                log.info("strategy_resuming", strategy=definition.id, plugin=plugin, reason="package appeared")
                managed.resume()

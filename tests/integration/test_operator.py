"""Operator actions and the supervisor's recovery promises, against real runners.

Each test runs a real Supervisor over a real RunnerLink socket with scripted runners from
tests/runners (``scripted``; its ``mode`` picks the behaviour) and a fast breaker policy. A
``Journal`` listener records every call the supervisor makes on it, in order, with a monotonic
time, the pid of the runner serving the strategy at that moment and, for ``strategy_down``, the
breaker's status at that moment: the ordering promises (cancel-on-disconnect before anything
else happens) are checked on that record.

The feed publishes numbered ticks and skips every sequence that is a multiple of ``TRIGGER``;
only ``Host.trigger`` publishes one, so a strategy in mode ``exit_every:TRIGGER`` (or
``segv_every``) crashes exactly when a test says, and its replacement serves the ticks after.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, StrategyState, StrategyStatus, SupervisionSettings
from host.supervisor.policy import BreakerPolicy, BreakerState, BreakerStatus
from host.supervisor.process import RunnerLimits
from host.supervisor.supervisor import Supervisor, UnknownStrategy
from sdk.events import Cancel, Fill, Position, Signal
from tests.helpers import RUNNERS, pid_alive, runner_pids, tick_events, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TRIGGER = 1000
CRASH = f"exit_every:{TRIGGER}"
POLICY = BreakerPolicy(consecutive_failures=5, backoff_initial_s=0.05, backoff_max_s=0.2, jitter=0.0, restart_budget=2)
SETTINGS = SupervisionSettings(
    plugins_dir=RUNNERS, transport_allowance_s=0.3, processing_timeout_s=0.005, handshake_timeout_s=3.0,
    stop_grace_s=1.0, heartbeat_interval_s=1.0, limits=RunnerLimits(memory_mb=768),
)  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One call the supervisor made on the listener."""

    kind: str  # "signals" or "down"
    strategy: str
    at: float  # time.monotonic() at the call
    pid: int | None  # the runner serving the strategy at the call
    signals: tuple[Signal, ...] = ()
    reason: str = ""
    state: StrategyState | None = None
    breaker: BreakerStatus | None = None


class Journal:
    """A StrategyListener that records every call in order, with the strategy's status at that moment."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.supervisor: Supervisor | None = None

    def _status(self, strategy_id: str) -> StrategyStatus | None:
        assert self.supervisor is not None
        try:
            return self.supervisor.strategy(strategy_id)
        except UnknownStrategy:
            return None

    def signals(self, strategy_id: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        status = self._status(strategy_id)
        pid = status.pid if status else None
        self.entries.append(Entry("signals", strategy_id, time.monotonic(), pid, tuple(signals)))

    def strategy_down(self, strategy_id: str, reason: str) -> None:
        status = self._status(strategy_id)
        if status is None:
            self.entries.append(Entry("down", strategy_id, time.monotonic(), None, reason=reason))
            return
        entry = Entry("down", strategy_id, time.monotonic(), status.pid, (), reason, status.state, status.breaker)
        self.entries.append(entry)

    def strategy_up(self, strategy_id: str) -> None:
        pass

    def positions(self, strategy_id: str) -> list[Position]:
        return []

    def answers(self, strategy_id: str, pid: int | None = None) -> list[Entry]:
        return [
            e for e in self.entries
            if e.kind == "signals" and e.strategy == strategy_id and (pid is None or e.pid == pid)
        ]  # fmt: skip

    def downs(self, strategy_id: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == "down" and e.strategy == strategy_id]

    def signals_of(self, strategy_id: str) -> list[Signal]:
        return [s for e in self.answers(strategy_id) for s in e.signals]

    def fill_echoes(self, strategy_id: str, fill_id: str) -> list[Entry]:
        return [e for e in self.answers(strategy_id) if any(s.metadata.get("fill") == fill_id for s in e.signals)]


class Host:
    """A running Supervisor, its journal and a tick feed."""

    def __init__(self, supervisor: Supervisor, journal: Journal, task: asyncio.Task[None]) -> None:
        self.supervisor = supervisor
        self.journal = journal
        self.task = task
        self.seq = 0

    def status(self, strategy_id: str) -> StrategyStatus:
        return self.supervisor.strategy(strategy_id)

    def pid(self, strategy_id: str) -> int:
        pid = self.status(strategy_id).pid
        assert pid is not None, self.status(strategy_id)
        return pid

    def publish(self) -> None:
        """The next tick; never one whose sequence is a multiple of TRIGGER."""
        self.seq += 1
        if self.seq % TRIGGER == 0:
            self.seq += 1
        self.supervisor.publish(tick_events(1, start=self.seq)[0])  # type: ignore[arg-type]

    def trigger(self) -> None:
        """A tick whose sequence is the next multiple of TRIGGER (crashes ``exit_every:TRIGGER``)."""
        self.seq = (self.seq // TRIGGER + 1) * TRIGGER
        self.supervisor.publish(tick_events(1, start=self.seq)[0])  # type: ignore[arg-type]

    async def feed_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Publish a tick per poll until ``predicate`` holds."""

        def step() -> bool:
            assert not self.task.done(), "the supervisor stopped"
            self.publish()
            return predicate()

        await wait_until(step, timeout, interval=0.01)

    async def answered(self, strategy_id: str, more: int = 10, pid: int | None = None) -> None:
        """Feed until ``strategy_id`` (its runner ``pid``, if given) has answered ``more`` more batches."""
        target = len(self.journal.answers(strategy_id, pid)) + more
        await self.feed_until(lambda: len(self.journal.answers(strategy_id, pid)) >= target)

    async def replaced(self, strategy_id: str, old_pid: int) -> int:
        """Wait for a new runner serving ``strategy_id``; its pid."""
        await wait_until(lambda: self.status(strategy_id).state is StrategyState.RUNNING
                         and self.status(strategy_id).pid not in (None, old_pid), 10)  # fmt: skip
        return self.pid(strategy_id)


Start = Callable[..., Awaitable[Host]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start a Supervisor of scripted strategies ``{id: params}``; every one of them is closed after the test."""
    hosts: list[Host] = []

    async def start_host(
        strategies: Mapping[str, Mapping[str, Any]], *, running: Iterable[str] | None = None,
        policy: BreakerPolicy = POLICY,
    ) -> Host:  # fmt: skip
        definitions = [StrategyDefinition(sid, "scripted", "scripted", dict(p)) for sid, p in strategies.items()]
        journal = Journal()
        supervisor = Supervisor(SETTINGS, definitions, journal, metrics=EngineMetrics(), breaker_policy=policy)
        journal.supervisor = supervisor
        host = Host(supervisor, journal, asyncio.create_task(supervisor.run()))
        hosts.append(host)
        await asyncio.wait_for(supervisor.started.wait(), 10)
        wanted = list(strategies if running is None else running)
        await wait_until(lambda: all(host.status(s).state is StrategyState.RUNNING for s in wanted), 10)
        return host

    yield start_host
    for host in hosts:
        host.supervisor.close()
        await asyncio.wait_for(host.task, 20)
        assert runner_pids(host.supervisor.link.socket_path) == []


def _fill(fill_id: str) -> Fill:
    return Fill(
        fill_id=fill_id,
        order_id="o1",
        symbol="BTCUSDT",
        side="buy",
        price=100.0,
        quantity=1.0,
        timestamp_ns=1_700_000_000_000_000_000,
    )  # type: ignore[arg-type]


class TestPause:
    async def test_pause_ends_the_runner_and_holds_the_breaker_open(self, start: Start) -> None:
        """Pause ends the strategy's runner; the strategy is PAUSED and its breaker OPEN, paused by the operator."""
        host = await start({"a": {}, "b": {}})
        pid = host.pid("a")
        host.supervisor.pause("a")
        await wait_until(lambda: not pid_alive(pid) and host.status("a").pid is None, 5)
        status = host.status("a")
        assert status.state is StrategyState.PAUSED
        assert status.breaker.state is BreakerState.OPEN and status.breaker.paused_by_operator, status.breaker

    async def test_pause_reports_strategy_down(self, start: Start) -> None:
        """The listener hears strategy_down for the paused strategy, with a reason that says it was paused."""
        host = await start({"a": {}, "b": {}})
        host.supervisor.pause("a")
        assert [e.reason for e in host.journal.downs("a")] == ["paused by operator"]
        assert host.journal.downs("b") == []

    async def test_paused_strategy_gets_no_events_while_others_serve(self, start: Start) -> None:
        """While paused a strategy is sent nothing; the other strategy keeps answering."""
        host = await start({"a": {}, "b": {}})
        await host.answered("a", 3)
        host.supervisor.pause("a")
        await wait_until(lambda: host.status("a").pid is None, 5)
        paused = host.status("a")
        answers = len(host.journal.answers("a"))
        await host.answered("b", 30)
        assert host.status("a").events_sent == paused.events_sent
        assert host.status("a").outbox == paused.outbox  # nothing is even queued for it
        assert len(host.journal.answers("a")) == answers
        assert host.status("b").state is StrategyState.RUNNING and host.status("b").restarts == 0

    async def test_no_signals_after_pause_reported_down(self, start: Start) -> None:
        """Once strategy_down said "paused", no signal of that strategy reaches the listener."""
        host = await start({"a": {"mode": "slow:150"}})
        host.publish()
        await wait_until(lambda: host.status("a").outbox == 0 and not host.supervisor.quiescent(), 5)
        host.supervisor.pause("a")
        await wait_until(lambda: host.status("a").pid is None, 5)
        kinds = [e.kind for e in host.journal.entries if e.strategy == "a"]
        assert kinds[-1] == "down", kinds

    async def test_pause_while_starting_takes_effect(self, start: Start) -> None:
        """A pause while the runner is starting ends that runner once it is up; the strategy stays PAUSED."""
        host = await start({"a": {"mode": "slow_start:1000"}}, running=())
        await wait_until(lambda: host.status("a").pid is not None, 5)
        assert host.status("a").state is StrategyState.STARTING
        host.supervisor.pause("a")
        await wait_until(lambda: host.status("a").state is StrategyState.PAUSED and host.status("a").pid is None, 5)


class TestResume:
    async def test_resume_after_pause_starts_a_new_runner(self, start: Start) -> None:
        """Resume after a pause starts a new runner (new pid) that becomes RUNNING and answers."""
        host = await start({"a": {}})
        old = host.pid("a")
        host.supervisor.pause("a")
        await wait_until(lambda: host.status("a").pid is None and host.status("a").state is StrategyState.PAUSED, 5)
        host.supervisor.resume("a")
        new = await host.replaced("a", old)
        await host.answered("a", 5, pid=new)
        assert host.status("a").breaker.state is BreakerState.CLOSED

    async def test_resume_of_a_boot_error_fails_once_and_stays_open(self, start: Start) -> None:
        """A strategy held open by a boot error is tried once more on resume and goes back to OPEN, no restart loop."""
        host = await start({"broken": {"no_such_param": 1}, "ok": {}}, running=["ok"])
        await wait_until(lambda: host.status("broken").state is StrategyState.OPEN, 10)
        assert host.status("broken").breaker.failures_by_kind["boot"] == 1
        assert "no_such_param" in host.status("broken").breaker.last_reason
        host.supervisor.resume("broken")
        await wait_until(lambda: host.status("broken").breaker.failures_by_kind["boot"] == 2, 10)
        await wait_until(lambda: host.status("broken").state is StrategyState.OPEN, 5)
        await host.answered("ok", 30)  # time passes: a loop would have tried again by now
        status = host.status("broken")
        assert status.state is StrategyState.OPEN and status.breaker.state is BreakerState.OPEN, status
        assert status.breaker.failures_by_kind["boot"] == 2
        assert status.restarts == 0 and status.breaker.total_restarts == 0

    async def test_resume_right_after_pause_starts_a_new_runner(self, start: Start) -> None:
        """Resume called while the paused runner is still being ended still brings the strategy back."""
        host = await start({"a": {}})
        old = host.pid("a")
        host.supervisor.pause("a")
        host.supervisor.resume("a")
        await host.replaced("a", old)


class TestOperatorRestart:
    async def test_restart_replaces_the_runner(self, start: Start) -> None:
        """Restart ends the runner and starts a new one (new pid) that becomes RUNNING and answers."""
        host = await start({"a": {}})
        await host.answered("a", 3)
        old = host.pid("a")
        host.supervisor.restart("a")
        new = await host.replaced("a", old)
        await host.answered("a", 5, pid=new)
        assert not pid_alive(old)

    async def test_restart_does_not_charge_the_breaker(self, start: Start) -> None:
        """An operator restart is not a failure: breaker counters, budget and the restarts count are unchanged."""
        host = await start({"a": {}})
        await host.answered("a", 3)
        before, old = host.status("a"), host.pid("a")
        host.supervisor.restart("a")
        new = await host.replaced("a", old)
        await host.answered("a", 5, pid=new)
        after = host.status("a")
        assert after.restarts == before.restarts == 0
        assert dict(after.breaker.failures_by_kind) == dict(before.breaker.failures_by_kind)
        assert after.breaker.total_restarts == before.breaker.total_restarts == 0
        assert after.breaker.restarts_in_budget == 0 and after.breaker.state is BreakerState.CLOSED

    async def test_restart_reports_strategy_down_before_the_new_runner_answers(self, start: Start) -> None:
        """strategy_down("restarted by operator") comes first, while the old runner is still the one serving."""
        host = await start({"a": {}})
        old = host.pid("a")
        host.supervisor.restart("a")
        new = await host.replaced("a", old)
        await host.answered("a", 3, pid=new)
        (down,) = host.journal.downs("a")
        assert down.reason == "restarted by operator" and down.pid == old
        assert down.at < host.journal.answers("a", new)[0].at

    async def test_restart_while_paused_leaves_no_pending_restart(self, start: Start) -> None:
        """A restart asked while paused does not end the runner that a later resume starts."""
        host = await start({"a": {}})
        old = host.pid("a")
        host.supervisor.pause("a")
        await wait_until(lambda: host.status("a").pid is None, 5)
        host.supervisor.restart("a")
        host.supervisor.resume("a")
        new = await host.replaced("a", old)
        await host.answered("a", 10)
        assert host.pid("a") == new
        assert [e.reason for e in host.journal.downs("a")] == ["paused by operator"]


class TestCancelOnDisconnect:
    @pytest.mark.parametrize("mode", [CRASH, f"segv_every:{TRIGGER}"])
    async def test_strategy_down_comes_before_the_breaker_decision(self, mode: str, start: Start) -> None:
        """A crashed runner's strategy_down is heard while the breaker has not yet charged the crash."""
        host = await start({"bad": {"mode": mode}, "ok": {}})
        host.trigger()
        await wait_until(lambda: host.journal.downs("bad") != [], 5)
        (down,) = host.journal.downs("bad")
        assert down.breaker is not None and down.breaker.state is BreakerState.CLOSED, down
        assert down.breaker.failures_by_kind["crash"] == 0 and down.breaker.total_restarts == 0, down
        assert down.state is StrategyState.RUNNING, down

    @pytest.mark.parametrize("mode", [CRASH, f"segv_every:{TRIGGER}"])
    async def test_strategy_down_comes_before_the_replacement_answers(self, mode: str, start: Start) -> None:
        """The crash is reported down before the replacement runner's first answer; the crash is charged once."""
        host = await start({"bad": {"mode": mode}, "ok": {}})
        old = host.pid("bad")
        host.trigger()
        new = await host.replaced("bad", old)
        await host.answered("bad", 3, pid=new)
        (down,) = host.journal.downs("bad")
        assert down.pid == old
        assert down.at < host.journal.answers("bad", new)[0].at
        status = host.status("bad")
        assert status.restarts == 1 and status.breaker.failures_by_kind["crash"] == 1, status


class TestIdentity:
    async def test_rewriting_its_slot_id_at_start_changes_nothing(self, start: Start) -> None:
        """A strategy that rewrites its slot's id is still heard as itself: the runner routes by the host's ids."""
        host = await start({"victim": {}, "bad": {"mode": "impersonate_start:victim"}})
        await host.answered("bad", 10)
        await host.answered("victim", 10)
        victim = host.journal.signals_of("victim")
        assert victim and all(set(s.metadata) == {"seen"} for s in victim), victim[:3]
        assert any("impersonator" in s.metadata for s in host.journal.signals_of("bad"))
        assert host.status("bad").impersonations == 0 and host.status("victim").errors == 0

    async def test_rewriting_its_slot_id_mid_batch_changes_nothing(self, start: Start) -> None:
        """Rewriting the slot id on a tick neither crashes the runner nor reaches the victim."""
        host = await start({"victim": {}, "bad": {"mode": "impersonate:victim"}})
        await host.answered("bad", 10)
        await host.answered("victim", 10)
        assert all(set(s.metadata) == {"seen"} for s in host.journal.signals_of("victim"))
        assert host.status("bad").restarts == 0 and host.status("victim").errors == 0

    async def test_forged_outputs_are_dropped_and_charged(self, start: Start) -> None:
        """A runner whose outputs claim another strategy (its dispatcher patched) is not heard as either.

        The host binds identity to the connection: every such output is dropped, counted and charged to
        the impersonator's breaker, which ends up open; the victim serves on untouched.
        """
        host = await start({"victim": {}, "bad": {"mode": "forge_output:victim"}})
        await host.feed_until(lambda: host.status("bad").breaker.state.value == "open")
        await host.answered("victim", 10)
        victim = host.journal.signals_of("victim")
        assert victim and all(set(s.metadata) == {"seen"} for s in victim), victim[:3]
        assert host.journal.answers("bad") == []
        assert host.status("bad").impersonations >= 5
        assert host.status("victim").errors == 0 and host.status("victim").restarts == 0


class TestUnknownStrategy:
    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.pause("nope"),
            lambda s: s.resume("nope"),
            lambda s: s.restart("nope"),
            lambda s: s.deliver("nope", _fill("f1")),
            lambda s: s.strategy("nope"),
        ],
        ids=["pause", "resume", "restart", "deliver", "strategy"],
    )
    async def test_unknown_id_raises_naming_it(self, call: Callable[[Supervisor], object], start: Start) -> None:
        """Operator calls and deliver for an id that is not configured raise UnknownStrategy naming that id."""
        host = await start({"a": {}})
        with pytest.raises(UnknownStrategy, match="'nope'") as raised:
            call(host.supervisor)
        assert raised.value.strategy_id == "nope"
        assert host.journal.downs("a") == []


class TestReliableDelivery:
    @pytest.mark.parametrize("when", ["behind_the_crash", "ahead_of_the_crash", "while_down"])
    async def test_fill_reaches_the_replacement_exactly_once(self, when: str, start: Start) -> None:
        """A fill delivered around a crash is answered once, by the replacement runner.

        ``behind_the_crash``: fill queued in the same batch after the fatal tick, never processed.
        ``ahead_of_the_crash``: processed by the dying runner, whose answer is lost. ``while_down``:
        delivered after the host saw the crash, before the replacement is up.
        """
        host = await start({"bad": {"mode": CRASH}})
        old = host.pid("bad")
        if when == "ahead_of_the_crash":
            host.supervisor.deliver("bad", _fill("f1"))
        host.trigger()
        if when == "behind_the_crash":
            host.supervisor.deliver("bad", _fill("f1"))
        if when == "while_down":
            await wait_until(lambda: host.journal.downs("bad") != [], 5)
            host.supervisor.deliver("bad", _fill("f1"))
        new = await host.replaced("bad", old)
        await host.feed_until(lambda: host.journal.fill_echoes("bad", "f1") != [])
        await host.answered("bad", 10, pid=new)
        echoes = host.journal.fill_echoes("bad", "f1")
        assert [e.pid for e in echoes] == [new]
        assert host.status("bad").restarts == 1

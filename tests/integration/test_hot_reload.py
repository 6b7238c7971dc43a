"""Hot reload end to end: edits on disk reach running strategies without a host restart.

Each case runs a real Supervisor with real runners, a real PluginWatcher over a temp plugins
dir and a HotReloader between them. Two strategies run: ``edited`` from the package the test
changes and ``steady`` from another package, which must keep answering through everything.
Both come from the test plugin ``operator_stack.COUNTER``: it answers every tick with a signal
whose metadata says which code answered (``version``, a module constant), with which parameters
(``label``), which tick it was (``seq``) and how many ticks that strategy has seen (``seen``,
carried from the old runner to the new one through on_save/on_load).

A feed publishes numbered ticks of one symbol at a steady 200/s for the whole test. The
outbox only conflates once ``capacity`` market items wait (a runner that lags); the capacity
here is far above what piles up while a swap is in progress, so every published tick must be
answered exactly once, by the old runner or the new one, and nothing may be conflated.

Save -> serving times (file written -> first signal from the new code; the watcher's 0.5 s
quiet period included) are collected per case and their median printed at the end (pytest -s).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from host.metrics import EngineMetrics
from host.reconfigure import ConfigOutcome
from host.supervisor.managed import StrategyDefinition, StrategyState, SupervisionSettings
from host.supervisor.process import RunnerLimits
from host.supervisor.reload import HotReloader
from host.supervisor.supervisor import ReloadOutcome, Supervisor
from host.supervisor.watcher import Change, ConfigChange, PackageChange, PluginWatcher
from sdk.events import Cancel, Position, Signal, Tick
from tests.helpers import ManualClock, pid_alive, runner_pids, wait_until
from tests.integration.operator_stack import counter_source, write_counter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

RATE = 200  # ticks per second


@dataclass(frozen=True)
class Answer:
    at: float
    version: str
    label: str
    seq: int
    seen: int


@dataclass
class Listener:
    """Records every answer per strategy, with its arrival time."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    down: list[tuple[str, str]] = field(default_factory=list)

    def signals(self, strategy_id: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        now = time.monotonic()
        answers = self.answers.setdefault(strategy_id, [])
        for s in signals:
            meta = s.metadata
            answers.append(Answer(now, meta["version"], meta["label"], int(meta["seq"]), int(meta["seen"])))

    def strategy_down(self, strategy_id: str, reason: str) -> None:
        self.down.append((strategy_id, reason))

    def strategy_up(self, strategy_id: str) -> None:
        pass

    def positions(self, strategy_id: str) -> list[Position]:
        return []

    def of(self, strategy_id: str, version: str | None = None, label: str | None = None) -> list[Answer]:
        return [
            a
            for a in self.answers.get(strategy_id, [])
            if (version is None or a.version == version) and (label is None or a.label == label)
        ]

    def first_at(self, strategy_id: str, version: str | None = None, label: str | None = None) -> float | None:
        answers = self.of(strategy_id, version, label)
        return answers[0].at if answers else None

    def max_gap(self, strategy_id: str, since: float) -> float:
        times = [a.at for a in self.answers.get(strategy_id, []) if a.at >= since]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


class Engine:
    """A supervisor, a watcher and a reloader over ``root/plugins``, and a feed of numbered ticks."""

    def __init__(self, root: Path, definitions: list[dict[str, Any]], data_lane: str = "socket") -> None:
        self.root = root
        self.plugins = root / "plugins"
        self.plugins.mkdir()
        self.config = root / "strategies.json"
        self.write_config(definitions)
        self.listener = Listener()
        settings = SupervisionSettings(
            plugins_dir=self.plugins, transport_allowance_s=0.3, processing_timeout_s=0.005,
            handshake_timeout_s=5.0, stop_grace_s=1.0, heartbeat_interval_s=1.0, outbox_capacity=100_000,
            limits=RunnerLimits(memory_mb=768), data_lane=data_lane,
        )  # fmt: skip
        self.settings = settings
        self.supervisor = Supervisor(settings, self.load(), self.listener, metrics=EngineMetrics())
        self.watcher = PluginWatcher(self.plugins, config_path=self.config)
        self.reloader = HotReloader(self.supervisor, self.watcher, reconfigurer=JsonDefinitions(self))
        self.published: list[int] = []
        self._feeding = False
        self._feed_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def write_config(self, definitions: list[dict[str, Any]]) -> None:
        self.config.write_text(json.dumps(definitions))

    def load(self) -> list[StrategyDefinition]:
        raw = json.loads(self.config.read_text())
        return [StrategyDefinition(d["id"], d["plugin"], d["name"], d.get("params", {})) for d in raw]

    async def start(self, running: tuple[str, ...]) -> None:
        self._tasks.append(asyncio.create_task(self.supervisor.run()))
        await self.supervisor.started.wait()
        await self.watcher.start()
        self._tasks.append(asyncio.create_task(self.reloader.run()))
        await wait_until(lambda: all(self.state(s) is StrategyState.RUNNING for s in running), 10)
        self._feeding = True
        self._feed_task = asyncio.create_task(self._feed())
        self._tasks.append(self._feed_task)

    async def _feed(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in itertools.count(1):
            if not self._feeding:
                return
            self.supervisor.publish(
                Tick(
                    symbol="BTCUSDT",
                    timestamp_ns=1_700_000_000_000_000_000 + n,
                    bid_price=100.0,
                    bid_size=1.0,
                    ask_price=100.02,
                    ask_size=1.0,
                    last_price=None,
                    sequence=n,
                )
            )
            self.published.append(n)
            await asyncio.sleep(max(0.0, started + n / RATE - loop.time()))  # pacing, not a wait for a result

    async def stop_feed(self) -> None:
        self._feeding = False
        feed = self._feed_task
        await wait_until(lambda: feed is None or feed.done(), 2)

    def state(self, strategy_id: str) -> StrategyState | None:
        return next((s.state for s in self.supervisor.status() if s.id == strategy_id), None)

    def pid(self, strategy_id: str) -> int | None:
        return self.supervisor.strategy(strategy_id).pid

    async def answered_after(self, strategy_id: str, version: str | None = None, label: str | None = None) -> None:
        """Wait until ``strategy_id`` answers a tick published from now on (with that version / label)."""
        after = len(self.published)
        await wait_until(lambda: any(a.seq > after for a in self.listener.of(strategy_id, version, label)), 5)

    async def close(self) -> None:
        self._feeding = False
        await self.watcher.stop()
        self.supervisor.close()
        async with asyncio.timeout(20):
            await asyncio.gather(*self._tasks)
        survivors = runner_pids(self.supervisor.link.socket_path)
        assert survivors == [], f"runner processes outlived the supervisor: {survivors}"


class JsonDefinitions:
    """The test's config target: the JSON list of definitions, applied with ``set_definitions``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def apply(self, path: Path) -> ConfigOutcome:
        refused = await self.engine.supervisor.set_definitions(self.engine.load())
        return ConfigOutcome(("strategies",), (), refused)


def definition(sid: str, plugin: str, **params: Any) -> dict[str, Any]:
    return {"id": sid, "plugin": plugin, "name": "counter", "params": params}


@dataclass
class Timings:
    """Save -> serving per reload case; the median is printed when the module is done."""

    cases: dict[str, float] = field(default_factory=dict)
    change_to_serving: list[float] = field(default_factory=list)

    def record(self, case: str, saved_at: float, serving_at: float | None, engine: Engine) -> float:
        assert serving_at is not None
        self.cases[case] = serving_at - saved_at
        self.change_to_serving.extend(engine.reloader.reload_times_s)
        print(f"\n{case}: save -> new code serving {self.cases[case] * 1000:.0f} ms")
        return self.cases[case]


@pytest.fixture(scope="module")
def timings() -> Iterator[Timings]:
    found = Timings()
    yield found
    if found.cases:
        median = statistics.median(found.cases.values())
        lines = [f"  {case}: {seconds * 1000:.0f} ms" for case, seconds in found.cases.items()]
        swap = ""
        if found.change_to_serving:
            swap = f"; change yielded -> serving median {statistics.median(found.change_to_serving) * 1000:.0f} ms"
        print("\nhot reload, save -> new code serving (0.5 s watcher quiet period included):")
        print("\n".join(lines))
        print(f"  median {median * 1000:.0f} ms over {len(found.cases)} reloads{swap}")


@pytest.fixture(params=["socket", "grpc"])
def data_lane(request: pytest.FixtureRequest) -> str:
    """Every reload on both paths for batches: the data lane and the gRPC stream."""
    return str(request.param)


@pytest.fixture
async def engine(tmp_path: Path, request: pytest.FixtureRequest, data_lane: str) -> AsyncIterator[Engine]:
    """By default ``edited`` (package ``counter``) and ``steady`` (package ``steady``); ticks flowing.

    Parametrize indirectly with a list of definitions to run others; strategies whose package
    is missing are not waited for.
    """
    definitions = getattr(request, "param", [definition("edited", "counter"), definition("steady", "steady")])
    engine = Engine(tmp_path, definitions, data_lane)
    write_counter(engine.plugins, "counter", "v1")
    write_counter(engine.plugins, "steady", "s1")
    present = tuple(d["id"] for d in definitions if (engine.plugins / d["plugin"]).exists())
    try:
        await engine.start(running=present)
        yield engine
    finally:
        await engine.close()


class TestHotReload:
    async def test_overlapping_reloads_of_one_strategy_swap_once(self, engine: Engine) -> None:
        """A second reload while the first is still loading is refused; one swap, no runner left behind."""
        await engine.answered_after("edited", "v1")
        old_pid = engine.pid("edited")
        first, second = await asyncio.gather(
            engine.supervisor.reload_plugin("counter"), engine.supervisor.reload_plugin("counter")
        )
        assert first.ok and second.results == {"edited": "a reload is already in progress"}
        assert engine.supervisor.strategy("edited").reloads == 1
        await wait_until(lambda: not pid_alive(old_pid or 0), 5)
        await engine.answered_after("edited", "v1")

    async def test_edit_swaps_runner_and_carries_state(self, engine: Engine, timings: Timings) -> None:
        """An edit reaches the strategy in a new runner, state carried, no tick lost or repeated, steady untouched."""
        await engine.answered_after("edited", "v1")
        old_pid, steady_pid = engine.pid("edited"), engine.pid("steady")
        started = time.monotonic()

        saved_at = time.monotonic()
        write_counter(engine.plugins, "counter", "v2")
        await wait_until(lambda: bool(engine.listener.of("edited", "v2")), 10)
        timings.record("edit", saved_at, engine.listener.first_at("edited", "v2"), engine)
        await engine.answered_after("edited", "v2")
        await engine.stop_feed()
        last = engine.published[-1]
        await wait_until(lambda: any(a.seq == last for a in engine.listener.of("edited")), 5)

        answers = engine.listener.of("edited")
        pause = (engine.listener.first_at("edited", "v2") or 0.0) - engine.listener.of("edited", "v1")[-1].at
        print(f"edit: last answer from the old runner -> first from the new {pause * 1000:.0f} ms")
        assert sorted(a.seq for a in answers) == engine.published, "a tick was lost or answered twice"
        assert [a.seen for a in answers] == list(range(1, len(answers) + 1)), "state did not carry over"
        assert [a.version for a in answers] == sorted(a.version for a in answers), "v1 answered after v2"
        status = engine.supervisor.strategy("edited")
        assert status.pid != old_pid and status.reloads == 1 and status.restarts == 0
        assert status.conflated == 0 and status.dropped == 0
        await wait_until(lambda: not pid_alive(old_pid or 0), 5)
        assert engine.reloader.reloads == 1 and engine.reloader.reload_failures == 0
        assert engine.reloader.last["counter"].ok and engine.reloader.last["counter"].kind == "changed"
        steady = engine.supervisor.strategy("steady")
        assert steady.pid == steady_pid and steady.reloads == 0 and steady.restarts == 0
        assert sorted(a.seq for a in engine.listener.of("steady")) == engine.published
        assert engine.listener.max_gap("steady", started) < engine.settings.deadline(1) + 0.3

    async def test_broken_edit_keeps_old_runner_then_fix_serves(self, engine: Engine, timings: Timings) -> None:
        """A syntax error leaves the old runner serving and names the error; the fix then reloads."""
        await engine.answered_after("edited", "v1")
        old_pid, steady_pid = engine.pid("edited"), engine.pid("steady")
        started = time.monotonic()

        with capture_logs() as logs:
            (engine.plugins / "counter" / "__init__.py").write_text(counter_source("v2") + "\ndef broken(:\n")
            await wait_until(lambda: engine.reloader.reload_failures == 1, 10)
        report = engine.reloader.last["counter"]
        assert not report.ok and "SyntaxError" in report.error, report
        [failed] = [e for e in logs if e["event"] == "plugin_reload_failed" and e.get("kind") == "changed"]
        assert failed["plugin"] == "counter" and "SyntaxError" in failed["reason"]
        await engine.answered_after("edited", "v1")
        assert engine.pid("edited") == old_pid and engine.supervisor.strategy("edited").reload_failures == 1
        assert not engine.listener.of("edited", "v2")

        saved_at = time.monotonic()
        write_counter(engine.plugins, "counter", "v3")
        await wait_until(lambda: bool(engine.listener.of("edited", "v3")), 10)
        timings.record("fix after syntax error", saved_at, engine.listener.first_at("edited", "v3"), engine)
        answers = engine.listener.of("edited")
        assert [a.seen for a in answers] == list(range(1, len(answers) + 1)), "state did not carry over"
        assert engine.reloader.reloads == 1 and engine.reloader.last["counter"].ok
        await wait_until(lambda: not pid_alive(old_pid or 0), 5)
        assert engine.pid("steady") == steady_pid
        assert engine.listener.max_gap("steady", started) < engine.settings.deadline(1) + 0.3

    async def test_deleted_package_stops_its_strategy(self, engine: Engine) -> None:
        """Deleting a package stops its strategy and runner; the other keeps serving."""
        await engine.answered_after("edited", "v1")
        old_pid, steady_pid = engine.pid("edited"), engine.pid("steady")
        started = time.monotonic()

        shutil.rmtree(engine.plugins / "counter")
        await wait_until(lambda: engine.reloader.packages_removed == 1, 10)
        assert engine.state("edited") is None
        await wait_until(lambda: not pid_alive(old_pid or 0), 5)
        assert engine.reloader.last["counter"].kind == "removed" and engine.reloader.last["counter"].ok
        assert [s.id for s in engine.supervisor.status()] == ["steady"]
        assert "edited" in [d.id for d in engine.supervisor.definitions()], "its definition stays for a comeback"
        await engine.answered_after("steady")
        assert engine.pid("steady") == steady_pid
        assert engine.listener.max_gap("steady", started) < engine.settings.deadline(1) + 0.3

    @pytest.mark.parametrize("engine", [[definition("late", "late"), definition("steady", "steady")]], indirect=True)
    async def test_package_added_later_starts_its_strategy(self, engine: Engine, timings: Timings) -> None:
        """A strategy whose package is missing at start is held open; when the package appears it starts."""
        await wait_until(lambda: engine.state("late") is StrategyState.OPEN, 10)
        held = engine.supervisor.strategy("late")
        assert "no __init__.py" in held.last_error and held.restarts == 0, "a boot error is never retried in a loop"
        steady_pid = engine.pid("steady")
        started = time.monotonic()

        staged = write_counter(engine.root / "staging", "late", "l1")
        saved_at = time.monotonic()
        os.rename(staged, engine.plugins / "late")  # appears whole, as a deploy would put it
        await wait_until(lambda: bool(engine.listener.of("late", "l1")), 10)
        timings.record("package added", saved_at, engine.listener.first_at("late", "l1"), engine)
        assert engine.state("late") is StrategyState.RUNNING
        assert engine.reloader.packages_added == 1 and engine.reloader.last["late"].ok
        assert engine.pid("steady") == steady_pid
        assert engine.listener.max_gap("steady", started) < engine.settings.deadline(1) + 0.3

    async def test_config_change_swaps_params_and_bad_config_changes_nothing(
        self, engine: Engine, timings: Timings
    ) -> None:
        """New params move the strategy to a runner built with them, state carried; a bad file changes nothing."""
        await engine.answered_after("edited", "v1", "a")
        old_pid, steady_pid = engine.pid("edited"), engine.pid("steady")

        saved_at = time.monotonic()
        engine.write_config([definition("edited", "counter", label="b"), definition("steady", "steady")])
        await wait_until(lambda: bool(engine.listener.of("edited", label="b")), 10)
        timings.record("config params", saved_at, engine.listener.first_at("edited", label="b"), engine)
        answers = engine.listener.of("edited")
        assert [a.seen for a in answers] == list(range(1, len(answers) + 1)), "state did not carry over"
        assert engine.reloader.config_reloads == 1 and engine.reloader.config_errors == 0
        new_pid = engine.pid("edited")
        assert new_pid != old_pid and engine.pid("steady") == steady_pid
        await wait_until(lambda: not pid_alive(old_pid or 0), 5)

        definitions = engine.supervisor.definitions()
        with capture_logs() as logs:
            engine.config.write_text('[{"id": "edited", ')
            await wait_until(lambda: engine.reloader.config_errors == 1, 10)
        assert engine.reloader.last_config is not None and "JSONDecodeError" in engine.reloader.last_config.error
        [failed] = [e for e in logs if e["event"] == "config_reload_failed"]
        assert failed["path"] == str(engine.config) and "JSONDecodeError" in failed["reason"]
        await engine.answered_after("edited", "v1", "b")
        assert engine.reloader.config_reloads == 1
        assert engine.supervisor.definitions() == definitions
        assert engine.pid("edited") == new_pid and engine.pid("steady") == steady_pid
        assert all(s.state is StrategyState.RUNNING for s in engine.supervisor.status())


class ListedChanges:
    """A change source that yields a fixed list, then stops."""

    def __init__(self, changes: list[Change]) -> None:
        self._changes = changes

    async def changes(self) -> AsyncIterator[Change]:
        for change in self._changes:
            yield change


class RecordingSupervisor:
    """Records each call; ``reload_plugin`` takes 0.25 s of fake time, fails for "bad", raises for "boom"."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, object]] = []

    async def reload_plugin(self, plugin: str) -> ReloadOutcome:
        self.calls.append(("reload_plugin", plugin))
        if plugin == "boom":
            raise RuntimeError("supervisor bug")
        self.clock.now += 0.25
        return ReloadOutcome(plugin, {"s1": "runner 's1#2' failed to boot: SyntaxError" if plugin == "bad" else None})

    async def plugin_added(self, plugin: str) -> None:
        self.calls.append(("plugin_added", plugin))

    async def plugin_removed(self, plugin: str) -> None:
        self.calls.append(("plugin_removed", plugin))

    async def set_definitions(self, definitions: Iterable[StrategyDefinition]) -> None:
        self.calls.append(("set_definitions", [d.id for d in definitions]))


class RecordingConfig:
    """A config target that hands ``definitions()`` to the recording supervisor (or raises from it)."""

    def __init__(self, target: RecordingSupervisor, definitions: Callable[[], list[StrategyDefinition]]) -> None:
        self.target = target
        self.definitions = definitions

    async def apply(self, path: Path) -> ConfigOutcome:
        await self.target.set_definitions(self.definitions())
        return ConfigOutcome(("strategies",), (), {})


class TestHotReloaderMapping:
    async def test_each_change_becomes_one_call_in_order(self) -> None:
        """Changed, added, removed and config changes map to their supervisor calls, in the order yielded."""
        clock = ManualClock(100.0)
        target = RecordingSupervisor(clock)
        changes: list[Change] = [
            PackageChange("a", "changed", "d1"), PackageChange("b", "added", "d2"),
            PackageChange("c", "removed", None), ConfigChange(Path("/etc/strategies.json")),
        ]  # fmt: skip
        config = RecordingConfig(target, lambda: [StrategyDefinition("s1", "a", "x")])
        reloader = HotReloader(target, ListedChanges(changes), reconfigurer=config, clock=clock)
        await reloader.run()
        assert target.calls == [
            ("reload_plugin", "a"), ("plugin_added", "b"), ("plugin_removed", "c"), ("set_definitions", ["s1"]),
        ]  # fmt: skip
        assert (reloader.reloads, reloader.packages_added, reloader.packages_removed, reloader.config_reloads) == (
            1, 1, 1, 1,
        )  # fmt: skip
        assert list(reloader.reload_times_s) == [0.25] and reloader.last["a"].duration_s == 0.25

    async def test_failures_are_counted_and_the_loop_goes_on(self) -> None:
        """A failed reload, a raising supervisor and a raising loader are each counted; later changes still apply."""
        clock = ManualClock(100.0)
        target = RecordingSupervisor(clock)
        changes: list[Change] = [
            PackageChange("bad", "changed", "d1"), PackageChange("boom", "changed", "d2"),
            ConfigChange(Path("/etc/strategies.json")), PackageChange("good", "changed", "d3"),
        ]  # fmt: skip

        def broken_loader() -> list[StrategyDefinition]:
            raise ValueError("strategies[0].plugin: missing")

        reloader = HotReloader(
            target, ListedChanges(changes), reconfigurer=RecordingConfig(target, broken_loader), clock=clock
        )
        with capture_logs() as logs:
            await reloader.run()
        assert reloader.reload_failures == 2 and reloader.reloads == 1 and reloader.config_errors == 1
        assert "SyntaxError" in reloader.last["bad"].error and "supervisor bug" in reloader.last["boom"].error
        assert reloader.last_config is not None
        assert reloader.last_config.error == "ValueError: strategies[0].plugin: missing"
        assert ("set_definitions", ["s1"]) not in target.calls and ("reload_plugin", "good") in target.calls
        events = [(e["event"], e.get("plugin")) for e in logs if e["log_level"] == "error"]
        assert events == [
            ("plugin_reload_failed", "bad"),
            ("plugin_reload_failed", "boom"),
            ("config_reload_failed", None),
        ]

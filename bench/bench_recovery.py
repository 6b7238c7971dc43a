"""Crash to serving again: how long a strategy goes without a runner after its runner dies.

    python -m bench.bench_recovery [--crashes 20]

One Supervisor runs one scripted strategy in mode ``exit_every:K`` (exits with 3) or
``segv_every:K`` (SIGSEGV): it crashes on a tick whose sequence is a multiple of K. A feed task
publishes a tick about every millisecond, skipping those sequences; the bench pulls the trigger
by publishing one, waits for the replacement runner to answer, lets it answer a few batches
(so its breaker is CLOSED again) and pulls the trigger again.

Host-side ``time.monotonic()`` stamps come from the listener (``strategy_down``: the host noticed
the runner is gone; ``signals``: an answer, with the pid serving at that moment) and from a
structlog processor on the supervisor's own events (``strategy_failed``: old runner reaped and the
crash charged to the breaker; ``runner_spawned``; ``strategy_ready``: the replacement sent Ready
and gets traffic from then on). Per crash:

- ``detect``   trigger published -> strategy_down (the batch round trip plus the crash itself)
- ``recovery`` strategy_down -> strategy_ready of the replacement ("serving again")
- ``failed_to_ready`` strategy_failed -> strategy_ready (backoff + spawn + handshake)
- ``spawn_to_ready`` runner_spawned -> strategy_ready (process start, imports, sandbox, Hello/Start/Ready)
- ``first_answer`` strategy_down -> first answered batch of the replacement (it carries the backlog
  of ticks published while no runner was up)

Each kind runs with a negligible backoff (1 ms: the policy does not allow 0) for ``--crashes``
crashes and with the default 0.5 s initial backoff (jitter off) for one crash. Figures go to
stdout as a table and to bench/results/recovery.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from host.metrics import EngineMetrics
from host.supervisor.managed import StrategyDefinition, StrategyState, SupervisionSettings
from host.supervisor.policy import BreakerPolicy
from host.supervisor.supervisor import Supervisor
from sdk.events import Cancel, Position, Signal, Tick
from tests.helpers import RUNNERS, tick_events

RESULTS = Path(__file__).resolve().parent / "results" / "recovery.json"
TRIGGER = 1_000_000
SID = "crashy"
FAST = BreakerPolicy(
    backoff_initial_s=0.001, backoff_max_s=0.001, backoff_multiplier=1.0, jitter=0.0,
    restart_budget=1000, budget_window_s=3600.0,
)  # fmt: skip
DEFAULT = BreakerPolicy(jitter=0.0)
SEGMENTS = ("detect", "recovery", "failed_to_ready", "spawn_to_ready", "first_answer")
_STAMPED = frozenset({"strategy_failed", "runner_spawned", "strategy_ready"})


@dataclass
class Timeline:
    """Host-side monotonic stamps of everything the measurement needs, in arrival order."""

    events: list[tuple[float, str, int | None]] = field(default_factory=list)  # (time, name, pid)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set on every stamp: waiters look again

    def stamp(self, name: str, pid: int | None = None) -> None:
        self.events.append((time.monotonic(), name, pid))
        self.changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate`` holds, looked at again on every stamp: whatever it reads is stamped
        when it changes (answers; the state and pid of a strategy, which change before its
        ``strategy_ready``). Unbounded: callers put ``asyncio.timeout`` around it."""
        while not predicate():
            self.changed.clear()
            await self.changed.wait()

    def processor(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """A structlog processor: stamps the supervisor's lifecycle events, drops every log line."""
        if event.get("event") in _STAMPED:
            self.stamp(str(event["event"]), event.get("pid"))
        raise structlog.DropEvent

    def first(self, name: str, after: float, pid: int | None = None) -> tuple[float, int | None] | None:
        for at, event, event_pid in self.events:
            if at >= after and event == name and (pid is None or event_pid == pid):
                return at, event_pid
        return None


class _Listener:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.supervisor: Supervisor | None = None

    def signals(self, strategy_id: str, signals: list[Signal], cancels: list[Cancel]) -> None:
        assert self.supervisor is not None
        self.timeline.stamp("answer", self.supervisor.strategy(strategy_id).pid)

    def strategy_down(self, strategy_id: str, reason: str) -> None:
        self.timeline.stamp("down")

    def strategy_up(self, strategy_id: str) -> None:
        pass

    def positions(self, strategy_id: str) -> list[Position]:
        return []


def _tick(seq: int) -> Tick:
    tick = tick_events(1, start=seq)[0]
    assert isinstance(tick, Tick)
    return tick


class _Bench:
    def __init__(self, mode: str, policy: BreakerPolicy) -> None:
        self.timeline = Timeline()
        listener = _Listener(self.timeline)
        settings = SupervisionSettings(plugins_dir=RUNNERS, handshake_timeout_s=10.0, stop_grace_s=1.0)
        definition = StrategyDefinition(SID, "scripted", "scripted", {"mode": f"{mode}:{TRIGGER}"})
        self.supervisor = Supervisor(settings, [definition], listener, metrics=EngineMetrics(), breaker_policy=policy)
        listener.supervisor = self.supervisor
        self.seq = 0

    async def feed(self) -> None:
        while True:
            self.seq += 1
            if self.seq % TRIGGER == 0:
                self.seq += 1
            self.supervisor.publish(_tick(self.seq))
            await asyncio.sleep(0.001)

    def answers(self, pid: int | None) -> int:
        return sum(1 for _, name, p in self.timeline.events if name == "answer" and p == pid)

    async def crash_once(self) -> dict[str, float]:
        """Pull the trigger with a settled runner; the segments of this crash in ms."""
        status = self.supervisor.strategy(SID)
        old = status.pid
        async with asyncio.timeout(10):
            await self.timeline.until(lambda: self.answers(old) >= 5)
        self.seq = (self.seq // TRIGGER + 1) * TRIGGER
        triggered = time.monotonic()
        self.supervisor.publish(_tick(self.seq))

        def answered_by_new() -> bool:
            status = self.supervisor.strategy(SID)
            return status.state is StrategyState.RUNNING and status.pid != old and self.answers(status.pid) > 0

        async with asyncio.timeout(30):
            await self.timeline.until(answered_by_new)
        return self._segments(triggered)

    def _segments(self, triggered: float) -> dict[str, float]:
        t = self.timeline
        down, _ = _found(t.first("down", triggered))
        failed, _ = _found(t.first("strategy_failed", down))
        spawned, pid = _found(t.first("runner_spawned", failed))
        ready, _ = _found(t.first("strategy_ready", spawned, pid))
        answer, _ = _found(t.first("answer", ready, pid))
        stamps = {
            "detect": (triggered, down), "recovery": (down, ready), "failed_to_ready": (failed, ready),
            "spawn_to_ready": (spawned, ready), "first_answer": (down, answer),
        }  # fmt: skip
        return {name: round((end - begin) * 1000, 2) for name, (begin, end) in stamps.items()}


def _found(hit: tuple[float, int | None] | None) -> tuple[float, int | None]:
    if hit is None:
        raise RuntimeError("an expected event is missing from the timeline")
    return hit


async def _measure(mode: str, policy: BreakerPolicy, crashes: int) -> list[dict[str, float]]:
    bench = _Bench(mode, policy)
    structlog.configure(processors=[bench.timeline.processor])
    run = asyncio.create_task(bench.supervisor.run())
    feed: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(bench.supervisor.started.wait(), 10)
        async with asyncio.timeout(10):
            await bench.timeline.until(lambda: bench.supervisor.strategy(SID).state is StrategyState.RUNNING)
        feed = asyncio.create_task(bench.feed())
        samples = [await bench.crash_once() for _ in range(crashes)]
    finally:
        if feed is not None:
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed
        bench.supervisor.close()
        await asyncio.wait_for(run, 30)
    return samples


def _summary(mode: str, policy: BreakerPolicy, samples: list[dict[str, float]]) -> dict[str, Any]:
    row: dict[str, Any] = {"crash": mode, "backoff_initial_s": policy.backoff_initial_s, "crashes": len(samples)}
    for segment in SEGMENTS:
        values = sorted(s[segment] for s in samples)
        row[segment] = {
            "p50_ms": values[len(values) // 2], "p90_ms": values[min(len(values) - 1, int(0.9 * len(values)))],
            "max_ms": values[-1],
        }  # fmt: skip
    row["samples"] = samples
    return row


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'crash':<6} {'backoff':>8} {'n':>3}  {'segment':<16} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for r in rows:
        head = f"{r['crash']:<6} {r['backoff_initial_s']:>7g}s {r['crashes']:>3}"
        for segment in SEGMENTS:
            cell = r[segment]
            print(f"{head}  {segment:<16} {cell['p50_ms']:>8.1f} {cell['p90_ms']:>8.1f} {cell['max_ms']:>8.1f}")
            head = " " * len(head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=20, help="crashes per kind with the 1 ms backoff")
    args = parser.parse_args()
    rows = []
    for policy, crashes in ((FAST, args.crashes), (DEFAULT, 1)):
        for mode in ("exit_every", "segv_every"):
            samples = asyncio.run(_measure(mode, policy, crashes))
            rows.append(_summary(mode.removesuffix("_every"), policy, samples))
    _print(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

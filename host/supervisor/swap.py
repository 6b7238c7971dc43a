"""Hot reload of one strategy as a process swap: the replacement is loaded beside the serving runner.

Model. ``HotSwap.prepare`` runs in the caller's task (a reload or a config change), not in the
strategy's loop: it loads the new code in a replacement runner up to its Hello while the old
runner keeps serving, parks it as ``pending``, wakes the loop and waits for the loop's answer.
The loop calls ``switch`` between two batches, never with one in flight: it snapshots the serving
runner, starts the replacement with that state and, once the replacement is Ready, hands it back
to serve; the old runner is drained and stopped alongside without holding up traffic. If the
replacement fails at any step it is ended, the old runner keeps serving, and the reason is what
``prepare`` returns, recorded in the strategy's stats (``last_reload``) and logged.

A reload asked for while a replacement is loading or pending is refused (two overlapping ones
would otherwise leave the first caller waiting on a replacement nobody switches to). ``close`` (the loop's shutdown)
waits for the replaced runners still stopping and ends a pending replacement, answering its
``prepare`` with "host shutting down".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from host.session import SessionError
from host.supervisor.process import Rung
from host.supervisor.runners import Runner, SpawnFailed, StrategyRunners
from host.supervisor.status import ReloadRecord, StrategyDefinition, StrategyStats

__all__ = ["HotSwap", "Replacement"]

log = structlog.get_logger("host.supervisor")


@dataclass
class Replacement:
    """A runner with the new code loaded, and the definition it was loaded from."""

    runner: Runner
    definition: StrategyDefinition
    restored: Mapping[str, bytes] = field(default_factory=dict)  # the state it was started with (crash capture)
    done: asyncio.Future[str | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class HotSwap:
    """The pending replacement of one strategy's runner, and the switch to it."""

    def __init__(self, strategy_id: str, runners: StrategyRunners, stats: StrategyStats, timeout_s: float) -> None:
        self.id = strategy_id
        self.pending: Replacement | None = None
        self._loading = False
        self._runners = runners
        self._stats = stats
        self._timeout_s = timeout_s
        self._endings: set[asyncio.Future[Rung]] = set()  # replaced runners being stopped

    async def prepare(self, definition: StrategyDefinition, wake: Callable[[], None]) -> str | None:
        """Load ``definition`` in a replacement and wait for the loop's switch; None on success, else why not."""
        if self.pending is not None or self._loading:
            return "a reload is already in progress"
        self._loading = True
        try:
            runner = await self._runners.load(definition)
        except (SessionError, TimeoutError, SpawnFailed) as err:
            return self._failed(str(err) or "no Hello in time")
        finally:
            self._loading = False
        self.pending = Replacement(runner, definition)
        wake()
        return await self.pending.done

    async def switch(self, old: Runner) -> Replacement | None:
        """Move the serving runner's state to the pending replacement; the replacement once it is
        Ready, None if it failed (``old`` keeps serving)."""
        new, self.pending = self.pending, None
        assert new is not None, "switch only with a replacement pending"
        try:
            snapshot = await old.session.snapshot(self._timeout_s)
            new.restored = dict(snapshot.states)
            await new.runner.session.start(new.restored, self._timeout_s)
        except (SessionError, TimeoutError) as err:
            await self._runners.end(new.runner, "reload failed")
            new.done.set_result(self._failed(str(err) or "replacement did not become Ready"))
            return None
        self._stats.reloads += 1
        self._stats.last_reload = ReloadRecord(time.time(), ok=True)
        new.done.set_result(None)
        log.info("plugin_reloaded", strategy=self.id, old_pid=old.process.pid, new_pid=new.runner.process.pid)
        ending = asyncio.ensure_future(self._runners.end(old, "replaced"))
        self._endings.add(ending)
        ending.add_done_callback(self._endings.discard)
        return new

    async def close(self) -> None:
        if self._endings:
            await asyncio.gather(*self._endings, return_exceptions=True)
        if self.pending is not None:
            await self._runners.end(self.pending.runner, "host shutting down")
            if not self.pending.done.done():
                self.pending.done.set_result("host shutting down")

    def _failed(self, reason: str) -> str:
        self._stats.reload_failures += 1
        self._stats.last_reload = ReloadRecord(time.time(), ok=False, error=reason)
        log.error("plugin_reload_failed", strategy=self.id, reason=reason[:500])
        return reason

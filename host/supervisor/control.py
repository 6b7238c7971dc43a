"""What operators and the supervisor ask of one strategy's loop, and how the loop hears it.

Model. Requests come from other tasks on the event loop (HTTP handlers, reloads, shutdown) and
never touch the runner: each sets a flag or an event and wakes the loop, which acts on it between
two batches, so a batch in flight is always answered or charged first.

- ``closing``: the loop ends for good (its serving runner's state is saved first);
- ``restart_requested``: the serving runner is replaced, with no charge to the breaker;
- ``charge``: the serving runner is replaced and its breaker charged with a failure observed
  outside a batch (its CPU budget, its order-rate quota); the first charge waits, later ones until
  the loop has taken it are the same runner's and dropped;
- ``pause`` / ``resume``: the breaker holds the strategy open until an operator resumes it (no
  automatic restart meanwhile); a resume ends a hold (paused, or breaker open) or cuts a restart
  backoff short.

A resume counts only if it comes after what it answers: entering a hold forgets any earlier one
(``forget_resume``), and so does a backoff that ran its course.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from host.supervisor.policy import CircuitBreaker, FailureKind

__all__ = ["Control"]


class Control:
    """The operator's requests for one strategy; ``wake`` interrupts its loop's wait."""

    def __init__(self, breaker: CircuitBreaker, wake: Callable[[], None]) -> None:
        self.closing = False
        self.restart_requested = False
        self.charged: tuple[FailureKind, str] | None = None
        self._breaker = breaker
        self._wake = wake
        self._resumed = asyncio.Event()

    def pause(self, reason: str) -> None:
        self._breaker.pause(reason)
        self.forget_resume()
        self.restart_requested = False
        self._wake()

    def resume(self) -> None:
        self._breaker.resume()
        self._resumed.set()

    def restart(self) -> None:
        self.restart_requested = True
        self._wake()

    def charge(self, kind: FailureKind, reason: str) -> None:
        if self.charged is None:
            self.charged = (kind, reason)
            self._wake()

    def take_charge(self) -> tuple[FailureKind, str] | None:
        charged, self.charged = self.charged, None
        return charged

    def close(self) -> None:
        self.closing = True
        self._resumed.set()
        self._wake()

    def forget_resume(self) -> None:
        """From here on only a new resume counts."""
        self._resumed.clear()

    async def resumed(self) -> None:
        """Wait for a resume (or close), and use it up."""
        await self._resumed.wait()
        self._resumed.clear()

    async def backoff(self, seconds: float) -> None:
        """A restart delay that a resume or close cuts short."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._resumed.wait()

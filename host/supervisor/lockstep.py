"""The seam through which a backtest drives each strategy's runner in lockstep with the host.

Model. Live, a managed strategy's loop takes whatever its outbox holds and hands the batch's
signals straight on. In a backtest (``Supervisor.use_lockstep``) the driver decides instead what
every batch holds and when the host acts on what came back, so that the results depend on the
data alone, never on how fast each process ran:

- ``chunk`` gives the loop the next batch (encoded event items) for a strategy; an empty list means
  "nothing now" and the loop waits until ``Supervisor.wake`` is called for it. Each batch is sent
  with ``cut_on_output``: the runner stops after the first event that made output.
- ``answered`` tells the driver how many of the batch's events the runner handled, before the
  batch's signals are judged and handed to the listener, which in lockstep is the driver too: it
  holds them and hands them to the execution engine in event order.
- ``lost`` says the runner went before answering its batch.
- ``deliver`` takes the fills, positions, timers and order updates the host has for a strategy;
  the driver puts them in front of the market events of that strategy's next batch.

Everything else (boot, deadlines, the breaker, restarts, the stop ladder) is the live loop's.
"""

from __future__ import annotations

from typing import Protocol

from host.supervisor.status import StrategyListener
from sdk.events import Fill, OrderUpdate, Position, Timer

__all__ = ["Lockstep"]


class Lockstep(StrategyListener, Protocol):
    """A backtest driver as the managed strategies see it (it is their listener as well)."""

    def chunk(self, strategy_id: str) -> list[bytes]:
        """The next batch for ``strategy_id``: encoded event items, or [] when there is nothing to send now."""

    def answered(self, strategy_id: str, consumed: int) -> None:
        """The runner handled the first ``consumed`` items of its last chunk (before its output is judged)."""

    def lost(self, strategy_id: str) -> None:
        """The runner went (crash, deadline, breaker) without answering its last chunk."""

    def deliver(self, strategy_id: str, event: Fill | Position | Timer | OrderUpdate, item: bytes) -> None:
        """A reliable event for the strategy (``item`` is its encoding), to go before its next market event."""

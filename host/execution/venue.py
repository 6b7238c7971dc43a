"""The seam between the execution engine and whatever executes orders: the ``Venue`` protocol.

Two venues implement it: ``PaperVenue`` (in-process matching, simulation and backtest) and
``GrpcVenue`` (the order-execution service, live). Both are driven from the host's event loop by
one caller; neither is thread-safe.

Identity. Every call names the order by its client order id (``OrderIntent.client_order_id``, the
``signal_id`` on the wire). A venue that already knows the id answers with the existing order and
never places a second one, so resending under the *same* id is always safe and resending under a
*new* id never is.

Replies. ``submit``, ``cancel`` and ``status`` return a ``VenueReply``: the order as the venue
knows it after the call (cumulative filled quantity and average price, not the last execution).
``status is None`` means the venue has never seen the id (``"unknown"`` on the wire).

Errors. Exactly two outcomes need care, and they need opposite handling:

- ``VenueUnavailable``: the call did not reach the venue, or the breaker is open and no call was
  made. Safe to retry later with the same client order id.
- ``VenueTimeout``: the request may have been executed and no answer came back. AMBIGUOUS: the
  caller keeps the order as ``SENT`` and resolves it with ``status(client_order_id)``; it never
  resends under a new id. ``status`` answering ``None`` (unknown) proves it was not placed, and
  only then is a resend (same id) the right move.

Fills. Pushed, not pulled: a venue that produces fills is given a ``FillSink`` (``Callable[[Fill],
None]``) at construction and calls it synchronously on the event loop, once per execution, with
``Fill.order_id`` the venue's order id and ``Fill.strategy`` taken from the intent. A sink must not
block (journal or enqueue, then return). A fill may arrive before the reply of the ``submit`` that
caused it (``PaperVenue`` calls the sink inside ``submit`` for orders that fill on arrival; a live
venue's NATS fill can beat its gRPC reply), so the caller must accept a fill for an order whose
reply it has not seen yet. Fills are de-duplicated downstream by ``fill_id``. ``GrpcVenue``
produces no fills: in live mode they arrive on NATS ``trading.fills`` through the feeds, into the
same sink the engine would give a ``PaperVenue``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from host.errors import EngineError
from host.orders import OrderIntent, OrderState, OrderStatus
from sdk.events import Fill

__all__ = [
    "FillSink",
    "Venue",
    "VenueError",
    "VenueReply",
    "VenueTimeout",
    "VenueUnavailable",
]

FillSink = Callable[[Fill], None]


@dataclass(frozen=True, slots=True)
class VenueReply:
    """One order as the venue knows it after a call. ``status is None``: the venue never saw it."""

    client_order_id: str
    status: OrderStatus | None
    venue_order_id: str = ""
    filled_quantity: float = 0.0
    average_price: float = 0.0
    message: str = ""
    timestamp_ns: int = 0
    fee: float | None = None  # cumulative fee, when the venue reports it (order.OrderService does)

    @property
    def known(self) -> bool:
        return self.status is not None

    @classmethod
    def unknown(cls, client_order_id: str, timestamp_ns: int = 0, message: str = "") -> VenueReply:
        return cls(client_order_id, None, message=message or "order not known to the venue", timestamp_ns=timestamp_ns)

    @classmethod
    def from_state(cls, state: OrderState, timestamp_ns: int, message: str = "") -> VenueReply:
        return cls(
            client_order_id=state.intent.client_order_id, status=state.status, venue_order_id=state.venue_order_id,
            filled_quantity=state.filled_quantity, average_price=state.average_price,
            message=message or state.reason, timestamp_ns=timestamp_ns,
        )  # fmt: skip


class VenueError(EngineError):
    """A venue call failed; ``operation`` is submit/cancel/status/submit_batch, ``reason`` says why."""

    def __init__(self, venue: str, operation: str, client_order_id: str, reason: str) -> None:
        self.venue = venue
        self.operation = operation
        self.client_order_id = client_order_id
        self.reason = reason
        super().__init__(f"venue {venue!r} {operation} {client_order_id!r}: {reason}")


class VenueUnavailable(VenueError):
    """Not delivered (unreachable, or breaker open): retry later with the same client order id."""

    def __init__(
        self, venue: str, operation: str, client_order_id: str, reason: str, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(venue, operation, client_order_id, reason)


class VenueTimeout(VenueError):
    """Sent, no usable answer: the order may exist. Resolve with ``status()``; never resend under a new id."""


class Venue(Protocol):
    """What the execution engine needs from a venue. Fills go to the ``FillSink`` given at construction."""

    async def submit(self, intent: OrderIntent) -> VenueReply:
        """Place the order, or return the existing one if its client order id is already known."""
        ...

    async def cancel(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> VenueReply:
        """Cancel a working order; a terminal or unknown order comes back unchanged (status says which).
        ``venue_order_id`` (when the caller knows it) and ``symbol`` help a venue that needs them."""
        ...

    async def status(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> VenueReply:
        """The order as the venue knows it; ``status is None`` when it never saw the id."""
        ...

    async def close(self) -> None:
        """Release connections; calls after close are not allowed."""
        ...

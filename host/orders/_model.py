"""The order model shared by risk, execution, venues and the ledger.

An ``OrderIntent`` is what the host decided to send after aggregation and before risk: it carries
the client order id (the signal's ``client_order_id``, which the strategy's ``emit`` set, else a
fresh one): a retry or a reconciliation always reuses it, so a venue never sees one decision twice
under two ids, and the strategy's ``OrderUpdate``s carry it. ``OrderState`` is its lifecycle as
the host knows it:

    PENDING_NEW --send--> SENT --ack--> ACCEPTED --fill--> PARTIALLY_FILLED --fill--> FILLED
         |                  |              |                      |
         |                  +--reject--> REJECTED                 +--cancel--> CANCELLED
         +--(never sent)--> REJECTED       +--cancel--> CANCEL_PENDING --> CANCELLED / FILLED

``SENT`` means the request left the host and no answer came back: the outcome is unknown and is
resolved by asking the venue (``GetOrderStatus``), never by sending again under a new id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from sdk.events import OrderType, Side, Signal, TimeInForce

__all__ = ["TERMINAL", "WORKING", "OrderIntent", "OrderState", "OrderStatus", "new_client_order_id"]


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"  # journaled, not yet sent
    SENT = "sent"  # sent, no answer yet (ambiguous until the venue says)
    ACCEPTED = "accepted"  # working at the venue
    PARTIALLY_FILLED = "partially_filled"
    CANCEL_PENDING = "cancel_pending"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
# Orders that may still fill: what risk counts "as if filled" and what a kill switch cancels.
WORKING = frozenset(
    {
        OrderStatus.PENDING_NEW,
        OrderStatus.SENT,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.CANCEL_PENDING,
    }
)


def new_client_order_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One order the host decided to place, identified by its client order id."""

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    max_slippage: float | None = None
    priority: int = 5
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    slot: str = ""
    reduce_only: bool = False
    created_ns: int = 0

    @classmethod
    def from_signal(
        cls, strategy: str, signal: Signal, created_ns: int, client_order_id: str | None = None
    ) -> OrderIntent:
        return cls(
            client_order_id=client_order_id or signal.client_order_id or new_client_order_id(),
            strategy=strategy, symbol=signal.symbol,
            side=signal.side, order_type=signal.order_type, quantity=signal.quantity, price=signal.price,
            stop_price=signal.stop_price, time_in_force=signal.time_in_force, max_slippage=signal.max_slippage,
            priority=signal.priority, metadata=signal.metadata, slot=signal.slot, created_ns=created_ns,
        )  # fmt: skip

    @property
    def signed_quantity(self) -> float:
        return self.quantity * self.side.sign


@dataclass(frozen=True, slots=True)
class OrderState:
    """An order's lifecycle as the host knows it (immutable: each change is a new state)."""

    intent: OrderIntent
    status: OrderStatus = OrderStatus.PENDING_NEW
    venue_order_id: str = ""
    filled_quantity: float = 0.0
    average_price: float = 0.0
    reason: str = ""
    updated_ns: int = 0

    @property
    def remaining(self) -> float:
        return max(0.0, self.intent.quantity - self.filled_quantity)

    @property
    def working(self) -> bool:
        return self.status in WORKING

    def evolve(self, **changes: object) -> OrderState:
        return replace(self, **changes)  # type: ignore[arg-type]

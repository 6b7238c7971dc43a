"""Conversions between ledger rows and the host's types (orders, order events, fills, positions)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

from host.orders import OrderIntent, OrderState, OrderStatus
from sdk._positions import PositionState
from sdk.events import Fill, OrderType, Side, TimeInForce

__all__ = [
    "ORDER_COLUMNS",
    "OrderEvent",
    "event_from_row",
    "event_row",
    "fill_from_row",
    "order_from_row",
    "order_row",
    "state_from_row",
    "utc_day",
]

_NS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

ORDER_COLUMNS = (
    "client_order_id, strategy, symbol, side, order_type, quantity, price, stop_price, time_in_force, "
    "max_slippage, priority, metadata, slot, reduce_only, created_ns, "
    "status, venue_order_id, filled_quantity, average_price, reason, updated_ns"
)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One entry of an order's audit trail: the state it moved to, from what, and why.

    ``from_status`` is None for the first event (the journal entry); ``fill_id`` names the fill
    that caused the change, if one did. ``seq`` orders events across the whole ledger.
    """

    seq: int
    client_order_id: str
    timestamp_ns: int
    from_status: OrderStatus | None
    status: OrderStatus
    venue_order_id: str
    filled_quantity: float
    average_price: float
    reason: str
    fill_id: str | None


def utc_day(timestamp_ns: int) -> date:
    """The UTC calendar day of an epoch-nanosecond time, in integers (a float would blur midnight)."""
    return date.fromordinal(_EPOCH_ORDINAL + timestamp_ns // _NS_PER_DAY)


def order_row(state: OrderState) -> tuple[Any, ...]:
    """The ``orders`` row of ``state``, in ``ORDER_COLUMNS`` order."""
    i = state.intent
    return (
        i.client_order_id, i.strategy, i.symbol, i.side.value, i.order_type.value, i.quantity, i.price,
        i.stop_price, i.time_in_force.value, i.max_slippage, i.priority, json.dumps(dict(i.metadata), sort_keys=True),
        i.slot, int(i.reduce_only), i.created_ns,
        state.status.value, state.venue_order_id, state.filled_quantity, state.average_price, state.reason,
        state.updated_ns,
    )  # fmt: skip


def order_from_row(row: sqlite3.Row) -> OrderState:
    intent = OrderIntent(
        client_order_id=row["client_order_id"], strategy=row["strategy"], symbol=row["symbol"],
        side=Side(row["side"]), order_type=OrderType(row["order_type"]), quantity=row["quantity"],
        price=row["price"], stop_price=row["stop_price"], time_in_force=TimeInForce(row["time_in_force"]),
        max_slippage=row["max_slippage"], priority=row["priority"],
        metadata=MappingProxyType(json.loads(row["metadata"])), slot=row["slot"],
        reduce_only=bool(row["reduce_only"]), created_ns=row["created_ns"],
    )  # fmt: skip
    return OrderState(
        intent=intent, status=OrderStatus(row["status"]), venue_order_id=row["venue_order_id"],
        filled_quantity=row["filled_quantity"], average_price=row["average_price"], reason=row["reason"],
        updated_ns=row["updated_ns"],
    )  # fmt: skip


def event_row(state: OrderState, from_status: OrderStatus | None, reason: str, fill_id: str | None) -> tuple[Any, ...]:
    """An ``order_events`` row recording that the order reached ``state``."""
    return (
        state.intent.client_order_id, state.updated_ns, None if from_status is None else from_status.value,
        state.status.value, state.venue_order_id, state.filled_quantity, state.average_price, reason, fill_id,
    )  # fmt: skip


def event_from_row(row: sqlite3.Row) -> OrderEvent:
    from_status = row["from_status"]
    return OrderEvent(
        seq=row["seq"], client_order_id=row["client_order_id"], timestamp_ns=row["timestamp_ns"],
        from_status=None if from_status is None else OrderStatus(from_status), status=OrderStatus(row["status"]),
        venue_order_id=row["venue_order_id"], filled_quantity=row["filled_quantity"],
        average_price=row["average_price"], reason=row["reason"], fill_id=row["fill_id"],
    )  # fmt: skip


def fill_from_row(row: sqlite3.Row) -> Fill:
    return Fill(
        fill_id=row["fill_id"], order_id=row["order_id"], symbol=row["symbol"], side=Side(row["side"]),
        price=row["price"], quantity=row["quantity"], timestamp_ns=row["timestamp_ns"], fee=row["fee"],
        strategy=row["strategy"], reconciled=row["reconciled"] == 1,
    )  # fmt: skip


def state_from_row(row: sqlite3.Row | None, symbol: str) -> PositionState:
    """The running position a ``positions`` row holds (flat when there is no row yet)."""
    if row is None:
        return PositionState(symbol)
    return PositionState(
        symbol=symbol, quantity=row["quantity"], avg_entry_price=row["avg_entry_price"],
        realized_pnl=row["realized_pnl"], fees=row["fees"], last_price=row["last_price"],
    )  # fmt: skip

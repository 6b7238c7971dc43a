"""Conversions between the order model and ``orderexecution`` protobuf messages (both directions).

Written to what the seed system sends: enumerations travel as strings and are read in any letter
case; ``time_in_force`` is sent upper case (``"GTC"``), side and order type lower case. A price,
stop price or max slippage of 0 on the wire means "not set". ``signal_id`` is the client order id.
Statuses are read leniently (``"canceled"``, ``"new"``, ``"partial"`` ...); ``"unknown"`` and
``"not_found"`` read as None (the venue never saw the order) and anything unrecognized raises ``WireError`` rather than
being guessed, because a wrong guess about an order's state is worse than an error.
"""

from __future__ import annotations

from types import MappingProxyType

from engine_proto import order_execution_pb2 as pb
from host.errors import EngineError
from host.orders import OrderIntent, OrderState, OrderStatus
from sdk.events import OrderType, Side, TimeInForce

__all__ = ["WireError", "intent_to_request", "parse_status", "request_to_intent", "state_to_response"]


class WireError(EngineError):
    """A message field the other side sent cannot be read."""

    def __init__(self, message: str, field: str, reason: str) -> None:
        self.message_name = message
        self.field = field
        self.reason = reason
        super().__init__(f"{message}.{field}: {reason}")


_STATUS = {
    "accepted": OrderStatus.ACCEPTED, "new": OrderStatus.ACCEPTED, "open": OrderStatus.ACCEPTED,
    "pending": OrderStatus.ACCEPTED, "working": OrderStatus.ACCEPTED, "submitted": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED, "partial": OrderStatus.PARTIALLY_FILLED,
    "partial_fill": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED, "canceled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED, "expired": OrderStatus.EXPIRED,
    "pending_cancel": OrderStatus.CANCEL_PENDING, "cancel_pending": OrderStatus.CANCEL_PENDING,
}  # fmt: skip


def parse_status(text: str, message: str = "OrderResponse") -> OrderStatus | None:
    """A wire status as an ``OrderStatus``; ``"unknown"`` is None (never seen); others raise ``WireError``."""
    key = text.strip().lower()
    if key in ("unknown", "not_found"):
        return None
    status = _STATUS.get(key)
    if status is None:
        raise WireError(message, "status", f"unrecognized order status {text!r}")
    return status


def _opt(value: float | None) -> float:
    return 0.0 if value is None else value


def intent_to_request(intent: OrderIntent) -> pb.OrderRequest:
    return pb.OrderRequest(
        signal_id=intent.client_order_id, strategy_id=intent.strategy, symbol=intent.symbol,
        side=intent.side.value, order_type=intent.order_type.value, quantity=intent.quantity,
        price=_opt(intent.price), stop_price=_opt(intent.stop_price),
        time_in_force=intent.time_in_force.value.upper(), max_slippage=_opt(intent.max_slippage),
        priority=intent.priority, metadata=dict(intent.metadata),
    )  # fmt: skip


def _member(enum: type[Side] | type[OrderType] | type[TimeInForce], field: str, text: str) -> str:
    key = text.strip().lower()
    if key not in {m.value for m in enum}:
        allowed = ", ".join(m.value for m in enum)
        raise WireError("OrderRequest", field, f"expected one of {allowed} (any case), got {text!r}")
    return key


def request_to_intent(request: pb.OrderRequest, created_ns: int) -> OrderIntent:
    """The intent a request describes; raises ``WireError`` naming the first unreadable field."""
    if not request.signal_id:
        raise WireError("OrderRequest", "signal_id", "required (it is the client order id)")
    if not request.symbol:
        raise WireError("OrderRequest", "symbol", "required")
    return OrderIntent(
        client_order_id=request.signal_id, strategy=request.strategy_id, symbol=request.symbol,
        side=Side(_member(Side, "side", request.side)),
        order_type=OrderType(_member(OrderType, "order_type", request.order_type)),
        quantity=request.quantity, price=request.price or None, stop_price=request.stop_price or None,
        time_in_force=TimeInForce(_member(TimeInForce, "time_in_force", request.time_in_force or "gtc")),
        max_slippage=request.max_slippage or None, priority=request.priority or 5,
        metadata=MappingProxyType(dict(request.metadata)), created_ns=created_ns,
    )  # fmt: skip


def state_to_response(state: OrderState, timestamp_ns: int, message: str = "") -> pb.OrderResponse:
    """The order as a reply: ``executed_quantity``/``executed_price`` are its cumulative filled quantity
    and average price; ``timestamp`` is in microseconds, as the b25 definition has it."""
    return pb.OrderResponse(
        order_id=state.venue_order_id, signal_id=state.intent.client_order_id, status=state.status.value,
        message=message or state.reason, executed_quantity=state.filled_quantity,
        executed_price=state.average_price, timestamp=timestamp_ns // 1000,
    )  # fmt: skip

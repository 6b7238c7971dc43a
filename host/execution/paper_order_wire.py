"""``order.OrderService`` (b25's order-execution service) and the order model, as the paper venue needs them.

Requests. ``request_to_intent`` reads a ``CreateOrderRequest`` into an ``OrderIntent`` for the
matching engine, or raises ``WireError`` naming the first field it cannot take:

- ``side`` BUY/SELL (SIDE_UNSPECIFIED is refused); ``type`` MARKET, LIMIT, STOP_MARKET (the
  engine's ``stop``), STOP_LIMIT, POST_ONLY (a limit that must not take liquidity; TYPE_UNSPECIFIED
  is refused); ``time_in_force`` GTC, IOC, FOK, GTX (post-only GTC), TIF_UNSPECIFIED = GTC (as b25
  maps it); unknown enum numbers are refused.
- post-only (type POST_ONLY, ``post_only``, or GTX) applies to LIMIT/POST_ONLY orders only and
  rests (GTC or GTX); whether it would take liquidity now is the venue's check
  (``takes_liquidity``), since it needs the market.
- ``symbol`` is required and may not hold whitespace, ``.``, ``*`` or ``>`` (it names the NATS
  subject ``orders.updates.<SYMBOL>``); ``price``/``stop_price`` are finite and >= 0 (0: not set);
  ``quantity`` and the prices an order type needs are the matching engine's rules.
- ``user_id`` becomes the intent's ``strategy``: the paper venue books positions per user and
  publishes its fills on ``trading.fills`` under that name. What the engine's model cannot say
  (POST_ONLY vs LIMIT, GTX vs GTC, the ``post_only`` flag) rides in the intent's metadata under
  ``META_*``, so the matching engine holds everything an ``Order`` reports.

Orders. ``ServiceOrder`` is one order as the service reports it (enums as ``order_pb2`` numbers,
times in ns); ``order_pb``/``update_pb`` encode it for gRPC, ``update_json`` for NATS in b25's JSON.
States: the engine's ACCEPTED is SUBMITTED (b25 maps the exchange's NEW to SUBMITTED);
PENDING_NEW/SENT would be NEW (the paper venue never holds those); PARTIALLY_FILLED, FILLED,
REJECTED and EXPIRED are themselves; CANCELLED is CANCELED, for an IOC/FOK remainder too (Binance,
and so b25, calls that EXPIRED; the engine's EXPIRED means "the venue lost it", so the paper
venue keeps CANCELED and the reason says which). ``fee`` is the order's cumulative fee
(``fee_rate x average_price x filled_quantity``), ``fee_asset`` ``USDT`` once something filled
(the quote currency of b25's symbols), else "". ``exchange_order_id`` is the venue's order id (the
paper venue is the exchange), "" for a rejected order.

Times. On gRPC ``timestamp``, ``created_at``, ``updated_at`` and ``GetOrders``' ``start_time`` /
``end_time`` are Unix seconds: ``order.proto`` does not say, and b25's service fills every one of
them with Go's ``time.Time.Unix()`` (services/order-execution/internal/executor/grpc_server.go),
which is seconds. In the NATS JSON they are RFC 3339 with nanoseconds, as Go marshals a
``time.Time``, so the full precision is there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from engine_proto import order_service_pb2 as pb
from host.execution.oms_wire import WireError
from host.orders import OrderIntent, OrderState, OrderStatus
from sdk._codec import format_timestamp
from sdk.events import OrderType, Side, TimeInForce

__all__ = [
    "FEE_ASSET",
    "is_post_only",
    "META_POST_ONLY",
    "META_TIME_IN_FORCE",
    "META_TYPE",
    "SIDE_TO_PB",
    "TIF_TO_PB",
    "TIME_UNIT_NS",
    "TYPE_TO_PB",
    "ServiceOrder",
    "ServiceUpdate",
    "order_pb",
    "rejected_order",
    "request_to_intent",
    "service_order",
    "takes_liquidity",
    "update_json",
    "update_pb",
    "wire_state",
    "wire_time",
]

TIME_UNIT_NS = 1_000_000_000  # gRPC times are Unix seconds (see the module docstring)
FEE_ASSET = "USDT"
META_TYPE = "order_service.type"
META_TIME_IN_FORCE = "order_service.time_in_force"
META_POST_ONLY = "order_service.post_only"

_SIDES = {pb.BUY: Side.BUY, pb.SELL: Side.SELL}
_TYPES = {
    pb.MARKET: OrderType.MARKET, pb.LIMIT: OrderType.LIMIT, pb.STOP_MARKET: OrderType.STOP,
    pb.STOP_LIMIT: OrderType.STOP_LIMIT, pb.POST_ONLY: OrderType.LIMIT,
}  # fmt: skip
_TIFS = {
    pb.TIF_UNSPECIFIED: TimeInForce.GTC, pb.GTC: TimeInForce.GTC, pb.IOC: TimeInForce.IOC,
    pb.FOK: TimeInForce.FOK, pb.GTX: TimeInForce.GTC,
}  # fmt: skip
# From the model to the wire: an intent without the metadata here, and the engine's client
# (``host.execution.order_service``) for every order it creates.
SIDE_TO_PB = {Side.BUY: pb.BUY, Side.SELL: pb.SELL}
TYPE_TO_PB = {OrderType.MARKET: pb.MARKET, OrderType.LIMIT: pb.LIMIT, OrderType.STOP: pb.STOP_MARKET,
              OrderType.STOP_LIMIT: pb.STOP_LIMIT}  # fmt: skip
TIF_TO_PB = {TimeInForce.GTC: pb.GTC, TimeInForce.IOC: pb.IOC, TimeInForce.FOK: pb.FOK}
_STATES = {
    OrderStatus.PENDING_NEW: pb.NEW, OrderStatus.SENT: pb.NEW, OrderStatus.ACCEPTED: pb.SUBMITTED,
    OrderStatus.CANCEL_PENDING: pb.SUBMITTED, OrderStatus.PARTIALLY_FILLED: pb.PARTIALLY_FILLED,
    OrderStatus.FILLED: pb.FILLED, OrderStatus.CANCELLED: pb.CANCELED, OrderStatus.REJECTED: pb.REJECTED,
    OrderStatus.EXPIRED: pb.EXPIRED,
}  # fmt: skip
_SUBJECT_BREAKERS = frozenset(" \t\r\n.*>")
_MESSAGE = "CreateOrderRequest"


def wire_time(timestamp_ns: int) -> int:
    return timestamp_ns // TIME_UNIT_NS


def wire_state(status: OrderStatus) -> int:
    return _STATES[status]


def _name(enum: Any, value: int) -> str:
    """An enum value's name, or its number when this definition has no name for it."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


def _bad(field: str, reason: str) -> WireError:
    return WireError(_MESSAGE, field, reason)


def _post_only(request: pb.CreateOrderRequest) -> bool:
    return request.type == pb.POST_ONLY or request.post_only or request.time_in_force == pb.GTX


def request_to_intent(request: pb.CreateOrderRequest, client_order_id: str, created_ns: int) -> OrderIntent:
    """The intent a request describes; raises ``WireError`` naming the first field it cannot take."""
    symbol = request.symbol
    if not symbol:
        raise _bad("symbol", "required")
    if _SUBJECT_BREAKERS & set(symbol):
        raise _bad("symbol", f"may not hold whitespace, '.', '*' or '>' (it names a NATS subject), got {symbol!r}")
    side = _SIDES.get(request.side)
    if side is None:
        raise _bad("side", f"required: BUY or SELL, got {_name(pb.OrderSide, request.side)}")
    kind = _TYPES.get(request.type)
    if kind is None:
        allowed = "MARKET, LIMIT, STOP_MARKET, STOP_LIMIT or POST_ONLY"
        raise _bad("type", f"required: {allowed}, got {_name(pb.OrderType, request.type)}")
    tif = _TIFS.get(request.time_in_force)
    if tif is None:
        raise _bad(
            "time_in_force", f"expected GTC, IOC, FOK or GTX, got {_name(pb.TimeInForce, request.time_in_force)}"
        )
    for field in ("price", "stop_price"):
        value = getattr(request, field)
        if not (math.isfinite(value) and value >= 0):
            raise _bad(field, f"must be a finite number >= 0 (0: not set), got {value}")
    _check_post_only(request)
    tif_name = "GTC" if request.time_in_force == pb.TIF_UNSPECIFIED else _name(pb.TimeInForce, request.time_in_force)
    metadata = {
        META_TYPE: _name(pb.OrderType, request.type), META_TIME_IN_FORCE: tif_name,
        META_POST_ONLY: "true" if request.post_only else "false",
    }  # fmt: skip
    return OrderIntent(
        client_order_id=client_order_id, strategy=request.user_id, symbol=symbol, side=side, order_type=kind,
        quantity=request.quantity, price=request.price or None, stop_price=request.stop_price or None,
        time_in_force=tif, metadata=MappingProxyType(metadata), reduce_only=request.reduce_only,
        created_ns=created_ns,
    )  # fmt: skip


def _check_post_only(request: pb.CreateOrderRequest) -> None:
    if not _post_only(request):
        return
    if request.type not in (pb.LIMIT, pb.POST_ONLY):
        field = "post_only" if request.post_only else "time_in_force"
        raise _bad(field, f"only a LIMIT order can be post-only, got {_name(pb.OrderType, request.type)}")
    if request.time_in_force in (pb.IOC, pb.FOK):
        raise _bad(
            "time_in_force", f"a post-only order rests: GTC or GTX, got {_name(pb.TimeInForce, request.time_in_force)}"
        )


def is_post_only(intent: OrderIntent) -> bool:
    """Whether the order must not take liquidity (type POST_ONLY, ``post_only``, or GTX)."""
    meta = intent.metadata
    return (
        meta.get(META_TYPE) == "POST_ONLY"
        or meta.get(META_POST_ONLY) == "true"
        or meta.get(META_TIME_IN_FORCE) == "GTX"
    )


def takes_liquidity(side: Side, price: float, touch: float | None) -> bool:
    """Whether a limit at ``price`` meets ``touch`` (the best ask for a buy, bid for a sell) on arrival."""
    if touch is None:
        return False
    return price >= touch if side is Side.BUY else price <= touch


@dataclass(frozen=True, slots=True)
class ServiceOrder:
    """One order as ``order.OrderService`` reports it; ``reason`` is what ``error_message`` says."""

    order_id: str
    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: int
    type: int
    state: int
    time_in_force: int
    quantity: float
    price: float
    stop_price: float
    filled_quantity: float
    average_price: float
    fee: float
    fee_asset: str
    created_ns: int
    updated_ns: int
    user_id: str
    reduce_only: bool
    post_only: bool
    reason: str = ""

    @property
    def working(self) -> bool:
        return self.state in (pb.NEW, pb.SUBMITTED, pb.PARTIALLY_FILLED)

    def filled(self, filled: float, notional: float, fee_rate: float, done: bool, at_ns: int) -> ServiceOrder:
        """This order after a fill: ``filled``/``notional`` are its cumulative quantity and price x quantity."""
        average = notional / filled if filled > 0 else 0.0
        return replace(
            self, state=pb.FILLED if done else pb.PARTIALLY_FILLED, filled_quantity=filled, average_price=average,
            fee=fee_rate * average * filled, fee_asset=FEE_ASSET if filled > 0 else "", updated_ns=at_ns,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServiceUpdate:
    """One ``OrderUpdate``: CREATED, UPDATED, FILLED, CANCELED or REJECTED."""

    order: ServiceOrder
    update_type: str
    timestamp_ns: int


def service_order(state: OrderState, fee_rate: float) -> ServiceOrder:
    """The order the matching engine holds, as the service reports it."""
    intent = state.intent
    meta = intent.metadata
    kind = pb.OrderType.Value(meta[META_TYPE]) if META_TYPE in meta else TYPE_TO_PB[intent.order_type]
    tif = (
        pb.TimeInForce.Value(meta[META_TIME_IN_FORCE]) if META_TIME_IN_FORCE in meta
        else TIF_TO_PB[intent.time_in_force]
    )  # fmt: skip
    filled, average = state.filled_quantity, state.average_price
    rejected = state.status is OrderStatus.REJECTED
    return ServiceOrder(
        order_id=state.venue_order_id, client_order_id=intent.client_order_id,
        exchange_order_id="" if rejected else state.venue_order_id, symbol=intent.symbol,
        side=pb.BUY if intent.side is Side.BUY else pb.SELL, type=kind, state=_STATES[state.status],
        time_in_force=tif, quantity=intent.quantity, price=intent.price or 0.0, stop_price=intent.stop_price or 0.0,
        filled_quantity=filled, average_price=average, fee=fee_rate * average * filled,
        fee_asset=FEE_ASSET if filled > 0 else "", created_ns=intent.created_ns,
        updated_ns=max(state.updated_ns, intent.created_ns), user_id=intent.strategy,
        reduce_only=intent.reduce_only, post_only=meta.get(META_POST_ONLY) == "true", reason=state.reason,
    )  # fmt: skip


def rejected_order(
    request: pb.CreateOrderRequest, client_order_id: str, order_id: str, now_ns: int, reason: str
) -> ServiceOrder:
    """A request the venue refused before matching, as the REJECTED order it reports."""
    return ServiceOrder(
        order_id=order_id, client_order_id=client_order_id, exchange_order_id="", symbol=request.symbol,
        side=request.side, type=request.type, state=pb.REJECTED, time_in_force=request.time_in_force,
        quantity=request.quantity, price=request.price, stop_price=request.stop_price, filled_quantity=0.0,
        average_price=0.0, fee=0.0, fee_asset="", created_ns=now_ns, updated_ns=now_ns, user_id=request.user_id,
        reduce_only=request.reduce_only, post_only=request.post_only, reason=reason,
    )  # fmt: skip


def order_pb(order: ServiceOrder) -> pb.Order:
    return pb.Order(
        order_id=order.order_id, client_order_id=order.client_order_id, symbol=order.symbol, side=order.side,  # type: ignore[arg-type]  # numbers, not the stub's enum type
        type=order.type, state=order.state, time_in_force=order.time_in_force,  # type: ignore[arg-type]
        quantity=order.quantity, price=order.price, stop_price=order.stop_price,
        filled_quantity=order.filled_quantity, average_price=order.average_price, fee=order.fee,
        fee_asset=order.fee_asset, created_at=wire_time(order.created_ns), updated_at=wire_time(order.updated_ns),
        user_id=order.user_id, reduce_only=order.reduce_only, post_only=order.post_only,
        exchange_order_id=order.exchange_order_id,
    )  # fmt: skip


def update_pb(update: ServiceUpdate) -> pb.OrderUpdate:
    return pb.OrderUpdate(
        order=order_pb(update.order), update_type=update.update_type, timestamp=wire_time(update.timestamp_ns)
    )


def update_json(update: ServiceUpdate) -> dict[str, Any]:
    """The update as b25 publishes it on ``orders.updates.<SYMBOL>`` (keys in its Go struct's order)."""
    return {"order": _order_json(update.order), "update_type": update.update_type,
            "timestamp": format_timestamp(update.timestamp_ns)}  # fmt: skip


def _order_json(order: ServiceOrder) -> dict[str, Any]:
    body: dict[str, Any] = {"order_id": order.order_id}
    if order.client_order_id:  # omitempty, as the four below
        body["client_order_id"] = order.client_order_id
    if order.exchange_order_id:
        body["exchange_order_id"] = order.exchange_order_id
    body |= {
        "symbol": order.symbol, "side": _name(pb.OrderSide, order.side), "type": _name(pb.OrderType, order.type),
        "state": _name(pb.OrderState, order.state), "time_in_force": _name(pb.TimeInForce, order.time_in_force),
        "quantity": order.quantity,
    }  # fmt: skip
    if order.price:
        body["price"] = order.price
    if order.stop_price:
        body["stop_price"] = order.stop_price
    body |= {
        "filled_quantity": order.filled_quantity, "average_price": order.average_price, "fee": order.fee,
        "fee_asset": order.fee_asset, "created_at": format_timestamp(order.created_ns),
        "updated_at": format_timestamp(order.updated_ns), "user_id": order.user_id,
        "reduce_only": order.reduce_only, "post_only": order.post_only,
    }  # fmt: skip
    return body

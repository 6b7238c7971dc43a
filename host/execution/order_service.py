"""``OrderServiceVenue``: the live ``Venue`` for b25's ``order.OrderService`` (``grpc.protocol: order-service``).

What b25 actually runs at :50051 (``proto/order_service.proto``). The connection (one grpc.aio
channel, retries with the same request, the connection breaker, ``watch`` and its probe) is
``GrpcVenue``'s; what differs is the protocol:

- ``submit``: ``CreateOrder`` with the engine's client order id as ``client_order_id``, so a retry
  after a lost reply is recognised by the service and answered with the existing order.
  ``CreateOrderResponse`` carries the order's state but no quantities: fills come from updates.
- ``cancel``: ``CancelOrder`` by the venue's order id and the symbol. When the engine does not know
  the venue's id yet (the reply of the create was lost) it is looked up by client order id first.
- ``status``: ``GetOrder`` by the venue's id, else ``GetOrders`` of the symbol searched for the
  client order id. NOT_FOUND, or no such order, is "never seen" (``status is None``). The search
  sees what ``GetOrders`` returns with no limit given (the service's own cap): an order older than
  that window reads as never seen, and the engine then closes it or sends it again only as its
  ledger allows (``ExecutionEngine._settle``).
- Order updates: ``StreamOrderUpdates`` (``user_id`` = ``grpc.userId``, every symbol) for as long as
  ``watch`` runs, each handed to ``on_update`` as a ``VenueReply`` with the order's cumulative filled
  quantity, average price and fee. The engine derives fills from those cumulative figures (the
  difference from the fills it holds, stored once). A broken stream is opened again after a pause;
  updates missed meanwhile are caught by the reconciliation a reconnect triggers. Because the
  updates are the fills' source, a fill of one of the engine's orders arriving on
  ``nats.fillSubject`` as well is not taken (``fills_from_updates``): it would count twice.

States: NEW and SUBMITTED are ``ACCEPTED``; PARTIALLY_FILLED, FILLED, CANCELED (``CANCELLED``),
REJECTED and EXPIRED map one to one; STATE_UNSPECIFIED cannot be read (ambiguous, as for an
unreadable status of the other protocol). Timestamps (``timestamp``, ``updated_at``) are read as
Unix seconds, milliseconds, microseconds or nanoseconds by their size (``sdk.codec``'s rule); b25's
service sends seconds (Go's ``time.Time.Unix()``), and so does the paper venue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import structlog

from engine_proto import order_service_pb2 as pb
from engine_proto.order_service_pb2_grpc import OrderServiceStub
from host.clock import Clock
from host.config import GrpcConfig
from host.execution.grpc_venue import GrpcVenue
from host.execution.venue import VenueReply
from host.orders import OrderIntent, OrderStatus
from sdk.events import OrderType, Side, TimeInForce

__all__ = ["OrderServiceVenue", "order_reply"]

log = structlog.get_logger("host.execution.order_service")

OnUpdate = Callable[[VenueReply], None]

_STATES: dict[int, OrderStatus] = {
    pb.NEW: OrderStatus.ACCEPTED, pb.SUBMITTED: OrderStatus.ACCEPTED,
    pb.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED, pb.FILLED: OrderStatus.FILLED,
    pb.CANCELED: OrderStatus.CANCELLED, pb.REJECTED: OrderStatus.REJECTED, pb.EXPIRED: OrderStatus.EXPIRED,
}  # fmt: skip
_SIDES = {Side.BUY: pb.BUY, Side.SELL: pb.SELL}
_TYPES = {
    OrderType.MARKET: pb.MARKET, OrderType.LIMIT: pb.LIMIT, OrderType.STOP: pb.STOP_MARKET,
    OrderType.STOP_LIMIT: pb.STOP_LIMIT,
}  # fmt: skip
_TIFS = {TimeInForce.GTC: pb.GTC, TimeInForce.IOC: pb.IOC, TimeInForce.FOK: pb.FOK}
_STREAM_RETRY_S = 1.0


def epoch_ns(value: int) -> int:
    """A Unix timestamp in s, ms, µs or ns (told apart by size) as nanoseconds; 0 stays 0."""
    if value <= 0:
        return 0
    if value < 10**11:  # seconds until the year 5138 (milliseconds that small would be before 1973)
        return value * 1_000_000_000
    if value < 10**14:  # milliseconds until the year 5138
        return value * 1_000_000
    if value < 10**17:
        return value * 1_000
    return value


def create_request(intent: OrderIntent, user_id: str) -> pb.CreateOrderRequest:
    return pb.CreateOrderRequest(
        symbol=intent.symbol, side=_SIDES[intent.side], type=_TYPES[intent.order_type], quantity=intent.quantity,
        price=intent.price or 0.0, stop_price=intent.stop_price or 0.0, time_in_force=_TIFS[intent.time_in_force],
        client_order_id=intent.client_order_id, reduce_only=intent.reduce_only, user_id=user_id,
    )  # fmt: skip


def order_reply(order: pb.Order) -> VenueReply:
    """An ``Order`` as the engine's reply: state, ids and cumulative quantities and fee.

    Raises ``ValueError`` for a state it cannot read (STATE_UNSPECIFIED or a number it does not know).
    """
    status = _STATES.get(order.state)
    if status is None:
        raise ValueError(f"order {order.order_id!r}: unreadable state {order.state}")
    return VenueReply(
        order.client_order_id, status, order.order_id, order.filled_quantity, order.average_price,
        timestamp_ns=epoch_ns(order.updated_at), fee=order.fee,
    )  # fmt: skip


class OrderServiceVenue(GrpcVenue):
    """A ``Venue`` over b25's ``order.OrderService``; order updates go to ``on_update``."""

    name = "order-service"
    stub_class = OrderServiceStub
    fills_from_updates = True  # the engine takes no other report of these orders' fills (NATS fills)

    def __init__(self, config: GrpcConfig, clock: Clock, on_update: OnUpdate | None = None) -> None:
        super().__init__(config, clock)
        self.on_update = on_update
        self.updates = 0  # order updates received on the stream
        self.unreadable_updates = 0

    # ------------------------------------------------------------------ Venue

    async def submit(self, intent: OrderIntent) -> VenueReply:
        cid = intent.client_order_id
        response = await self._call("submit", cid, "CreateOrder", create_request(intent, self.config.user_id))
        status = self._state("submit", cid, response.state)
        return VenueReply(cid, status, response.order_id, message=response.error_message,
                          timestamp_ns=epoch_ns(response.timestamp))  # fmt: skip

    async def cancel(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> VenueReply:
        found = None
        if not venue_order_id:
            found = await self.status(client_order_id, "", symbol)
            if not found.known:
                return found
            venue_order_id = found.venue_order_id
        request = pb.CancelOrderRequest(order_id=venue_order_id, symbol=symbol)
        response = await self._call("cancel", client_order_id, "CancelOrder", request, missing_ok=True)
        if response is None:
            return VenueReply.unknown(client_order_id)
        status = self._state("cancel", client_order_id, response.state)
        if status is not OrderStatus.CANCELLED:
            return await self.status(client_order_id, venue_order_id, symbol)  # with its quantities
        return VenueReply(client_order_id, status, response.order_id or venue_order_id,
                          message=response.error_message, timestamp_ns=epoch_ns(response.timestamp))  # fmt: skip

    async def status(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> VenueReply:
        if venue_order_id:
            request = pb.GetOrderRequest(order_id=venue_order_id)
            response = await self._call("status", client_order_id, "GetOrder", request, missing_ok=True)
            if response is not None and response.HasField("order"):
                return self._reply("status", client_order_id, response.order)
        listed = await self._call("status", client_order_id, "GetOrders", pb.GetOrdersRequest(symbol=symbol))
        for order in listed.orders:
            if order.client_order_id == client_order_id:
                return self._reply("status", client_order_id, order)
        return VenueReply.unknown(client_order_id)

    async def watch(self, on_back: Callable[[], None]) -> None:
        """The connection, as ``GrpcVenue.watch``, and beside it the order-update stream."""
        stream = asyncio.ensure_future(self._stream())
        try:
            await super().watch(on_back)
        finally:
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    async def _probe_call(self, stub: Any) -> None:
        await stub.GetOrder(pb.GetOrderRequest(order_id=""), timeout=self.config.timeout)

    async def _stream(self) -> None:
        """Read ``StreamOrderUpdates`` until cancelled, opening it again after a pause when it breaks."""
        request = pb.StreamOrderUpdatesRequest(user_id=self.config.user_id)
        while True:
            try:
                async for update in self._stubs().StreamOrderUpdates(request):
                    self._update(update)
            except grpc.aio.AioRpcError as error:
                log.info("order_stream_broken", venue=self.name, code=error.code().name)
            await asyncio.sleep(_STREAM_RETRY_S)

    def _update(self, update: pb.OrderUpdate) -> None:
        self.updates += 1
        try:
            reply = order_reply(update.order)
        except ValueError as error:
            self.unreadable_updates += 1
            log.warning("order_update_unreadable", venue=self.name, reason=str(error))
            return
        if self.on_update is not None and reply.client_order_id:
            self.on_update(reply)

    def _state(self, operation: str, cid: str, state: int) -> OrderStatus:
        status = _STATES.get(state)
        if status is None:
            raise self._ambiguous(operation, cid, f"unreadable order state {state}")
        return status

    def _reply(self, operation: str, cid: str, order: pb.Order) -> VenueReply:
        try:
            return order_reply(order)
        except ValueError as error:
            raise self._ambiguous(operation, cid, str(error)) from error

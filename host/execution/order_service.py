"""``OrderServiceVenue``: the live ``Venue`` for b25's ``order.OrderService`` (``grpc.protocol: order-service``).

What b25 actually runs at :50051 (``proto/order_service.proto``). The connection (one grpc.aio
channel, retries with the same request, the connection breaker, ``watch`` and its probe) is
``GrpcVenue``'s; what differs is the protocol:

- ``submit``: ``CreateOrder`` with the engine's client order id as ``client_order_id``, sent once.
  b25's service does not recognise a repeated ``client_order_id`` (the paper venue does), so a
  failure after the request may have left (a timeout, a connection lost mid-call) is ambiguous:
  the engine looks the order up by its client order id (``status``) and sends it again only if it
  is not there. A connection that was never made is retried; INVALID_ARGUMENT or
  FAILED_PRECONDITION (b25's answer to a request it refuses) is a rejection. A GTC market order
  goes as IOC (b25 refuses GTC market orders). ``CreateOrderResponse`` carries the order's state
  but no quantities: fills come from updates.
- ``cancel``: ``CancelOrder`` by the venue's order id and the symbol. When the engine does not know
  the venue's id yet (the reply of the create was lost) it is looked up by client order id first.
  An INTERNAL / FAILED_PRECONDITION answer (b25's for an order that is no longer working) is
  followed by ``status``, which says what the order is.
- ``status``: ``GetOrder`` by the venue's id, else ``GetOrders`` of the symbol searched for the
  client order id. NOT_FOUND, or no such order, is "never seen" (``status is None``). The search
  sees what ``GetOrders`` returns with no limit given (the service's own cap): an order older than
  that window reads as never seen, and the engine then closes it or sends it again only as its
  ledger allows (``ExecutionEngine._settle``).
- Order updates: ``StreamOrderUpdates`` (``user_id`` = ``grpc.userId``, every symbol) for as long as
  ``watch`` runs, each handed to ``on_update`` as a ``VenueReply`` with the order's cumulative filled
  quantity, average price and fee. The engine derives fills from those cumulative figures (the
  difference from the fills it holds, stored once). A broken stream is opened again after a pause;
  updates missed meanwhile are caught by the reconciliation a reconnect triggers. Fill reports of
  the same executions on ``nats.fillSubject`` (the paper venue publishes both) are taken too, and
  the ledger counts each execution once whichever comes first (``Ledger.record_missing_fill``):
  the reports are what remains when a venue without durable state dies with updates undelivered.

States: NEW and SUBMITTED are ``ACCEPTED``; PARTIALLY_FILLED, FILLED, CANCELED (``CANCELLED``),
REJECTED and EXPIRED map one to one; STATE_UNSPECIFIED cannot be read (ambiguous, as for an
unreadable status of the other protocol). Timestamps (``timestamp``, ``updated_at``) are read as
Unix seconds, milliseconds, microseconds or nanoseconds by their size (``sdk._codec``'s rule); b25's
service sends seconds (Go's ``time.Time.Unix()``), and so does the paper venue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import grpc
import structlog

from engine_proto import order_service_pb2 as pb
from engine_proto.order_service_pb2_grpc import OrderServiceStub
from host.clock import Clock
from host.config import GrpcConfig
from host.execution.grpc_venue import GrpcVenue
from host.execution.paper_order_wire import SIDE_TO_PB, TIF_TO_PB, TYPE_TO_PB
from host.execution.venue import VenueReply
from host.orders import OrderIntent, OrderStatus
from sdk.events import OrderType, TimeInForce

__all__ = ["OrderServiceVenue", "order_reply"]

log = structlog.get_logger("host.execution.order_service")

OnUpdate = Callable[[VenueReply], None]

_STATES: dict[int, OrderStatus] = {
    pb.NEW: OrderStatus.ACCEPTED, pb.SUBMITTED: OrderStatus.ACCEPTED,
    pb.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED, pb.FILLED: OrderStatus.FILLED,
    pb.CANCELED: OrderStatus.CANCELLED, pb.REJECTED: OrderStatus.REJECTED, pb.EXPIRED: OrderStatus.EXPIRED,
}  # fmt: skip
_REFUSED = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
_CANCEL_REFUSED = (grpc.StatusCode.INTERNAL, grpc.StatusCode.FAILED_PRECONDITION)
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
    """The request for an intent. A GTC market order goes as IOC: b25's validator
    refuses a market order that is GTC (what the SDK's default would send), and a market order
    takes what is there now either way."""
    tif = intent.time_in_force
    if intent.order_type is OrderType.MARKET and tif is TimeInForce.GTC:
        tif = TimeInForce.IOC
    return pb.CreateOrderRequest(
        symbol=intent.symbol, side=SIDE_TO_PB[intent.side], type=TYPE_TO_PB[intent.order_type],
        quantity=intent.quantity, price=intent.price or 0.0, stop_price=intent.stop_price or 0.0,
        time_in_force=TIF_TO_PB[tif],
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
    streams_orders = True  # every order's venue id arrives on the stream: no guessing whose a fill is

    def __init__(self, config: GrpcConfig, clock: Clock, on_update: OnUpdate | None = None) -> None:
        super().__init__(config, clock)
        self.on_update = on_update
        self.updates = 0  # order updates received on the stream
        self.unreadable_updates = 0

    # ------------------------------------------------------------------ Venue

    async def submit(self, intent: OrderIntent) -> VenueReply:
        """CreateOrder, sent once: a repeat is safe only if the service recognises the client order id
        (b25's does not), so any failure after the request may have left is ambiguous and resolved
        by looking the order up. INVALID_ARGUMENT / FAILED_PRECONDITION (b25's answer to a request it
        refuses) is a rejection: nothing was placed."""
        cid = intent.client_order_id
        request = create_request(intent, self.config.user_id)
        response = await self._call("submit", cid, "CreateOrder", request, refusals=_REFUSED, resend_safe=False)
        if isinstance(response, grpc.aio.AioRpcError):
            return VenueReply(cid, OrderStatus.REJECTED, message=f"{response.code().name}: {response.details()}")
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
        response = await self._call("cancel", client_order_id, "CancelOrder", request, missing_ok=True,
                                    refusals=_CANCEL_REFUSED)  # fmt: skip
        if response is None:
            return VenueReply.unknown(client_order_id)
        if isinstance(response, grpc.aio.AioRpcError):  # b25 answers INTERNAL for a terminal order: ask
            return await self.status(client_order_id, venue_order_id, symbol)
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

    async def watch(self, on_back: Callable[[str], None]) -> None:
        """The connection, as ``GrpcVenue.watch``, and beside it the order-update stream."""
        stream = asyncio.ensure_future(self._stream(on_back))
        try:
            await super().watch(on_back)
        finally:
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    async def _probe_call(self, stub: Any) -> None:
        await stub.GetOrder(pb.GetOrderRequest(order_id=""), timeout=self.config.timeout)

    async def _stream(self, on_back: Callable[[str], None]) -> None:
        """Read ``StreamOrderUpdates`` until cancelled, opening it again when it breaks (after
        ``grpc.retryBackoff``, doubling up to 1 s while it cannot be opened).

        Each time it opens, ``on_back`` has the engine reconcile: updates published before the
        subscription existed (the first one, or while it was broken) are not replayed by the
        service, so the orders' state is read instead. The reconciliation's queries are sent after
        the stream's request, so what changes after them arrives on the stream.
        """
        request = pb.StreamOrderUpdatesRequest(user_id=self.config.user_id)
        pause = self.config.retry_backoff
        while True:
            try:
                call = self._stubs().StreamOrderUpdates(request)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.timeout):
                        await call.initial_metadata()  # the service has the subscription
                on_back("order_stream_opened")
                pause = self.config.retry_backoff
                async for update in call:
                    self._update(update)
            except grpc.aio.AioRpcError as error:
                log.info("order_stream_broken", venue=self.name, code=error.code().name, retry_s=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _STREAM_RETRY_S)

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

"""``PaperOrderService``: b25's ``order.OrderService`` served over a ``MatchingEngine`` (paper matching).

The same matching, market data and fills as ``PaperVenueServer`` (``orderexecution``), under the
other protocol: one asyncio loop calls the engine synchronously from the RPC handlers and from
``on_market(event)`` (whoever owns the feed calls it). Fills go through ``PaperFills`` (per-user
positions, ``fill_sink(fill, position)``: ``trading.fills`` / ``trading.positions``); every change
of every order becomes a ``ServiceUpdate``, handed to ``update_sink`` (``orders.updates.<SYMBOL>``
on NATS) and queued for the ``StreamOrderUpdates`` subscribers that want it. Wire conventions
(enums, states, times in Unix seconds, b25's JSON) are ``host.execution.paper_order_wire``'s.

CreateOrder. ``client_order_id`` is the matching engine's client order id (empty: one is generated).
An id the venue holds (any state, rejected included; a finished order is held for the matching
engine's window) is answered with that order and nothing else happens: that is how a client's retry
after a lost reply is recognised. A request the venue cannot take is not a gRPC error: it becomes a
REJECTED order (an order id, a REJECTED update) whose ``error_message`` names the field (``side:
required: BUY or SELL, got SIDE_UNSPECIFIED``); so is a post-only order that would take liquidity on
arrival (``post_only: a BUY at 101 would take liquidity (best ask 101)``). ``reduce_only`` is
recorded and reported, not enforced. The response is the order after arrival: SUBMITTED (resting),
PARTIALLY_FILLED, FILLED, CANCELED (an IOC/FOK remainder) or REJECTED; ``timestamp`` is its
``created_at``.

Ids. ``order_id`` is the venue's order id. CancelOrder and GetOrder also take a client order id in
``order_id`` (a paper-venue convenience: b25 knows orders by its own id only); a venue id wins
when an id is both. An id the venue does not hold is gRPC NOT_FOUND; so is a CancelOrder whose
``symbol`` (when given) is not the order's.

CancelOrder answers the order's state after the cancel: CANCELED, with no ``error_message`` when
this call cancelled it; otherwise its terminal state and ``order is FILLED: nothing to cancel``.

GetOrders filters by ``symbol`` ("" = all), ``state`` (STATE_UNSPECIFIED = any) and ``created_at``
within [``start_time``, ``end_time``] (Unix seconds, inclusive; 0 = unbounded); newest first, at
most ``limit`` (0 = ``DEFAULT_LIMIT`` 1000; above ``MAX_LIMIT`` 10000, 10000); a negative limit is
INVALID_ARGUMENT. It sees what the venue holds: the matching engine's orders (working ones, and
finished ones within its window of recently finished orders: ``host.execution.matching``) and the
last ``keep_rejected`` orders refused before matching.

Update types (b25 lists CREATED, UPDATED, FILLED, CANCELED, REJECTED), one update per change, in
the order things happened:

- CREATED: the order was accepted (state SUBMITTED, nothing filled): first, once per order;
- UPDATED: a fill that leaves some quantity open (state PARTIALLY_FILLED);
- FILLED: the fill that completes it (state FILLED); every fill is thus one update, carrying the
  order's cumulative ``filled_quantity``, ``average_price`` and ``fee`` after that fill;
- CANCELED: it ended without filling completely: cancelled on request, or an IOC/FOK remainder;
- REJECTED: refused on arrival (its only update).

On NATS a fill's ``trading.fills`` and ``trading.positions`` messages come before its order update.

Streams. ``StreamOrderUpdates(user_id, symbols)`` sends every update from the moment it subscribes
(no replay: GetOrders first, then stream) whose order has that ``user_id`` ("" = every user) and one
of ``symbols`` (none, or "", = every symbol). Each subscriber has a bounded queue
(``stream_queue`` updates, default 4096; ``UpdateHub``): a subscriber that falls that far behind
is cut off, its queue freed, and its stream ends with RESOURCE_EXHAUSTED (after what its client
had already been sent); it reconnects and catches up with GetOrders. ``stop()`` ends every stream
cleanly (status OK) before the server stops.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
import structlog

from engine_proto import order_service_pb2 as pb
from engine_proto.order_service_pb2_grpc import add_OrderServiceServicer_to_server
from host.execution.matching import MatchingEngine, MatchResult
from host.execution.oms_wire import WireError
from host.execution.paper_order_wire import (
    ServiceOrder,
    ServiceUpdate,
    is_post_only,
    order_pb,
    rejected_order,
    request_to_intent,
    service_order,
    takes_liquidity,
    update_pb,
    wire_time,
)
from host.execution.paper_shell import PaperFills, PositionSink, serve_grpc
from host.execution.update_hub import UpdateHub
from host.orders import OrderIntent, OrderStatus, new_client_order_id
from sdk._positions import PositionBook
from sdk.events import Fill, MarketEvent, Side, TimeInForce

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "OrderServiceStats", "PaperOrderService", "UpdateSink"]

log = structlog.get_logger("host.execution.paper_order_service")

UpdateSink = Callable[[ServiceUpdate], None]
DEFAULT_LIMIT = 1000  # GetOrders with limit 0
MAX_LIMIT = 10_000  # the most one GetOrders answer holds
_ENDED = {OrderStatus.CANCELLED: "CANCELED", OrderStatus.EXPIRED: "CANCELED", OrderStatus.REJECTED: "REJECTED"}


@dataclass(slots=True)
class OrderServiceStats:
    """Counters of one ``PaperOrderService``."""

    created: int = 0  # orders accepted by matching
    duplicates: int = 0  # CreateOrders answered with an order already held
    rejected: int = 0  # CreateOrders answered REJECTED (by the wire, post-only, or matching)
    updates: int = 0  # order updates made
    update_sink_errors: int = 0
    fills: int = 0
    sink_errors: int = 0


@dataclass(slots=True)
class _Live:
    """An accepted order that may still change: its cumulative fill, summed as the engine sums it."""

    order: ServiceOrder
    filled: float = 0.0
    notional: float = 0.0


class PaperOrderService:
    """A paper ``order.OrderService`` on a real gRPC server; see the module docstring."""

    def __init__(
        self,
        engine: MatchingEngine,
        *,
        address: str = "127.0.0.1:0",  # host:port; port 0 picks a free one (see ``address`` after start)
        fill_sink: PositionSink | None = None,  # gets (fill, the user's position after it)
        update_sink: UpdateSink | None = None,  # gets every order update (NATS orders.updates.<SYMBOL>)
        stream_queue: int = 4096,  # updates a stream subscriber may fall behind before it is cut off
        keep_rejected: int = 10_000,  # orders refused before matching that GetOrder/retries still find
    ) -> None:
        self.engine = engine
        self._bind = address
        self._update_sink = update_sink
        self._keep_rejected = keep_rejected
        self._server: Any = None
        self.address = ""
        self.stats = OrderServiceStats()
        self.hub: UpdateHub[pb.OrderUpdate] = UpdateHub(stream_queue)
        self._fills = PaperFills(fill_sink, self.stats)
        self._live: dict[str, _Live] = {}  # client order id -> accepted order not yet terminal
        self._waiting: dict[str, set[str]] = {}  # symbol -> IOC/FOK orders waiting for a trigger or a price
        self._rejected: OrderedDict[str, ServiceOrder] = OrderedDict()  # client order id -> refused before matching
        self._rejected_ids: dict[str, str] = {}  # its order id -> client order id
        self._rejections = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Bind and serve; return the bound ``host:port``."""

        def register(server: Any) -> None:
            add_OrderServiceServicer_to_server(self, server)  # type: ignore[no-untyped-call]  # generated, untyped

        self._server, self.address = await serve_grpc(self._bind, register)
        log.info("paper_order_service_serving", address=self.address)
        return self.address

    async def stop(self, grace: float | None = None) -> None:
        """End every update stream cleanly, then stop the server (handlers left after ``grace`` are cancelled)."""
        self.hub.close()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
            log.info("paper_order_service_stopped", address=self.address)

    def on_market(self, event: MarketEvent) -> None:
        fills = self.engine.on_market(event)
        touched = self._apply_fills(fills)
        self._settle([*touched, *self._waiting.get(event.symbol, ())])

    def positions(self, user_id: str) -> PositionBook:
        return self._fills.positions(user_id)

    # ------------------------------------------------------------------ order.OrderService

    # Method names are the service's, as the generated servicer registration looks them up.

    async def CreateOrder(self, request: pb.CreateOrderRequest, context: Any) -> pb.CreateOrderResponse:
        now = self.engine.clock.time_ns()
        client_order_id = request.client_order_id or new_client_order_id()
        held = self._held_order(client_order_id)
        if held is not None:
            self.stats.duplicates += 1
            log.info("paper_order_duplicate", client_order_id=client_order_id, order_id=held.order_id)
            return _create_response(held)
        try:
            intent = request_to_intent(request, client_order_id, now)
        except WireError as error:
            return _create_response(self._refuse(request, client_order_id, now, f"{error.field}: {error.reason}"))
        crossing = self._crossing(intent)
        if crossing:
            return _create_response(self._refuse(request, client_order_id, now, crossing))
        return _create_response(self._arrive(self.engine.submit(intent)))

    async def CancelOrder(self, request: pb.CancelOrderRequest, context: Any) -> pb.CancelOrderResponse:
        order = self._find(request.order_id)
        if order is None or (request.symbol and request.symbol.upper() != order.symbol.upper()):
            await _not_found(context, request.order_id, request.symbol)
        assert order is not None  # _not_found raised
        message = ""
        if order.working:
            self.engine.cancel(order.client_order_id)
            self._settle([order.client_order_id])
            order = self._find(order.client_order_id) or order
        else:
            message = f"order is {pb.OrderState.Name(order.state)}: nothing to cancel"
        return pb.CancelOrderResponse(order_id=order.order_id, state=order.state,  # type: ignore[arg-type]
                                      timestamp=wire_time(order.updated_ns), error_message=message)  # fmt: skip

    async def GetOrder(self, request: pb.GetOrderRequest, context: Any) -> pb.GetOrderResponse:
        order = self._find(request.order_id)
        if order is None:
            await _not_found(context, request.order_id)
        assert order is not None  # _not_found raised
        return pb.GetOrderResponse(order=order_pb(order))

    async def GetOrders(self, request: pb.GetOrdersRequest, context: Any) -> pb.GetOrdersResponse:
        if request.limit < 0:
            reason = f"limit: must be >= 0 (0: {DEFAULT_LIMIT}), got {request.limit}"
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, reason)
        limit = min(request.limit or DEFAULT_LIMIT, MAX_LIMIT)
        matching = [order for order in self._held() if _selected(order, request)]
        return pb.GetOrdersResponse(orders=[order_pb(order) for order in reversed(matching[-limit:])])

    async def StreamOrderUpdates(self, request: pb.StreamOrderUpdatesRequest, context: Any) -> None:
        subscriber = self.hub.subscribe(request.user_id, request.symbols)
        await context.send_initial_metadata(())  # the client knows its subscription is in place
        task = asyncio.current_task()
        log.info("paper_order_stream_opened", user_id=request.user_id, symbols=list(request.symbols),
                 subscribers=len(self.hub))  # fmt: skip
        try:
            while (update := await subscriber.next()) is not None:
                subscriber.writing(task)
                try:
                    await context.write(update)
                finally:
                    subscriber.writing(None)
        except asyncio.CancelledError:
            if not subscriber.cut or task is None:
                raise
            task.uncancel()  # the hub cancelled a write its client would not take: end the call below
        finally:
            self.hub.unsubscribe(subscriber)
        if not subscriber.cut:
            return
        log.warning("paper_order_stream_cut", user_id=request.user_id, backlog=subscriber.backlog,
                    queue_size=self.hub.queue_size)  # fmt: skip
        if not context.cancelled():  # a client that has gone cannot be told
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"stream cut off: it fell {subscriber.backlog} order updates behind (at most "
                f"{self.hub.queue_size} wait); subscribe again and catch up with GetOrders",
            )

    # ------------------------------------------------------------------ arrivals

    def _crossing(self, intent: OrderIntent) -> str:
        """Why a post-only order may not be placed now (it would take liquidity), or ""."""
        if not is_post_only(intent) or intent.price is None:
            return ""
        touch = self.engine.touch(intent.symbol, intent.side)
        if not takes_liquidity(intent.side, intent.price, touch):
            return ""
        best = "best ask" if intent.side is Side.BUY else "best bid"
        return f"post_only: a {intent.side.value.upper()} at {intent.price:g} would take liquidity ({best} {touch:g})"

    def _refuse(self, request: pb.CreateOrderRequest, client_order_id: str, now: int, reason: str) -> ServiceOrder:
        self._rejections += 1
        order = rejected_order(request, client_order_id, f"{self.engine.id_prefix}R{self._rejections}", now, reason)
        self._rejected[client_order_id] = order
        self._rejected_ids[order.order_id] = client_order_id
        while len(self._rejected) > self._keep_rejected:
            _, forgotten = self._rejected.popitem(last=False)
            self._rejected_ids.pop(forgotten.order_id, None)
        self.stats.rejected += 1
        log.info("paper_order_rejected", client_order_id=client_order_id, reason=reason)
        self._emit("REJECTED", order, now)
        return order

    def _arrive(self, result: MatchResult) -> ServiceOrder:
        state = result.order
        order = service_order(state, self.engine.fee_rate)
        if state.status is OrderStatus.REJECTED:
            self.stats.rejected += 1
            log.info("paper_order_rejected", client_order_id=order.client_order_id, reason=state.reason)
            self._emit("REJECTED", order, order.updated_ns)
            return order
        self.stats.created += 1
        accepted = replace(order, state=pb.SUBMITTED, filled_quantity=0.0, average_price=0.0, fee=0.0, fee_asset="",
                           updated_ns=order.created_ns, reason="")  # fmt: skip
        self._live[order.client_order_id] = _Live(accepted)
        self._emit("CREATED", accepted, order.created_ns)
        if state.intent.time_in_force is not TimeInForce.GTC and state.working:
            self._waiting.setdefault(order.symbol, set()).add(order.client_order_id)
        self._settle([*self._apply_fills(result.fills), order.client_order_id])
        return self._find(order.client_order_id) or order

    # ------------------------------------------------------------------ changes

    def _apply_fills(self, fills: Iterable[Fill]) -> list[str]:
        """Publish each fill and its order's update; return the client order ids that filled."""
        fills = list(fills)
        last = {fill.order_id: index for index, fill in enumerate(fills)}
        touched: list[str] = []
        for index, fill in enumerate(fills):
            self._fills.publish((fill,))
            client_order_id = self.engine.client_order_id(fill.order_id)
            live = None if client_order_id is None else self._live.get(client_order_id)
            if live is None or client_order_id is None:
                continue  # not an order this service placed (the engine is shared with nothing else)
            live.filled += fill.quantity
            live.notional += fill.price * fill.quantity
            final = self.engine.status(client_order_id) if last[fill.order_id] == index else None
            done = final is not None and final.status is OrderStatus.FILLED
            order = live.order.filled(live.filled, live.notional, self.engine.fee_rate, done, fill.timestamp_ns)
            self._emit("FILLED" if done else "UPDATED", order, fill.timestamp_ns)
            touched.append(client_order_id)
        return touched

    def _settle(self, client_order_ids: Iterable[str]) -> None:
        """Orders that may have ended: those that did leave the live set (CANCELED updates for the unfilled)."""
        for client_order_id in dict.fromkeys(client_order_ids):
            live = self._live.get(client_order_id)
            state = self.engine.status(client_order_id)
            if live is None or (state is not None and state.working):
                continue
            del self._live[client_order_id]
            self._waiting.get(live.order.symbol, set()).discard(client_order_id)
            ended = None if state is None else _ENDED.get(state.status)
            if state is not None and ended is not None:
                self._emit(ended, service_order(state, self.engine.fee_rate), state.updated_ns)

    def _emit(self, update_type: str, order: ServiceOrder, at_ns: int) -> None:
        update = ServiceUpdate(order, update_type, at_ns)
        self.stats.updates += 1
        if self.hub.wanted(order.user_id, order.symbol):
            self.hub.publish(update_pb(update), order.user_id, order.symbol)
        if self._update_sink is None:
            return
        try:
            self._update_sink(update)
        except Exception:
            self.stats.update_sink_errors += 1
            log.exception("paper_order_update_sink_failed", order_id=order.order_id, update_type=update_type)

    # ------------------------------------------------------------------ queries

    def _find(self, order_id: str) -> ServiceOrder | None:
        """The order with this venue id or client order id, if the venue holds it."""
        if not order_id:
            return None
        by_venue_id = self.engine.client_order_id(order_id) or self._rejected_ids.get(order_id)
        return self._held_order(by_venue_id or order_id)

    def _held_order(self, client_order_id: str) -> ServiceOrder | None:
        state = self.engine.status(client_order_id)
        if state is not None:
            return service_order(state, self.engine.fee_rate)
        return self._rejected.get(client_order_id)

    def _held(self) -> Iterator[ServiceOrder]:
        """Every order held, oldest first."""
        fee_rate = self.engine.fee_rate
        matched = (service_order(state, fee_rate) for state in self.engine.orders())
        return heapq.merge(matched, self._rejected.values(), key=lambda order: order.created_ns)


def _selected(order: ServiceOrder, request: pb.GetOrdersRequest) -> bool:
    created = wire_time(order.created_ns)
    return (
        (not request.symbol or order.symbol.upper() == request.symbol.upper())
        and (request.state == pb.STATE_UNSPECIFIED or order.state == request.state)
        and (not request.start_time or created >= request.start_time)
        and (not request.end_time or created <= request.end_time)
    )


def _create_response(order: ServiceOrder) -> pb.CreateOrderResponse:
    return pb.CreateOrderResponse(
        order_id=order.order_id, client_order_id=order.client_order_id, state=order.state,  # type: ignore[arg-type]
        timestamp=wire_time(order.created_ns), error_message=order.reason if order.state == pb.REJECTED else "",
    )  # fmt: skip


async def _not_found(context: Any, order_id: str, symbol: str = "") -> None:
    where = f" on {symbol}" if symbol else ""
    await context.abort(grpc.StatusCode.NOT_FOUND, f"order {order_id!r}{where} is not known to the venue")

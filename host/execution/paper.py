"""Paper venues over a ``MatchingEngine``: in-process (``PaperVenue``) and over gRPC (``PaperVenueServer``).

Both are thin shells: every decision (prices, sizes, time in force, idempotency by client order
id) is the engine's, so simulation in-process and a paper OMS behind gRPC fill identically. Both
run on one asyncio loop and call the engine and their sinks synchronously from it; market data
comes in through ``on_market(event)``, called by whoever owns the feed.

``PaperVenue`` implements ``Venue``. Fills go to the ``FillSink`` given at construction, called
synchronously: inside ``submit`` for orders that fill on arrival (before the reply is returned)
and inside ``on_market`` for resting orders. A sink that raises is logged (``paper_fill_sink_failed``
with the fill) and counted in ``sink_errors``; the other fills are still delivered.

``PaperVenueServer`` serves ``orderexecution.OrderExecution`` on a real grpc.aio server, with
``signal_id`` as the client order id (a second SubmitOrder with the same id answers with the
existing order while the engine holds it: working, or finished within its window of recently
finished orders, ``host.execution.matching``; memory follows working orders, not history). Each
fill is applied to a per-strategy ``PositionBook`` and handed, with the strategy's position after
it, to ``fill_sink(fill, position)`` — what the ``paper-venue`` command publishes on
``trading.fills`` and ``trading.positions``. Requests that cannot be read (bad side,
no signal_id) are answered ``rejected`` with the field named, counted and not recorded.

Fault injection (operators' drills and the ambiguity tests): ``drop_reply_for`` lists signal ids
whose reply is lost once. The first SubmitOrder carrying such an id is executed normally (the
order exists, may fill, shows in GetOrderStatus), then the handler holds the reply until the
caller's deadline has passed (plus ``drop_reply_margin``; ``drop_reply_hold`` when the call has no
deadline), so the client sees DEADLINE_EXCEEDED exactly as when a reply is lost in the network.
Later calls with that id are answered normally, so a retry under the same id shows the existing
order. Each drop is logged (``paper_venue_reply_dropped``) and counted in ``stats.dropped_replies``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from engine_proto import order_execution_pb2 as pb
from engine_proto.order_execution_pb2_grpc import add_OrderExecutionServicer_to_server
from host.execution.matching import MatchingEngine, MatchResult
from host.execution.oms_wire import WireError, request_to_intent, state_to_response
from host.execution.paper_shell import PaperFills, PositionSink, serve_grpc
from host.execution.venue import FillSink, VenueReply
from host.orders import OrderIntent, OrderState, OrderStatus
from sdk._positions import PositionBook
from sdk.events import Fill, MarketEvent

__all__ = ["PaperVenue", "PaperVenueServer", "PositionSink", "ServerStats", "paper_id_prefix"]

log = structlog.get_logger("host.execution.paper")

DUPLICATE = "duplicate client order id: the existing order is returned, no new order placed"


def paper_id_prefix() -> str:
    """A venue order id prefix unique to one venue instance, so a restarted venue never repeats a fill id."""
    return f"paper-{uuid.uuid4().hex[:8]}-"


def _message(result: MatchResult) -> str:
    return DUPLICATE if result.duplicate else ""


class PaperVenue:
    """An in-process ``Venue`` for simulation and backtests."""

    name = "paper"

    def __init__(self, engine: MatchingEngine, fill_sink: FillSink) -> None:
        self.engine = engine
        self._sink = fill_sink
        self.sink_errors = 0

    async def submit(self, intent: OrderIntent) -> VenueReply:
        return self._submit(intent)

    async def submit_batch(self, intents: Sequence[OrderIntent]) -> list[VenueReply]:
        return [self._submit(intent) for intent in intents]

    async def cancel(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> VenueReply:
        return self._reply(client_order_id, self.engine.cancel(client_order_id))

    async def status(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> VenueReply:
        return self._reply(client_order_id, self.engine.status(client_order_id))

    def on_market(self, event: MarketEvent) -> None:
        self._deliver(self.engine.on_market(event))

    async def close(self) -> None:
        return None

    def _submit(self, intent: OrderIntent) -> VenueReply:
        result = self.engine.submit(intent)
        self._deliver(result.fills)
        return VenueReply.from_state(result.order, self.engine.clock.time_ns(), _message(result))

    def _reply(self, client_order_id: str, state: OrderState | None) -> VenueReply:
        now = self.engine.clock.time_ns()
        return VenueReply.unknown(client_order_id, now) if state is None else VenueReply.from_state(state, now)

    def _deliver(self, fills: Iterable[Fill]) -> None:
        for fill in fills:
            try:
                self._sink(fill)
            except Exception:
                self.sink_errors += 1
                log.exception(
                    "paper_fill_sink_failed", fill_id=fill.fill_id, order_id=fill.order_id, symbol=fill.symbol,
                    side=fill.side.value, price=fill.price, quantity=fill.quantity,
                )  # fmt: skip


@dataclass(slots=True)
class ServerStats:
    """Counters of one ``PaperVenueServer`` (read by the paper-venue command's metrics)."""

    submitted: int = 0  # new orders placed
    duplicates: int = 0  # SubmitOrders answered with an existing order
    unreadable: int = 0  # requests rejected because a field could not be read
    dropped_replies: int = 0  # replies withheld by the drop_reply_for fault injection
    fills: int = 0
    sink_errors: int = 0


class PaperVenueServer:
    """A paper OMS speaking ``orderexecution.OrderExecution`` over a real gRPC server."""

    def __init__(
        self,
        engine: MatchingEngine,
        *,
        address: str = "127.0.0.1:0",  # host:port; port 0 picks a free one (see ``address`` after start)
        fill_sink: PositionSink | None = None,  # gets (fill, strategy's position after it)
        drop_reply_for: Iterable[str] = (),  # fault injection: signal ids whose first reply is lost
        drop_reply_margin: float = 0.2,  # hold a dropped reply this long past the caller's deadline
        drop_reply_hold: float = 30.0,  # hold a dropped reply this long when the call has no deadline
    ) -> None:
        self.engine = engine
        self._bind = address
        self._drop = set(drop_reply_for)
        self._drop_margin = drop_reply_margin
        self._drop_hold = drop_reply_hold
        self._server: Any = None
        self.address = ""
        self.stats = ServerStats()
        self._fills = PaperFills(fill_sink, self.stats)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Bind and serve; return the bound ``host:port``."""

        def register(server: Any) -> None:
            add_OrderExecutionServicer_to_server(self, server)  # type: ignore[no-untyped-call]  # generated, untyped

        self._server, self.address = await serve_grpc(self._bind, register)
        log.info("paper_venue_serving", address=self.address)
        return self.address

    async def stop(self, grace: float | None = None) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
            log.info("paper_venue_stopped", address=self.address)

    def on_market(self, event: MarketEvent) -> None:
        self._publish(self.engine.on_market(event))

    def positions(self, strategy: str) -> PositionBook:
        return self._fills.positions(strategy)

    # ------------------------------------------------------------------ orderexecution.OrderExecution

    # Method names are the service's, as the generated servicer registration looks them up.

    async def SubmitOrder(self, request: pb.OrderRequest, context: Any) -> pb.OrderResponse:
        response = self._submit(request)
        if request.signal_id in self._drop:
            self._drop.discard(request.signal_id)
            self.stats.dropped_replies += 1
            hold = self._hold(context)
            log.warning("paper_venue_reply_dropped", signal_id=request.signal_id, status=response.status, hold_s=hold)
            await asyncio.sleep(hold)
        return response

    async def SubmitBatchOrders(self, request: pb.BatchOrderRequest, context: Any) -> pb.BatchOrderResponse:
        responses = [self._submit(order) for order in request.orders]
        rejected = sum(1 for response in responses if response.status == "rejected")
        return pb.BatchOrderResponse(
            responses=responses, accepted_count=len(responses) - rejected, rejected_count=rejected
        )

    async def CancelOrder(self, request: pb.CancelOrderRequest, context: Any) -> pb.CancelOrderResponse:
        """``cancelled`` (now or before), ``not_found``, or ``failed`` naming the order's terminal status."""
        now_us = self.engine.clock.time_ns() // 1000
        client_id = self._client_id(request.signal_id, request.order_id)
        before = None if client_id is None else self.engine.status(client_id)
        if client_id is None or before is None:
            return pb.CancelOrderResponse(order_id=request.order_id, signal_id=request.signal_id, status="not_found",
                                          message="order not known to the venue", timestamp=now_us)  # fmt: skip
        after = self.engine.cancel(client_id) or before
        cancelled = after.status is OrderStatus.CANCELLED
        return pb.CancelOrderResponse(
            order_id=after.venue_order_id, signal_id=client_id, status="cancelled" if cancelled else "failed",
            message="" if cancelled and before.working else f"order is {after.status.value}: nothing to cancel",
            timestamp=now_us,
        )  # fmt: skip

    async def GetOrderStatus(self, request: pb.OrderStatusRequest, context: Any) -> pb.OrderStatusResponse:
        now_us = self.engine.clock.time_ns() // 1000
        client_id = self._client_id(request.signal_id, request.order_id)
        state = None if client_id is None else self.engine.status(client_id)
        if state is None:
            return pb.OrderStatusResponse(order_id=request.order_id, signal_id=request.signal_id, status="unknown",
                                          message="order not known to the venue", timestamp=now_us)  # fmt: skip
        return pb.OrderStatusResponse(
            order_id=state.venue_order_id, signal_id=state.intent.client_order_id, status=state.status.value,
            filled_quantity=state.filled_quantity, remaining_quantity=state.remaining if state.working else 0.0,
            average_price=state.average_price, message=state.reason, timestamp=now_us,
        )  # fmt: skip

    # ------------------------------------------------------------------ internals

    def _submit(self, request: pb.OrderRequest) -> pb.OrderResponse:
        now = self.engine.clock.time_ns()
        try:
            intent = request_to_intent(request, now)
        except WireError as error:
            self.stats.unreadable += 1
            log.warning("paper_venue_request_rejected", signal_id=request.signal_id, field=error.field,
                        reason=error.reason)  # fmt: skip
            return pb.OrderResponse(signal_id=request.signal_id, status="rejected", message=str(error),
                                    timestamp=now // 1000)  # fmt: skip
        result = self.engine.submit(intent)
        if result.duplicate:
            self.stats.duplicates += 1
        else:
            self.stats.submitted += 1
        self._publish(result.fills)
        return state_to_response(result.order, now, _message(result))

    def _client_id(self, signal_id: str, order_id: str) -> str | None:
        return signal_id or self.engine.client_order_id(order_id)

    def _hold(self, context: Any) -> float:
        remaining = context.time_remaining()
        return self._drop_hold if remaining is None else max(0.0, remaining) + self._drop_margin

    def _publish(self, fills: Iterable[Fill]) -> None:
        self._fills.publish(fills)

"""``PaperOrderService``: b25's ``order.OrderService`` over paper matching, through a real gRPC server.

Every call crosses a real grpc.aio connection on a free loopback port, made with the generated
``OrderServiceStub``. Market data is handed to the venue in process (``on_market``), as the
paper-venue command does with what it reads from Redis; the matching engine runs on a manual clock,
so times are exact (``NOON``; the wire's times are Unix seconds). The fill and update sinks record
what the paper-venue command would publish on NATS (``test_paper_order_service_nats.py`` publishes it).
Last, the engine's own client of the protocol (``OrderServiceVenue``) trades through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from engine_proto import order_service_pb2 as pb
from engine_proto.order_service_pb2_grpc import OrderServiceStub
from host.clock import SystemClock
from host.config import GrpcConfig
from host.execution.matching import MatchingEngine
from host.execution.order_service import OrderServiceVenue
from host.execution.paper import paper_id_prefix
from host.execution.paper_order_service import PaperOrderService
from host.execution.paper_order_wire import ServiceUpdate
from host.execution.venue import VenueReply
from host.orders import OrderIntent, OrderStatus
from sdk.events import Fill, OrderType, Position, Side, Tick
from tests.helpers import NOON, SECOND, ManualClocks, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SYM = "BTCUSDT"
NOON_S = NOON // SECOND


def tick(
    ask: float = 101.0, ask_size: float = 10.0, bid: float = 99.0, bid_size: float = 10.0, symbol: str = SYM
) -> Tick:
    return Tick(symbol=symbol, timestamp_ns=NOON, bid_price=bid, bid_size=bid_size, ask_price=ask, ask_size=ask_size)


def order(**fields: Any) -> pb.CreateOrderRequest:
    """A CreateOrderRequest: a market buy of 1 BTCUSDT, IOC, by user u1, unless ``fields`` say otherwise."""
    request: dict[str, Any] = {"symbol": SYM, "side": pb.BUY, "type": pb.MARKET, "quantity": 1.0,
                               "time_in_force": pb.IOC, "user_id": "u1"}  # fmt: skip
    return pb.CreateOrderRequest(**(request | fields))


def limit(price: float, quantity: float = 1.0, side: int = pb.BUY, **fields: Any) -> pb.CreateOrderRequest:
    return order(type=pb.LIMIT, price=price, quantity=quantity, side=side, time_in_force=pb.GTC, **fields)


class Recorded:
    """The venue's sinks: what the paper-venue command would publish."""

    def __init__(self) -> None:
        self.fills: list[tuple[Fill, Position]] = []
        self.updates: list[ServiceUpdate] = []

    def fill(self, fill: Fill, position: Position) -> None:
        self.fills.append((fill, position))


@pytest.fixture
def clock() -> ManualClocks:
    return ManualClocks()


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


async def started(clock: ManualClocks, recorded: Recorded, stream_queue: int = 4096) -> PaperOrderService:
    engine = MatchingEngine(fee_rate=0.001, clock=clock, id_prefix=paper_id_prefix())
    service = PaperOrderService(
        engine, fill_sink=recorded.fill, update_sink=recorded.updates.append, stream_queue=stream_queue
    )
    await service.start()
    service.on_market(tick())
    return service


@pytest.fixture
async def server(clock: ManualClocks, recorded: Recorded) -> AsyncIterator[PaperOrderService]:
    service = await started(clock, recorded)
    try:
        yield service
    finally:
        await service.stop(0.5)


@pytest.fixture
async def stub(server: PaperOrderService) -> AsyncIterator[OrderServiceStub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield OrderServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, untyped


async def get(stub: OrderServiceStub, order_id: str) -> pb.Order:
    return (await stub.GetOrder(pb.GetOrderRequest(order_id=order_id), timeout=5)).order


async def grpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


class Stream:
    """One StreamOrderUpdates call, read into ``updates`` by a task of its own."""

    def __init__(self, stub: OrderServiceStub, server: PaperOrderService, **request: Any) -> None:
        self.server = server
        self.call = stub.StreamOrderUpdates(pb.StreamOrderUpdatesRequest(**request))
        self.updates: list[pb.OrderUpdate] = []
        self.error: grpc.aio.AioRpcError | None = None
        self.ended = False
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for update in self.call:
                self.updates.append(update)
        except grpc.aio.AioRpcError as error:
            self.error = error
        self.ended = True

    def kinds(self) -> list[tuple[str, int]]:
        return [(u.update_type, u.order.state) for u in self.updates]

    async def until(self, count: int, interval: float = 0.02) -> list[pb.OrderUpdate]:
        await wait_until(lambda: len(self.updates) >= count, timeout=5, interval=interval)
        return self.updates

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def subscribed(stub: OrderServiceStub, server: PaperOrderService, **request: Any) -> Stream:
    """A stream whose subscription the venue holds (updates from now on reach it)."""
    before = len(server.hub)
    stream = Stream(stub, server, **request)
    await wait_until(lambda: len(server.hub) > before, timeout=5)
    return stream


class TestCreateOrder:
    async def test_a_market_order_fills_at_the_touch_and_get_order_reports_every_field(
        self, stub: OrderServiceStub, recorded: Recorded
    ) -> None:
        """Market buy 2 at the ask 101: FILLED; GetOrder has the quantities, average, cumulative fee in
        USDT, created/updated at (Unix seconds), user, flags, and the venue id as exchange_order_id."""
        reply = await stub.CreateOrder(order(quantity=2.0, client_order_id="m1", reduce_only=True), timeout=5)
        assert (reply.client_order_id, reply.state, reply.error_message, reply.timestamp) == (
            "m1", pb.FILLED, "", NOON_S,
        )  # fmt: skip
        got = await get(stub, reply.order_id)
        assert (got.order_id, got.client_order_id, got.exchange_order_id) == (reply.order_id, "m1", reply.order_id)
        assert (got.symbol, got.side, got.type, got.state, got.time_in_force) == (
            SYM, pb.BUY, pb.MARKET, pb.FILLED, pb.IOC,
        )  # fmt: skip
        assert (got.quantity, got.price, got.stop_price, got.filled_quantity, got.average_price) == (
            2.0, 0.0, 0.0, 2.0, 101.0,
        )  # fmt: skip
        assert got.fee == pytest.approx(0.202) and got.fee_asset == "USDT"
        assert (got.created_at, got.updated_at, got.user_id, got.reduce_only, got.post_only) == (
            NOON_S, NOON_S, "u1", True, False,
        )  # fmt: skip
        [(fill, position)] = recorded.fills
        assert (fill.order_id, fill.strategy, fill.price, fill.quantity) == (reply.order_id, "u1", 101.0, 2.0)
        assert (position.strategy, position.quantity) == ("u1", 2.0)

    async def test_a_retry_with_the_same_client_order_id_answers_with_the_same_order(
        self, stub: OrderServiceStub, server: PaperOrderService, recorded: Recorded
    ) -> None:
        """A second CreateOrder with a known client_order_id (as after a lost reply) returns the existing
        order: same order id and state, no second order, no second fill, no second update."""
        first = await stub.CreateOrder(order(client_order_id="again"), timeout=5)
        updates = len(recorded.updates)
        second = await stub.CreateOrder(order(client_order_id="again", quantity=5.0), timeout=5)
        assert (second.order_id, second.client_order_id, second.state) == (first.order_id, "again", pb.FILLED)
        assert len(server.engine) == 1 and len(recorded.fills) == 1 and len(recorded.updates) == updates
        resting = await stub.CreateOrder(limit(90.0, client_order_id="rest"), timeout=5)
        retry = await stub.CreateOrder(limit(90.0, client_order_id="rest"), timeout=5)
        assert (retry.order_id, retry.state) == (resting.order_id, pb.SUBMITTED)
        assert (server.stats.created, server.stats.duplicates) == (2, 2)

    async def test_an_empty_client_order_id_gets_a_generated_one(self, stub: OrderServiceStub) -> None:
        """Two orders without client_order_id: two orders, each with a distinct generated id GetOrder finds."""
        first = await stub.CreateOrder(order(), timeout=5)
        second = await stub.CreateOrder(order(), timeout=5)
        assert first.client_order_id and second.client_order_id and first.client_order_id != second.client_order_id
        assert first.order_id != second.order_id
        assert (await get(stub, first.client_order_id)).order_id == first.order_id

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            ({"side": pb.SIDE_UNSPECIFIED}, "side: required: BUY or SELL, got SIDE_UNSPECIFIED"),
            ({"side": 7}, "side: required: BUY or SELL, got 7"),
            ({"type": pb.TYPE_UNSPECIFIED}, "type: required"),
            ({"time_in_force": 9}, "time_in_force: expected GTC, IOC, FOK or GTX, got 9"),
            ({"symbol": ""}, "symbol: required"),
            ({"symbol": "BTC.USDT"}, "symbol: may not hold"),
            ({"quantity": 0.0}, "quantity: must be a finite number > 0"),
            ({"quantity": float("nan")}, "quantity: must be a finite number > 0"),
            ({"type": pb.LIMIT, "time_in_force": pb.GTC}, "price: a limit order needs a price > 0"),
            ({"type": pb.STOP_LIMIT, "price": 100.0}, "stop_price: a stop_limit order needs a stop_price > 0"),
            ({"type": pb.STOP_MARKET}, "stop_price: a stop order needs a stop_price > 0"),
            ({"price": -1.0}, "price: must be a finite number >= 0"),
            ({"post_only": True}, "post_only: only a LIMIT order can be post-only, got MARKET"),
            ({"time_in_force": pb.GTX}, "time_in_force: only a LIMIT order can be post-only, got MARKET"),
            ({"type": pb.POST_ONLY, "price": 90.0}, "time_in_force: a post-only order rests: GTC or GTX, got IOC"),
        ],
    )
    async def test_a_request_the_venue_cannot_take_is_a_rejected_order_naming_the_field(
        self, stub: OrderServiceStub, recorded: Recorded, fields: dict[str, Any], named: str
    ) -> None:
        """Not a gRPC error: state REJECTED, error_message naming the field; the order exists (GetOrder),
        has no exchange id, gave one REJECTED update; a retry answers the same rejection."""
        reply = await stub.CreateOrder(order(client_order_id="bad", **fields), timeout=5)
        assert reply.state == pb.REJECTED and reply.error_message.startswith(named), reply.error_message
        got = await get(stub, reply.order_id)
        assert (got.state, got.client_order_id, got.exchange_order_id) == (pb.REJECTED, "bad", "")
        assert [(u.update_type, u.order.order_id) for u in recorded.updates] == [("REJECTED", reply.order_id)]
        again = await stub.CreateOrder(order(client_order_id="bad"), timeout=5)
        assert (again.order_id, again.state, again.error_message) == (reply.order_id, pb.REJECTED, reply.error_message)
        assert recorded.fills == []

    @pytest.mark.parametrize(
        ("request_fields", "state"),
        [
            ({"type": pb.POST_ONLY, "price": 101.0}, pb.REJECTED),  # at the ask: would take it
            ({"type": pb.POST_ONLY, "price": 100.0}, pb.SUBMITTED),
            ({"type": pb.LIMIT, "price": 102.0, "post_only": True}, pb.REJECTED),
            ({"type": pb.LIMIT, "price": 102.0, "time_in_force": pb.GTX}, pb.REJECTED),
            ({"type": pb.LIMIT, "price": 100.0, "time_in_force": pb.GTX}, pb.SUBMITTED),
            ({"type": pb.POST_ONLY, "price": 99.0, "side": pb.SELL}, pb.REJECTED),  # at the bid
            ({"type": pb.POST_ONLY, "price": 100.0, "side": pb.SELL}, pb.SUBMITTED),
        ],
    )
    async def test_a_post_only_order_is_rejected_when_it_would_take_liquidity(
        self, stub: OrderServiceStub, recorded: Recorded, request_fields: dict[str, Any], state: int
    ) -> None:
        """POST_ONLY, post_only or GTX on a limit that meets the touch (ask 101 / bid 99) is REJECTED naming
        post_only; one that does not rests (SUBMITTED) and keeps its type and time in force."""
        reply = await stub.CreateOrder(order(**({"time_in_force": pb.GTC} | request_fields)), timeout=5)
        assert reply.state == state, reply.error_message
        if state == pb.REJECTED:
            assert reply.error_message.startswith("post_only: a ") and "would take liquidity" in reply.error_message
        got = await get(stub, reply.order_id)
        assert (got.type, got.time_in_force) == (request_fields["type"], request_fields.get("time_in_force", pb.GTC))
        assert recorded.fills == []

    async def test_stop_market_and_stop_limit_rest_until_triggered(
        self, stub: OrderServiceStub, server: PaperOrderService
    ) -> None:
        """STOP_MARKET buy at 105 and STOP_LIMIT buy (stop 105, limit 106) rest SUBMITTED; an ask of 105.5
        triggers both: the stop fills at 105.5, the stop-limit at 105.5 (within its limit)."""
        stop = await stub.CreateOrder(order(type=pb.STOP_MARKET, stop_price=105.0, time_in_force=pb.GTC), timeout=5)
        stop_limit = await stub.CreateOrder(
            order(type=pb.STOP_LIMIT, stop_price=105.0, price=106.0, time_in_force=pb.GTC), timeout=5
        )
        assert (stop.state, stop_limit.state) == (pb.SUBMITTED, pb.SUBMITTED)
        server.on_market(tick(ask=105.5, bid=105.0))
        for reply, kind in ((stop, pb.STOP_MARKET), (stop_limit, pb.STOP_LIMIT)):
            got = await get(stub, reply.order_id)
            assert (got.type, got.state, got.filled_quantity, got.average_price) == (kind, pb.FILLED, 1.0, 105.5)

    async def test_ioc_and_fok_take_what_they_can_and_end_canceled(
        self, stub: OrderServiceStub, recorded: Recorded
    ) -> None:
        """IOC buy 15 at 101 takes the 10 offered and ends CANCELED with 10 filled; FOK buy 15 fills nothing."""
        ioc = await stub.CreateOrder(order(type=pb.LIMIT, price=101.0, quantity=15.0, client_order_id="ioc"), timeout=5)
        assert ioc.state == pb.CANCELED and ioc.error_message == ""
        got = await get(stub, "ioc")
        assert (got.state, got.filled_quantity, got.average_price) == (pb.CANCELED, 10.0, 101.0)
        fok = await stub.CreateOrder(order(quantity=15.0, time_in_force=pb.FOK, client_order_id="fok"), timeout=5)
        assert fok.state == pb.CANCELED and (await get(stub, "fok")).filled_quantity == 0.0
        assert [u.update_type for u in recorded.updates] == ["CREATED", "UPDATED", "CANCELED", "CREATED", "CANCELED"]


class TestPartialFills:
    async def test_partial_fills_show_in_get_order_and_as_updates_with_cumulative_figures(
        self, stub: OrderServiceStub, server: PaperOrderService, recorded: Recorded
    ) -> None:
        """Buy 25 at 102 against 10 offered: 10 @ 101 on arrival, 10 @ 102 and 5 @ 102 on two later quotes.
        GetOrder after each shows the cumulative quantity and average; the stream shows CREATED, UPDATED,
        UPDATED, FILLED with the same figures, and the fee summed over the fills."""
        stream = await subscribed(stub, server)
        reply = await stub.CreateOrder(limit(102.0, quantity=25.0, client_order_id="big"), timeout=5)
        assert reply.state == pb.PARTIALLY_FILLED
        seen = [(10.0, 101.0, pb.PARTIALLY_FILLED)]
        got = await get(stub, "big")
        assert [(got.filled_quantity, got.average_price, got.state)] == seen
        server.on_market(tick(ask=101.5))
        got = await get(stub, "big")
        seen.append((20.0, 101.5, pb.PARTIALLY_FILLED))
        assert (got.filled_quantity, got.average_price, got.state) == seen[-1]
        server.on_market(tick(ask=100.0, ask_size=30.0))
        got = await get(stub, "big")
        seen.append((25.0, 2540.0 / 25.0, pb.FILLED))
        assert (got.filled_quantity, got.state) == (25.0, pb.FILLED)
        assert got.average_price == pytest.approx(101.6)
        updates = await stream.until(4)
        assert [(u.update_type, u.order.state) for u in updates] == [
            ("CREATED", pb.SUBMITTED), ("UPDATED", pb.PARTIALLY_FILLED), ("UPDATED", pb.PARTIALLY_FILLED),
            ("FILLED", pb.FILLED),
        ]  # fmt: skip
        assert [(u.order.filled_quantity, u.order.average_price) for u in updates[1:]] == [
            (10.0, 101.0), (20.0, 101.5), (got.filled_quantity, got.average_price),
        ]  # fmt: skip
        assert updates[-1].order == got
        assert got.fee == pytest.approx(sum(fill.fee for fill, _ in recorded.fills))
        assert [u.order.fee_asset for u in updates] == ["", "USDT", "USDT", "USDT"]
        await stream.close()


class TestCancel:
    async def test_cancel_by_venue_id_then_again_then_by_client_order_id(
        self, stub: OrderServiceStub, server: PaperOrderService, recorded: Recorded
    ) -> None:
        """A resting order cancelled by its order id answers CANCELED with no error and streams CANCELED;
        cancelling again answers CANCELED with "nothing to cancel"; a client order id is accepted too."""
        resting = await stub.CreateOrder(limit(90.0, client_order_id="c1"), timeout=5)
        reply = await stub.CancelOrder(pb.CancelOrderRequest(order_id=resting.order_id, symbol=SYM), timeout=5)
        assert (reply.order_id, reply.state, reply.error_message, reply.timestamp) == (
            resting.order_id, pb.CANCELED, "", NOON_S,
        )  # fmt: skip
        assert (await get(stub, resting.order_id)).state == pb.CANCELED
        assert [u.update_type for u in recorded.updates] == ["CREATED", "CANCELED"]
        again = await stub.CancelOrder(pb.CancelOrderRequest(order_id=resting.order_id), timeout=5)
        assert (again.state, again.error_message) == (pb.CANCELED, "order is CANCELED: nothing to cancel")
        await stub.CreateOrder(limit(90.0, client_order_id="c2"), timeout=5)
        by_client = await stub.CancelOrder(pb.CancelOrderRequest(order_id="c2"), timeout=5)
        assert by_client.state == pb.CANCELED and by_client.error_message == ""
        assert server.engine.working() == []

    async def test_cancelling_a_filled_order_answers_its_state(self, stub: OrderServiceStub) -> None:
        """A filled order is not cancelled: the answer is FILLED with the reason."""
        filled = await stub.CreateOrder(order(), timeout=5)
        reply = await stub.CancelOrder(pb.CancelOrderRequest(order_id=filled.order_id), timeout=5)
        assert (reply.state, reply.error_message) == (pb.FILLED, "order is FILLED: nothing to cancel")

    async def test_unknown_ids_and_another_symbol_are_not_found(self, stub: OrderServiceStub) -> None:
        """CancelOrder and GetOrder of an id the venue never held are NOT_FOUND; so is a cancel naming
        another symbol than the order's."""
        resting = await stub.CreateOrder(limit(90.0), timeout=5)
        for call in (
            stub.CancelOrder(pb.CancelOrderRequest(order_id="never"), timeout=5),
            stub.GetOrder(pb.GetOrderRequest(order_id="never"), timeout=5),
            stub.GetOrder(pb.GetOrderRequest(order_id=""), timeout=5),
            stub.CancelOrder(pb.CancelOrderRequest(order_id=resting.order_id, symbol="ETHUSDT"), timeout=5),
        ):
            error = await grpc_error(call)
            assert error.code() == grpc.StatusCode.NOT_FOUND and "not known to the venue" in (error.details() or "")
        assert (await get(stub, resting.order_id)).state == pb.SUBMITTED


class TestGetOrders:
    async def test_filters_newest_first_and_limit(
        self, stub: OrderServiceStub, server: PaperOrderService, clock: ManualClocks
    ) -> None:
        """Five orders ten seconds apart on two symbols: filters by symbol, state and created_at window
        (Unix seconds, inclusive, 0 unbounded), newest first, limit keeps the newest."""
        server.on_market(tick(symbol="ETHUSDT", ask=2001.0, bid=1999.0))
        placed = []
        for request in (order(), limit(90.0), order(symbol="ETHUSDT"), limit(95.0), order(side=pb.SIDE_UNSPECIFIED)):
            placed.append((await stub.CreateOrder(request, timeout=5)).order_id)
            clock.advance(10)

        async def ids(**request: Any) -> list[str]:
            reply = await stub.GetOrders(pb.GetOrdersRequest(**request), timeout=5)
            return [o.order_id for o in reply.orders]

        assert await ids() == placed[::-1]
        assert await ids(symbol="ETHUSDT") == [placed[2]]
        assert await ids(symbol=SYM, state=pb.SUBMITTED) == [placed[3], placed[1]]
        assert await ids(state=pb.REJECTED) == [placed[4]]
        assert await ids(start_time=NOON_S + 10, end_time=NOON_S + 30) == [placed[3], placed[2], placed[1]]
        assert await ids(start_time=NOON_S + 40) == [placed[4]]
        assert await ids(end_time=NOON_S) == [placed[0]]
        assert await ids(limit=2) == [placed[4], placed[3]]
        error = await grpc_error(stub.GetOrders(pb.GetOrdersRequest(limit=-1), timeout=5))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit" in (error.details() or "")

    async def test_limit_0_is_the_default_of_1000_and_no_answer_holds_more_than_10000(
        self, stub: OrderServiceStub, server: PaperOrderService
    ) -> None:
        """10,001 orders (placed in process, to be quick): limit 0 gives the newest 1000, limit 20000 the
        newest 10000."""
        for index in range(10_001):
            await server.CreateOrder(limit(50.0, client_order_id=f"many-{index}"), context=None)
        default = (await stub.GetOrders(pb.GetOrdersRequest(), timeout=10)).orders
        assert [o.client_order_id for o in default] == [f"many-{index}" for index in range(10_000, 9_000, -1)]
        capped = (await stub.GetOrders(pb.GetOrdersRequest(limit=20_000), timeout=10)).orders
        assert len(capped) == 10_000 and capped[-1].client_order_id == "many-1"


class TestStreamOrderUpdates:
    async def test_streams_filter_by_symbol_and_user(self, stub: OrderServiceStub, server: PaperOrderService) -> None:
        """One stream for ETHUSDT, one for user u2, one for everything: each sees what it asked for."""
        server.on_market(tick(symbol="ETHUSDT", ask=2001.0, bid=1999.0))
        eth = await subscribed(stub, server, symbols=["ethusdt"])
        u2 = await subscribed(stub, server, user_id="u2")
        every = await subscribed(stub, server, symbols=[""])
        await stub.CreateOrder(order(client_order_id="btc-u1"), timeout=5)
        await stub.CreateOrder(order(client_order_id="eth-u2", symbol="ETHUSDT", user_id="u2"), timeout=5)
        await stub.CreateOrder(order(client_order_id="btc-u2", user_id="u2"), timeout=5)
        await every.until(6)
        await wait_until(lambda: len(eth.updates) == 2 and len(u2.updates) == 4, timeout=5)
        assert {u.order.client_order_id for u in eth.updates} == {"eth-u2"}
        assert {u.order.client_order_id for u in u2.updates} == {"eth-u2", "btc-u2"}
        assert [u.order.client_order_id for u in every.updates] == ["btc-u1"] * 2 + ["eth-u2"] * 2 + ["btc-u2"] * 2
        for stream in (eth, u2, every):
            await stream.close()
        await wait_until(lambda: len(server.hub) == 0, timeout=5)

    async def test_a_slow_subscriber_is_cut_off_and_a_reading_one_gets_everything(
        self, clock: ManualClocks, recorded: Recorded
    ) -> None:
        """A client that never reads is cut off once 16 updates wait for it (its call ends with
        RESOURCE_EXHAUSTED after what it was already sent); a client reading alongside gets every update."""
        server = await started(clock, recorded, stream_queue=16)
        slow_channel = grpc.aio.insecure_channel(server.address, options=[("grpc.http2.bdp_probe", 0)])
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = OrderServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, untyped
                fast = await subscribed(stub, server)
                slow_stub = OrderServiceStub(slow_channel)  # type: ignore[no-untyped-call]  # generated, untyped
                slow = slow_stub.StreamOrderUpdates(pb.StreamOrderUpdatesRequest())
                await wait_until(lambda: len(server.hub) == 2, timeout=5)
                await stub.CreateOrder(limit(100.0, quantity=1e6), timeout=5)
                sent = 1  # CREATED, then one UPDATED per tick (one partial fill each)
                while server.hub.stats.cut == 0 and sent < 20_000:
                    await fast.until(sent, interval=0.0005)  # the reading client keeps up: never more than one behind
                    server.on_market(tick(ask=99.5, ask_size=0.001))
                    sent += 1
                assert server.hub.stats.cut == 1 and len(server.hub) == 1
                await fast.until(sent)
                assert fast.error is None and len(fast.updates) == sent
                assert fast.updates[-1].order.filled_quantity == pytest.approx(0.001 * (sent - 1))
                received = 0
                with pytest.raises(grpc.aio.AioRpcError) as cut:
                    async for _ in slow:
                        received += 1
                assert cut.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "stream cut off" in (cut.value.details() or "") and 0 < received < sent
                await fast.close()
        finally:
            await slow_channel.close()
            await server.stop(0.5)

    async def test_streams_end_cleanly_when_the_venue_stops(self, clock: ManualClocks, recorded: Recorded) -> None:
        """stop(): an open stream gets what was queued and ends with status OK."""
        server = await started(clock, recorded)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = OrderServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, untyped
            stream = await subscribed(stub, server)
            await stub.CreateOrder(order(), timeout=5)
            await server.stop(2.0)
            await wait_until(lambda: stream.ended, timeout=5)
            assert stream.error is None and len(stream.updates) == 2
            assert await stream.call.code() == grpc.StatusCode.OK


class TestWithTheEnginesClient:
    async def test_order_service_venue_trades_through_the_paper_venue(
        self, server: PaperOrderService, clock: ManualClocks
    ) -> None:
        """The engine's ``OrderServiceVenue`` against this venue: a limit buy of 2 is ACCEPTED, two quotes
        fill it in two parts, which reach the client as cumulative updates stamped at the venue's time
        (Unix seconds read back as NOON); status by venue id and by client id agree; a second order is
        cancelled by client id alone; an id never sent is unknown."""
        received: list[VenueReply] = []
        venue = OrderServiceVenue(GrpcConfig(order_execution_address=server.address, user_id="desk"),
                                  SystemClock(), on_update=received.append)  # fmt: skip
        watching = asyncio.ensure_future(venue.watch(lambda _trigger: None))
        try:
            await wait_until(lambda: len(server.hub) == 1, timeout=5)
            placed = await venue.submit(OrderIntent("e1", "alpha", SYM, Side.BUY, OrderType.LIMIT, 2.0, price=100.0))
            assert (placed.status, placed.timestamp_ns) == (OrderStatus.ACCEPTED, NOON)
            server.on_market(tick(ask=99.5, ask_size=1.0))
            server.on_market(tick(ask=99.5, ask_size=5.0))
            await wait_until(lambda: len(received) == 3, timeout=5)
            assert [(r.status, r.filled_quantity, r.average_price, r.timestamp_ns) for r in received] == [
                (OrderStatus.ACCEPTED, 0.0, 0.0, NOON), (OrderStatus.PARTIALLY_FILLED, 1.0, 100.0, NOON),
                (OrderStatus.FILLED, 2.0, 100.0, NOON),
            ]  # fmt: skip
            by_venue_id = await venue.status("e1", placed.venue_order_id, SYM)
            by_client_id = await venue.status("e1", "", SYM)
            assert by_venue_id == by_client_id and by_venue_id.fee == pytest.approx(0.2)
            await venue.submit(OrderIntent("e2", "alpha", SYM, Side.BUY, OrderType.LIMIT, 1.0, price=90.0))
            assert (await venue.cancel("e2", "", SYM)).status is OrderStatus.CANCELLED
            assert not (await venue.status("never", "", SYM)).known
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await venue.close()

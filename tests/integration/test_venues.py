"""Venues end to end: ``GrpcVenue`` against a real ``PaperVenueServer`` on a free loopback port.

No mocks: every call crosses a real gRPC connection. Failure modes are real too: "unavailable" is a
stopped server (or a port nobody listens on), "reply lost" is the paper venue's own
``drop_reply_for`` fault injection (the order is executed, the reply held past the client's
deadline). Orders are counted at the venue (``server.engine``) to prove that no retry ever placed
a second order. ``PaperVenue`` (in-process) is checked against the same promises, and the pure
``ConnectionBreaker`` with a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from engine_proto import order_execution_pb2 as pb
from engine_proto.order_execution_pb2_grpc import OrderExecutionStub
from host.clock import SystemClock
from host.config import GrpcConfig
from host.execution.grpc_venue import ConnectionBreaker, GrpcVenue
from host.execution.matching import MatchingEngine
from host.execution.paper import PaperVenue, PaperVenueServer, paper_id_prefix
from host.execution.venue import Venue, VenueTimeout, VenueUnavailable
from host.orders import OrderIntent, OrderStatus
from host.supervisor.policy import BreakerState
from sdk.events import Fill, OrderType, Position, Side, Tick, TimeInForce
from tests.helpers import ManualClock, wait_until
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SYM = "BTCUSDT"
VENUES: tuple[type[Venue], ...] = (PaperVenue, GrpcVenue)  # mypy checks both satisfy the protocol
TOUCH = Tick(symbol=SYM, timestamp_ns=1, bid_price=99.0, bid_size=10.0, ask_price=101.0, ask_size=10.0)


def intent(
    cid: str,
    side: Side = Side.BUY,
    quantity: float = 1.0,
    kind: OrderType = OrderType.MARKET,
    price: float | None = None,
    tif: TimeInForce = TimeInForce.GTC,
) -> OrderIntent:
    return OrderIntent(cid, "alpha", SYM, side, kind, quantity, price=price, time_in_force=tif)


def config(address: str, breaker_failures: int = 3) -> GrpcConfig:
    """Fast settings: 1 s deadline, 2 retries after 0.05 s and 0.1 s, breaker 3 failures / 0.5 s."""
    return GrpcConfig(
        order_execution_address=address, timeout=1.0, max_retries=2, retry_backoff=0.05,
        breaker_failures=breaker_failures, breaker_reset=0.5,
    )  # fmt: skip


class Published:
    """The server's fill_sink: records what the paper-venue command would publish."""

    def __init__(self) -> None:
        self.items: list[tuple[Fill, Position]] = []

    def __call__(self, fill: Fill, position: Position) -> None:
        self.items.append((fill, position))

    @property
    def fills(self) -> list[Fill]:
        return [fill for fill, _ in self.items]


def new_engine() -> MatchingEngine:
    return MatchingEngine(fee_rate=0.001, clock=SystemClock(), id_prefix=paper_id_prefix())


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
async def server(published: Published) -> AsyncIterator[PaperVenueServer]:
    venue = PaperVenueServer(new_engine(), fill_sink=published, drop_reply_for={"lost-market", "lost-limit"})
    await venue.start()
    venue.on_market(TOUCH)
    try:
        yield venue
    finally:
        await venue.stop()


@pytest.fixture
async def client(server: PaperVenueServer) -> AsyncIterator[GrpcVenue]:
    venue = GrpcVenue(config(server.address), SystemClock())
    try:
        yield venue
    finally:
        await venue.close()


class TestSubmitFillStatusCancel:
    async def test_market_order_fills_at_the_touch_and_is_published_with_its_position(
        self, client: GrpcVenue, server: PaperVenueServer, published: Published
    ) -> None:
        """A market buy fills at the ask 101; the sink gets the fill (strategy set) and a long position of 1."""
        reply = await client.submit(intent("m1"))
        assert (reply.status, reply.filled_quantity, reply.average_price) == (OrderStatus.FILLED, 1.0, 101.0)
        assert reply.venue_order_id and reply.client_order_id == "m1"
        [(fill, position)] = published.items
        assert (fill.order_id, fill.strategy, fill.price, fill.fee) == (reply.venue_order_id, "alpha", 101.0, 0.101)
        assert (position.quantity, position.avg_entry_price, position.strategy) == (1.0, 101.0, "alpha")

    async def test_resting_limit_is_accepted_then_filled_by_market_data(
        self, client: GrpcVenue, server: PaperVenueServer, published: Published
    ) -> None:
        """A buy limit 100 is ACCEPTED; a tick with the ask at 99.5 fills it at 100; status() shows FILLED."""
        reply = await client.submit(intent("l1", kind=OrderType.LIMIT, price=100.0))
        assert reply.status is OrderStatus.ACCEPTED and reply.filled_quantity == 0.0
        assert (await client.status("l1")).status is OrderStatus.ACCEPTED
        server.on_market(Tick(symbol=SYM, timestamp_ns=2, bid_price=99.0, bid_size=5.0, ask_price=99.5, ask_size=5.0))
        assert [(f.price, f.quantity) for f in published.fills] == [(100.0, 1.0)]
        status = await client.status("l1")
        assert (status.status, status.filled_quantity, status.average_price) == (OrderStatus.FILLED, 1.0, 100.0)
        assert status.venue_order_id == reply.venue_order_id

    async def test_cancel_a_resting_order_then_cancel_again(self, client: GrpcVenue) -> None:
        """Cancel gives CANCELLED; status agrees; a second cancel still reports CANCELLED (nothing to do)."""
        await client.submit(intent("c1", kind=OrderType.LIMIT, price=90.0))
        assert (await client.cancel("c1")).status is OrderStatus.CANCELLED
        assert (await client.status("c1")).status is OrderStatus.CANCELLED
        again = await client.cancel("c1")
        assert again.status is OrderStatus.CANCELLED and "nothing to cancel" in again.message

    async def test_an_order_the_venue_never_saw_has_unknown_status(self, client: GrpcVenue) -> None:
        """status() and cancel() of an unseen id answer status None (\"unknown\" on the wire)."""
        assert (await client.status("never")).status is None
        assert not (await client.cancel("never")).known

    async def test_batch_submits_every_order_and_answers_in_request_order(
        self, client: GrpcVenue, server: PaperVenueServer
    ) -> None:
        """One SubmitBatchOrders: a market fill, a resting limit and an IOC that finds nothing marketable."""
        replies = await client.submit_batch(
            [
                intent("b1"),
                intent("b2", Side.SELL, kind=OrderType.LIMIT, price=120.0),
                intent("b3", kind=OrderType.LIMIT, price=50.0, tif=TimeInForce.IOC),
            ]
        )
        assert [(r.client_order_id, r.status) for r in replies] == [
            ("b1", OrderStatus.FILLED), ("b2", OrderStatus.ACCEPTED), ("b3", OrderStatus.CANCELLED),
        ]  # fmt: skip
        assert len(server.engine) == 3

    async def test_enumerations_are_read_in_any_case_and_unreadable_fields_are_rejected(
        self, server: PaperVenueServer
    ) -> None:
        """Peers send "BUY"/"MARKET"/"ioc"; a side of "hold" is rejected naming OrderRequest.side."""
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = OrderExecutionStub(channel)  # type: ignore[no-untyped-call]  # generated, untyped
            upper = pb.OrderRequest(
                signal_id="u1", strategy_id="peer", symbol=SYM, side="BUY", order_type="MARKET", quantity=2.0,
                time_in_force="ioc",
            )  # fmt: skip
            ok = await stub.SubmitOrder(upper, timeout=2)
            bad = await stub.SubmitOrder(
                pb.OrderRequest(signal_id="u2", symbol=SYM, side="hold", order_type="market", quantity=1.0), timeout=2
            )
        assert (ok.status, ok.executed_quantity) == ("filled", 2.0)
        assert bad.status == "rejected" and "OrderRequest.side" in bad.message
        assert server.stats.unreadable == 1 and server.engine.status("u2") is None


class TestIdempotency:
    async def test_same_signal_id_twice_places_one_order(
        self, client: GrpcVenue, server: PaperVenueServer, published: Published
    ) -> None:
        """A resubmit answers with the existing order: same venue id, one order and one fill at the venue."""
        first = await client.submit(intent("dup"))
        second = await client.submit(intent("dup"))
        assert second.venue_order_id == first.venue_order_id and second.status is OrderStatus.FILLED
        assert "duplicate" in second.message
        assert len(server.engine) == 1 and len(published.fills) == 1
        assert (server.stats.submitted, server.stats.duplicates) == (1, 1)


class TestLostReply:
    async def test_lost_reply_is_ambiguous_and_resolved_by_status_never_by_a_second_order(
        self, client: GrpcVenue, server: PaperVenueServer, published: Published
    ) -> None:
        """The venue fills the order but its reply is lost: VenueTimeout; status() shows FILLED; a retry
        with the same id returns that order; the venue holds exactly one order and one fill."""
        started = time.monotonic()
        with pytest.raises(VenueTimeout, match="resolve with status"):
            await client.submit(intent("lost-market"))
        assert time.monotonic() - started >= client.config.timeout * 0.9
        status = await client.status("lost-market")
        assert (status.status, status.filled_quantity) == (OrderStatus.FILLED, 1.0)
        retry = await client.submit(intent("lost-market"))
        assert retry.venue_order_id == status.venue_order_id and retry.status is OrderStatus.FILLED
        assert len(server.engine) == 1 and len(published.fills) == 1
        assert server.stats.dropped_replies == 1 and client.stats.timeouts == 1

    async def test_lost_reply_of_a_resting_order_shows_it_accepted(
        self, client: GrpcVenue, server: PaperVenueServer
    ) -> None:
        """A resting limit whose reply was lost is ACCEPTED at the venue, and still one order after a retry."""
        with pytest.raises(VenueTimeout):
            await client.submit(intent("lost-limit", kind=OrderType.LIMIT, price=95.0))
        assert (await client.status("lost-limit")).status is OrderStatus.ACCEPTED
        assert (await client.submit(intent("lost-limit", kind=OrderType.LIMIT, price=95.0))).status is (
            OrderStatus.ACCEPTED
        )
        assert [s.intent.client_order_id for s in server.engine.orders()] == ["lost-limit"]


class TestUnavailable:
    async def test_nobody_listening_raises_unavailable_after_the_retries(self) -> None:
        """No server: 1 + max_retries attempts with 0.05 s then 0.1 s between them, then VenueUnavailable."""
        venue = GrpcVenue(config(f"127.0.0.1:{free_port()}", breaker_failures=10), SystemClock())
        try:
            started = time.monotonic()
            with pytest.raises(VenueUnavailable, match="after 3 attempt"):
                await venue.submit(intent("u1"))
            assert time.monotonic() - started >= 0.15
            assert (venue.stats.attempts, venue.stats.retries) == (3, 2)
        finally:
            await venue.close()

    async def test_breaker_opens_fails_fast_then_half_opens_after_reset(
        self, server: PaperVenueServer, published: Published
    ) -> None:
        """Server stopped: 3 failed attempts open the breaker; calls then fail at once without an RPC; with
        the server back, the first call after breaker_reset is a trial that succeeds and closes it."""
        port = int(server.address.rsplit(":", 1)[1])
        venue = GrpcVenue(config(server.address), SystemClock())
        try:
            assert (await venue.submit(intent("before"))).status is OrderStatus.FILLED
            await server.stop()
            with pytest.raises(VenueUnavailable):
                await venue.submit(intent("down-1"))
            opened_at = time.monotonic()
            assert venue.breaker.state is BreakerState.OPEN and venue.stats.attempts == 4
            with pytest.raises(VenueUnavailable, match="circuit breaker open") as refused:
                await venue.submit(intent("down-2"))
            assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 0.5
            assert venue.stats.attempts == 4
            again = PaperVenueServer(server.engine, address=f"127.0.0.1:{port}", fill_sink=published)
            await again.start()
            try:
                await wait_until(lambda: _succeeds(venue, "down-2"), timeout=10)
                assert time.monotonic() - opened_at >= 0.5
                assert breaker_state(venue) is BreakerState.CLOSED and venue.stats.breaker_rejections >= 1
                assert server.engine.status("down-2") is not None and len(server.engine) == 2
            finally:
                await again.stop()
        finally:
            await venue.close()

    async def test_a_failed_half_open_trial_opens_the_breaker_again_after_one_attempt(self) -> None:
        """Still down after breaker_reset: the trial is a single attempt, and the breaker is open again."""
        venue = GrpcVenue(config(f"127.0.0.1:{free_port()}"), SystemClock())
        try:
            with pytest.raises(VenueUnavailable):
                await venue.status("x")
            assert venue.breaker.state is BreakerState.OPEN
            attempts = venue.stats.attempts

            async def trial_ran() -> bool:
                with contextlib.suppress(VenueUnavailable):
                    await venue.status("x")
                return venue.stats.attempts > attempts

            await wait_until(trial_ran, timeout=5)
            assert venue.stats.attempts == attempts + 1 and venue.breaker.state is BreakerState.OPEN
        finally:
            await venue.close()


def breaker_state(venue: GrpcVenue) -> BreakerState:
    """Read through a call, so mypy does not keep an earlier assert's narrowing of the attribute."""
    return venue.breaker.state


async def _succeeds(venue: GrpcVenue, cid: str) -> bool:
    try:
        await venue.submit(intent(cid))
    except VenueUnavailable:
        return False
    return True


class TestConnectionBreaker:
    def test_consecutive_failures_open_it_and_a_success_resets_the_count(self) -> None:
        """2 failures, a success, 2 failures: still closed; the 3rd in a row opens it."""
        breaker = ConnectionBreaker(3, 10.0, ManualClock(0.0))
        for _ in range(2):
            breaker.failure()
        breaker.success()
        assert [breaker.failure() for _ in range(3)] == [False, False, True]
        assert breaker.state is BreakerState.OPEN

    def test_open_refuses_until_reset_then_admits_exactly_one_trial(self) -> None:
        """Open for 10 s: allow() says how long to wait; at 10 s one trial goes, a second caller waits."""
        clock = ManualClock(0.0)
        breaker = ConnectionBreaker(1, 10.0, clock)
        breaker.failure()
        clock.now = 4.0
        assert breaker.allow() == pytest.approx(6.0)
        clock.now = 10.0
        assert breaker.allow() is None and breaker.state is BreakerState.HALF_OPEN
        assert breaker.allow() == pytest.approx(10.0)

    @pytest.mark.parametrize(("succeeds", "state"), [(True, BreakerState.CLOSED), (False, BreakerState.OPEN)])
    def test_the_trial_decides(self, succeeds: bool, state: BreakerState) -> None:
        """A successful trial closes the breaker; a failed one opens it for another reset period."""
        clock = ManualClock(0.0)
        breaker = ConnectionBreaker(5, 10.0, clock)
        for _ in range(5):
            breaker.failure()
        clock.now = 10.0
        assert breaker.allow() is None
        if succeeds:
            breaker.success()
        else:
            breaker.failure()
        assert breaker.state is state

    def test_a_trial_that_never_reports_is_given_up_after_reset(self) -> None:
        """A trial whose caller vanished blocks others for one reset period only."""
        clock = ManualClock(0.0)
        breaker = ConnectionBreaker(1, 10.0, clock)
        breaker.failure()
        clock.now = 10.0
        assert breaker.allow() is None
        clock.now = 20.0
        assert breaker.allow() is None


class TestPaperVenue:
    async def test_in_process_venue_delivers_fills_before_the_reply_and_is_idempotent(self) -> None:
        """PaperVenue: the fill (strategy set) reaches the sink inside submit(); a resubmit is the same order."""
        received: list[Fill] = []
        engine = MatchingEngine(clock=SystemClock(), id_prefix=paper_id_prefix())
        venue: Venue = PaperVenue(engine, received.append)
        assert isinstance(venue, PaperVenue)
        venue.on_market(TOUCH)
        reply = await venue.submit(intent("p1"))
        assert [(f.order_id, f.strategy, f.price) for f in received] == [(reply.venue_order_id, "alpha", 101.0)]
        again = await venue.submit(intent("p1"))
        assert again.venue_order_id == reply.venue_order_id and len(received) == 1 and len(engine) == 1
        assert (await venue.status("p2")).status is None

    async def test_resting_order_fills_through_on_market_and_can_be_cancelled(self) -> None:
        """A resting limit fills when on_market crosses it; another is cancelled and never fills."""
        received: list[Fill] = []
        venue = PaperVenue(MatchingEngine(clock=SystemClock()), received.append)
        venue.on_market(TOUCH)
        await venue.submit(intent("r1", kind=OrderType.LIMIT, price=100.0))
        await venue.submit(intent("r2", kind=OrderType.LIMIT, price=100.0))
        assert (await venue.cancel("r2")).status is OrderStatus.CANCELLED
        venue.on_market(Tick(symbol=SYM, timestamp_ns=2, bid_price=98.0, bid_size=5.0, ask_price=99.0, ask_size=5.0))
        assert [(f.price, f.quantity) for f in received] == [(100.0, 1.0)]
        assert (await venue.status("r1")).status is OrderStatus.FILLED

    async def test_a_failing_sink_is_counted_and_later_fills_still_delivered(self) -> None:
        """A sink that raises on the first fill: counted in sink_errors; the next fill still arrives."""
        received: list[Fill] = []

        def sink(fill: Fill) -> None:
            if not received:
                received.append(fill)
                raise RuntimeError("journal full")
            received.append(fill)

        venue = PaperVenue(MatchingEngine(clock=SystemClock()), sink)
        venue.on_market(TOUCH)
        await venue.submit(intent("f1"))
        await venue.submit(intent("f2"))
        assert venue.sink_errors == 1 and len(received) == 2


class TestFaultInjection:
    async def test_stop_is_bounded_while_a_dropped_reply_is_held(self) -> None:
        """Stopping the server while a dropped reply is held ends promptly (the held handler is cancelled)."""
        venue = PaperVenueServer(new_engine(), drop_reply_for={"held"}, drop_reply_hold=30.0)
        await venue.start()
        async with grpc.aio.insecure_channel(venue.address) as channel:
            stub = OrderExecutionStub(channel)  # type: ignore[no-untyped-call]  # generated, untyped
            request = pb.OrderRequest(signal_id="held", symbol=SYM, side="buy", order_type="market", quantity=1.0)
            call = asyncio.ensure_future(stub.SubmitOrder(request))
            await wait_until(lambda: venue.stats.dropped_replies == 1)
            started = time.monotonic()
            await asyncio.wait_for(venue.stop(0.1), 5)
            assert time.monotonic() - started < 2
            with pytest.raises(grpc.aio.AioRpcError):
                await call

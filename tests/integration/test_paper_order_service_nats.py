"""The order-service paper venue as a service: NATS publishing checked against b25's JSON, and the command.

``PaperVenueService(protocol="order-service")`` runs in this process against a real redis-server
and nats-server on free ports: market data comes from Redis, and everything it publishes is read
back through one subscription to ``>`` (so in the order of publication: ``orders.updates.<SYMBOL>``,
``trading.fills``, ``trading.positions``), each order update decoded field by field against the shape in
``compat/b25-grpc.md`` (section 2, last paragraph). Then ``strategy-engine paper-venue --protocol
order-service`` runs as a subprocess and is driven with the generated ``OrderServiceStub``: place,
fill from a tick published on Redis, stream, cancel, SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import nats
import orjson
import pytest
import redis.asyncio as aioredis
import yaml

from engine_proto import order_service_pb2 as pb
from engine_proto.order_service_pb2_grpc import OrderServiceStub
from host.config import parse
from host.paper_service import PaperVenueService
from sdk._codec import encode_market, parse_timestamp
from sdk.events import Side, Tick
from tests.helpers import SECOND, wait_until
from tests.integration.operator_stack import engine_command, environment
from tests.servers import NatsServer, RedisServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SYM = "BTCUSDT"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
# b25's Order JSON, in its Go struct's order; the optional keys are left out when empty.
ORDER_KEYS = [
    "order_id", "client_order_id", "exchange_order_id", "symbol", "side", "type", "state", "time_in_force",
    "quantity", "price", "stop_price", "filled_quantity", "average_price", "fee", "fee_asset", "created_at",
    "updated_at", "user_id", "reduce_only", "post_only",
]  # fmt: skip


def keys_without(*omitted: str) -> list[str]:
    return [key for key in ORDER_KEYS if key not in omitted]


def venue_config(redis_server: RedisServer, nats_server: NatsServer, protocol: str) -> dict[str, Any]:
    return {
        "redis": {"port": redis_server.port, "marketDataChannels": ["market:btcusdt"]},
        "nats": {"url": nats_server.url},
        "grpc": {"orderExecutionAddress": f"127.0.0.1:{free_port()}", "protocol": protocol},
        "logging": {"format": "json"},
    }


async def publish_tick(port: int, ask: float, bid: float) -> None:
    client = aioredis.Redis(port=port)
    try:
        tick = Tick(
            symbol=SYM, timestamp_ns=1_800_000_000 * SECOND, bid_price=bid, bid_size=10.0, ask_price=ask, ask_size=10.0
        )
        await client.publish("market:btcusdt", orjson.dumps(encode_market(tick)))
    finally:
        await client.aclose()


class Bus:
    """A NATS connection subscribed to the subjects the venue publishes on; messages in arrival order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.client: Any = None

    async def connect(self, url: str, *subjects: str) -> None:
        self.client = await nats.connect(url)

        async def collect(message: Any) -> None:
            self.messages.append((message.subject, orjson.loads(message.data)))

        for subject in subjects:
            await self.client.subscribe(subject, cb=collect)
        await self.client.flush()

    def updates(self) -> list[dict[str, Any]]:
        return [body for subject, body in self.messages if subject.startswith("orders.updates.")]

    async def close(self) -> None:
        if self.client is not None:
            await self.client.drain()


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    bus = Bus()
    yield bus
    await bus.close()


def check_times(order: dict[str, Any], got: pb.Order) -> None:
    for key, seconds in (("created_at", got.created_at), ("updated_at", got.updated_at)):
        assert RFC3339.match(order[key]), order[key]
        assert parse_timestamp("order", order[key]) // SECOND == seconds


class TestOrderUpdatesOnNats:
    async def test_every_update_is_published_in_b25s_json_after_its_fill(
        self, redis_server: RedisServer, nats_server: NatsServer, bus: Bus
    ) -> None:
        """A market buy, a resting limit cancelled, and a rejected request: orders.updates.BTCUSDT carries
        CREATED, FILLED (after the fill and position on trading.fills/positions), CREATED, CANCELED,
        REJECTED, each {"order", "update_type", "timestamp"} with b25's keys, strings and RFC 3339 times."""
        config = parse(venue_config(redis_server, nats_server, "order-service"), environ={})
        service = PaperVenueService(config, fee_rate=0.001)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop.wait()))
        try:
            await bus.connect(nats_server.url, ">")  # one subscription: its messages arrive in publication order

            async def quoted() -> bool:
                await publish_tick(redis_server.port, ask=101.0, bid=99.0)
                return service.matching.touch(SYM, Side.BUY) == 101.0

            await wait_until(quoted, timeout=10, interval=0.05)
            async with grpc.aio.insecure_channel(config.grpc.order_execution_address) as channel:
                stub = OrderServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, untyped
                market = await stub.CreateOrder(pb.CreateOrderRequest(
                    symbol=SYM, side=pb.BUY, type=pb.MARKET, quantity=1.0, time_in_force=pb.IOC,
                    client_order_id="c-mkt", user_id="u1"), timeout=5)  # fmt: skip
                resting = await stub.CreateOrder(pb.CreateOrderRequest(
                    symbol=SYM, side=pb.SELL, type=pb.LIMIT, quantity=2.0, price=120.5, time_in_force=pb.GTC,
                    client_order_id="c-lim", user_id="u1", post_only=True), timeout=5)  # fmt: skip
                await stub.CancelOrder(pb.CancelOrderRequest(order_id=resting.order_id, symbol=SYM), timeout=5)
                bad = await stub.CreateOrder(pb.CreateOrderRequest(symbol=SYM, type=pb.MARKET, quantity=1.0), timeout=5)
                await wait_until(lambda: len(bus.messages) == 7, timeout=10)
                orders = {reply.order_id: await stub.GetOrder(pb.GetOrderRequest(order_id=reply.order_id), timeout=5)
                          for reply in (market, resting, bad)}  # fmt: skip
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        subjects = [subject for subject, _ in bus.messages]
        updates_subject = "orders.updates.BTCUSDT"
        assert subjects == [updates_subject, "trading.fills", "trading.positions"] + [updates_subject] * 4
        fill, position = bus.messages[1][1], bus.messages[2][1]
        assert (fill["order_id"], fill["strategy"], fill["price"]) == (market.order_id, "u1", 101.0)
        assert (position["strategy"], position["side"], position["quantity"]) == ("u1", "long", 1.0)
        updates = bus.updates()
        assert [(u["update_type"], u["order"]["client_order_id"], u["order"]["state"]) for u in updates] == [
            ("CREATED", "c-mkt", "SUBMITTED"), ("FILLED", "c-mkt", "FILLED"), ("CREATED", "c-lim", "SUBMITTED"),
            ("CANCELED", "c-lim", "CANCELED"), ("REJECTED", bad.client_order_id, "REJECTED"),
        ]  # fmt: skip
        for update in updates:
            assert list(update) == ["order", "update_type", "timestamp"] and RFC3339.match(update["timestamp"])

        filled = updates[1]["order"]
        got = orders[market.order_id].order
        assert list(filled) == keys_without("price", "stop_price")  # a market order has neither
        assert filled == {
            "order_id": got.order_id, "client_order_id": "c-mkt", "exchange_order_id": got.order_id, "symbol": SYM,
            "side": "BUY", "type": "MARKET", "state": "FILLED", "time_in_force": "IOC", "quantity": 1.0,
            "filled_quantity": 1.0, "average_price": 101.0, "fee": got.fee, "fee_asset": "USDT",
            "created_at": filled["created_at"], "updated_at": filled["updated_at"], "user_id": "u1",
            "reduce_only": False, "post_only": False,
        }  # fmt: skip
        assert got.fee == pytest.approx(0.101)
        check_times(filled, got)
        assert updates[0]["order"]["fee_asset"] == "" and updates[0]["order"]["filled_quantity"] == 0.0

        cancelled = updates[3]["order"]
        assert list(cancelled) == keys_without("stop_price")
        assert (cancelled["side"], cancelled["type"], cancelled["time_in_force"], cancelled["price"]) == (
            "SELL", "LIMIT", "GTC", 120.5,
        )  # fmt: skip
        assert (cancelled["quantity"], cancelled["filled_quantity"], cancelled["post_only"]) == (2.0, 0.0, True)
        check_times(cancelled, orders[resting.order_id].order)

        rejected = updates[4]["order"]
        assert list(rejected) == keys_without("exchange_order_id", "price", "stop_price")
        assert (rejected["side"], rejected["type"], rejected["time_in_force"], rejected["user_id"]) == (
            "SIDE_UNSPECIFIED", "MARKET", "TIF_UNSPECIFIED", "",
        )  # fmt: skip
        assert service.updates_published == 5 and service.published == 1


class TestPaperVenueCommand:
    async def test_paper_venue_protocol_order_service_end_to_end(
        self, tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer, bus: Bus
    ) -> None:
        """``strategy-engine paper-venue --protocol order-service`` (the config says orderexecution): a
        stream sees a limit buy placed, filled by a tick published on Redis, another placed and
        cancelled; GetOrder agrees; NATS has the update; SIGTERM ends the command (0) and the stream (OK)."""
        config = venue_config(redis_server, nats_server, "orderexecution")
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        address = config["grpc"]["orderExecutionAddress"]
        await bus.connect(nats_server.url, "orders.updates.BTCUSDT")
        with open(tmp_path / "venue.log", "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *engine_command(), "paper-venue", "--config", str(path), "--protocol", "order-service",
                env=environment(), stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                await asyncio.wait_for(channel.channel_ready(), 30)
                stub = OrderServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, untyped
                stream_end = await self.scenario(stub, redis_server, bus)
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proc.wait(), 30) == 0
                assert await asyncio.wait_for(stream_end, 10) == grpc.StatusCode.OK
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert "order.OrderService" in (tmp_path / "venue.log").read_text()

    async def scenario(
        self, stub: OrderServiceStub, redis_server: RedisServer, bus: Bus
    ) -> asyncio.Future[grpc.StatusCode]:
        """Place, fill, cancel, read back; return the stream reader, which ends with the call's status."""
        updates: list[pb.OrderUpdate] = []
        call = stub.StreamOrderUpdates(pb.StreamOrderUpdatesRequest(symbols=[SYM]))

        async def read() -> grpc.StatusCode:
            async for update in call:
                updates.append(update)
            return await call.code()

        reader = asyncio.ensure_future(read())
        try:

            async def streaming() -> bool:  # the stream has no replay: probe until a probe's update arrives
                await stub.CreateOrder(pb.CreateOrderRequest(symbol=SYM, quantity=1.0), timeout=5)  # rejected
                return bool(updates)

            await wait_until(streaming, timeout=10, interval=0.1)
            placed = await stub.CreateOrder(pb.CreateOrderRequest(
                symbol=SYM, side=pb.BUY, type=pb.LIMIT, price=100.0, quantity=1.0, time_in_force=pb.GTC,
                client_order_id="e2e-1", user_id="desk"), timeout=5)  # fmt: skip
            assert placed.state == pb.SUBMITTED

            async def filled() -> bool:  # the venue's Redis subscription is made at start: publish until it sees one
                await publish_tick(redis_server.port, ask=99.5, bid=99.0)
                return any(u.update_type == "FILLED" for u in updates)

            await wait_until(filled, timeout=15, interval=0.1)
            other = await stub.CreateOrder(pb.CreateOrderRequest(
                symbol=SYM, side=pb.BUY, type=pb.LIMIT, price=90.0, quantity=1.0, time_in_force=pb.GTC,
                client_order_id="e2e-2", user_id="desk"), timeout=5)  # fmt: skip
            cancel = await stub.CancelOrder(pb.CancelOrderRequest(order_id=other.order_id, symbol=SYM), timeout=5)
            assert (cancel.state, cancel.error_message) == (pb.CANCELED, "")
            await wait_until(lambda: any(u.update_type == "CANCELED" for u in updates), timeout=5)
            mine = [(u.order.client_order_id, u.update_type, u.order.filled_quantity) for u in updates
                    if u.order.user_id == "desk"]  # fmt: skip
            assert mine == [("e2e-1", "CREATED", 0.0), ("e2e-1", "FILLED", 1.0), ("e2e-2", "CREATED", 0.0),
                            ("e2e-2", "CANCELED", 0.0)]  # fmt: skip
            got = (await stub.GetOrder(pb.GetOrderRequest(order_id="e2e-1"), timeout=5)).order
            assert (got.order_id, got.state, got.filled_quantity, got.average_price) == (
                placed.order_id, pb.FILLED, 1.0, 100.0,
            )  # fmt: skip
            await wait_until(lambda: any(u["update_type"] == "FILLED" for u in bus.updates()), timeout=5)
        except BaseException:
            call.cancel()
            raise
        return reader

    async def test_the_protocol_defaults_to_grpc_protocol(
        self, tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer
    ) -> None:
        """With grpc.protocol: order-service and no --protocol, the command serves order.OrderService."""
        config = venue_config(redis_server, nats_server, "order-service")
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = await asyncio.create_subprocess_exec(
            *engine_command(), "paper-venue", "--config", str(path), env=environment(),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            async with grpc.aio.insecure_channel(config["grpc"]["orderExecutionAddress"]) as channel:
                await asyncio.wait_for(channel.channel_ready(), 30)
                stub = OrderServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, untyped
                reply = await stub.CreateOrder(pb.CreateOrderRequest(
                    symbol=SYM, side=pb.BUY, type=pb.LIMIT, price=1.0, quantity=1.0), timeout=5)  # fmt: skip
                assert reply.state == pb.SUBMITTED and reply.order_id
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0

"""FillFeed against a real nats-server: formats, routing, bad input, de-duplication, reconnects, JetStream.

Messages are published with a separate nats-py client, as the peers' services would. The ledger is
an in-memory stand-in that records a fill id once and answers False after, as the real one does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import api as js_api
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from host.config import NatsConfig
from host.feeds.fills import FeedError, FillDedupe, FillFeed
from sdk.events import Fill, Position, Side
from tests.helpers import wait_until
from tests.servers import NatsServer, free_port

pytestmark = pytest.mark.integration

FILLS, POSITIONS = "trading.fills", "trading.positions"
STREAM, DURABLE = "TRADING", "strategy-engine"
ORDERS = {"o-1": "mm", "o-2": "momentum"}
WHEN = "2024-08-08T23:54:14.087891Z"


def seed_fill(fill_id: str = "f-1", **changes: Any) -> dict[str, Any]:
    """A fill as the seed service publishes it."""
    fill = {
        "fill_id": fill_id, "order_id": "o-2", "symbol": "BTCUSDT", "side": "buy", "price": 50000.5,
        "quantity": 0.1, "fee": 0.01, "timestamp": WHEN, "strategy": "momentum",
    }  # fmt: skip
    fill.update(changes)
    return fill


def peer_fill(fill_id: str = "p-1", order_id: str = "o-1") -> dict[str, Any]:
    """A fill as peers publish it: ``id``, upper-case side, numbers as strings, no strategy."""
    return {
        "id": fill_id, "order_id": order_id, "symbol": "ETHUSDT", "side": "SELL", "price": "3000.25",
        "quantity": "2.5", "fee": "0.75", "timestamp": WHEN,
    }  # fmt: skip


# The account monitor's fill, byte for byte as it publishes it: ``id``, no ``order_id``, strings, ``fee_currency``.
ACCOUNT_MONITOR_FILL = (
    b'{"id":"fill-test-001","symbol":"BTCUSDT","side":"BUY","quantity":"0.001","price":"50000.00",'
    b'"fee":"0.05","fee_currency":"USDT","timestamp":"2025-10-06T10:00:01Z","strategy":"momentum"}'
)


def seed_position(**changes: Any) -> dict[str, Any]:
    position = {
        "symbol": "BTCUSDT", "side": "long", "quantity": 0.5, "avg_entry_price": 50000.0, "current_price": 50100.0,
        "unrealized_pnl": 50.0, "realized_pnl": 0.0, "timestamp": WHEN, "strategy": "momentum",
    }  # fmt: skip
    position.update(changes)
    return position


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def encode(message: dict[str, Any] | bytes) -> bytes:
    return message if isinstance(message, bytes) else json.dumps(message).encode()


class Ledger:
    """Stands in for the ledger: records a fill id once, then answers False; can fail a fill once."""

    def __init__(self, fail_once: Iterable[str] = ()) -> None:
        self.calls: list[str] = []
        self.fills: list[tuple[str, Fill]] = []
        self.positions: list[tuple[str, Position]] = []
        self._fail_once = set(fail_once)

    @property
    def ids(self) -> list[str]:
        return [fill.fill_id for _, fill in self.fills]

    async def on_fill(self, strategy: str, fill: Fill) -> bool:
        self.calls.append(fill.fill_id)
        if fill.fill_id in self._fail_once:
            self._fail_once.discard(fill.fill_id)
            raise OSError("disk I/O error")
        if fill.fill_id in self.ids:
            return False
        self.fills.append((strategy, fill))
        return True

    def on_position(self, strategy: str, position: Position) -> None:
        self.positions.append((strategy, position))


def make_feed(
    server: NatsServer, ledger: Ledger, *, registry: CollectorRegistry | None = None,
    on_subscribed: Callable[[str], object] | None = None, **nats_config: Any,
) -> FillFeed:  # fmt: skip
    nats_config.setdefault("jetstream", server.jetstream)
    config = NatsConfig(url=server.url, reconnect_wait=0.05, **nats_config)
    return FillFeed(
        config, on_fill=ledger.on_fill, on_position=ledger.on_position, route=ORDERS.get,
        registry=registry or CollectorRegistry(), dedupe=FillDedupe(), retry_delay=0.1, on_subscribed=on_subscribed,
    )  # fmt: skip


@asynccontextmanager
async def running(feed: FillFeed) -> AsyncIterator[FillFeed]:
    """The feed's ``run`` as a task, connected; closed (and its error raised) on the way out."""
    task = asyncio.create_task(feed.run())
    try:
        await wait_until(lambda: feed.connected or task.done(), timeout=10)
        if task.done():
            task.result()
        yield feed
    finally:
        await feed.close()
        await asyncio.wait_for(task, 10)


def metric(feed: FillFeed, name: str, **labels: str) -> float:
    return feed.metrics.registry.get_sample_value(f"strategy_engine_{name}", labels) or 0.0


@pytest.fixture
async def pub(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A publisher of its own, as a peer service is."""
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
async def js_pub(jetstream_server: NatsServer) -> AsyncIterator[Client]:
    client = await nats.connect(jetstream_server.url)
    yield client
    await client.close()


async def settled(client: Client) -> bool:
    """The durable consumer has nothing waiting and nothing un-acked."""
    info = await client.jetstream().consumer_info(STREAM, DURABLE)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


class TestFormatsAndRouting:
    async def test_seed_fill_reaches_its_strategy(self, nats_server: NatsServer, pub: Client) -> None:
        """A fill in the seed's JSON reaches on_fill for the strategy it names, every field decoded."""
        ledger = Ledger()
        async with running(make_feed(nats_server, ledger)) as feed:
            await pub.publish(FILLS, encode(seed_fill()))
            await wait_until(lambda: len(ledger.fills) == 1)
        [(strategy, fill)] = ledger.fills
        assert strategy == "momentum"
        assert (fill.fill_id, fill.order_id, fill.symbol, fill.side) == ("f-1", "o-2", "BTCUSDT", Side.BUY)
        assert (fill.price, fill.quantity, fill.fee) == (50000.5, 0.1, 0.01)
        assert fill.time == datetime(2024, 8, 8, 23, 54, 14, 87891, tzinfo=UTC)
        assert metric(feed, "fills_received_total", strategy="momentum") == 1

    async def test_peer_fill_is_routed_by_its_order(self, nats_server: NatsServer, pub: Client) -> None:
        """A peer's fill (``id``, ``SELL``, strings, no strategy) goes to the strategy owning its order."""
        ledger = Ledger()
        async with running(make_feed(nats_server, ledger)) as feed:
            await pub.publish(FILLS, encode(peer_fill()))
            await wait_until(lambda: len(ledger.fills) == 1)
        [(strategy, fill)] = ledger.fills
        assert strategy == "mm"
        assert (fill.fill_id, fill.side, fill.price, fill.quantity, fill.fee) == ("p-1", Side.SELL, 3000.25, 2.5, 0.75)
        assert metric(feed, "fills_received_total", strategy="mm") == 1

    async def test_account_monitor_fill_is_routed_by_its_strategy(self, nats_server: NatsServer, pub: Client) -> None:
        """The account monitor's fill (no order_id, fee_currency) reaches on_fill for the strategy it names."""
        ledger = Ledger()
        asked: list[str] = []
        feed = make_feed(nats_server, ledger)
        feed._route = lambda order_id: asked.append(order_id)  # type: ignore[assignment,func-returns-value]
        async with running(feed):
            await pub.publish(FILLS, ACCOUNT_MONITOR_FILL)
            await pub.publish(FILLS, ACCOUNT_MONITOR_FILL)  # a re-send: de-duplicated by its id
            await wait_until(lambda: metric(feed, "fills_duplicate_total") == 1)
        [(strategy, fill)] = ledger.fills
        assert strategy == "momentum" and asked == []
        assert (fill.fill_id, fill.order_id, fill.side, fill.quantity, fill.price) == (
            "fill-test-001", "", Side.BUY, 0.001, 50000.0,
        )  # fmt: skip
        assert (fill.fee, fill.fee_currency) == (0.05, "USDT")
        assert metric(feed, "fill_errors_total", subject=FILLS, field="fee_currency") == 0

    async def test_strategy_field_wins_over_the_order(self, nats_server: NatsServer, pub: Client) -> None:
        """When the fill names its strategy, the order lookup is not asked."""
        ledger = Ledger()
        async with running(make_feed(nats_server, ledger)):
            await pub.publish(FILLS, encode(seed_fill(order_id="o-1", strategy="scalper")))
            await wait_until(lambda: len(ledger.fills) == 1)
        assert ledger.fills[0][0] == "scalper"

    async def test_seed_position_reaches_its_strategy(self, nats_server: NatsServer, pub: Client) -> None:
        """A position in the seed's JSON reaches on_position for its strategy, signed by its side."""
        ledger = Ledger()
        async with running(make_feed(nats_server, ledger)) as feed:
            await pub.publish(POSITIONS, encode(seed_position()))
            await wait_until(lambda: len(ledger.positions) == 1)
        [(strategy, position)] = ledger.positions
        assert strategy == "momentum"
        assert (position.symbol, position.quantity, position.avg_entry_price) == ("BTCUSDT", 0.5, 50000.0)
        assert (position.current_price, position.unrealized_pnl) == (50100.0, 50.0)
        assert metric(feed, "position_updates_total", strategy="momentum") == 1

    async def test_exchange_position_fields_are_accepted(self, nats_server: NatsServer, pub: Client) -> None:
        """A position carrying leverage, margin, mark and liquidation prices reaches its strategy as the seed's."""
        ledger = Ledger()
        extra = {"leverage": "10", "margin_type": "isolated", "mark_price": "50100", "liquidation_price": "45000.5"}
        async with running(make_feed(nats_server, ledger)) as feed:
            await pub.publish(POSITIONS, encode(seed_position(**extra)))
            await wait_until(lambda: len(ledger.positions) == 1)
        assert ledger.positions[0][1].quantity == 0.5
        assert metric(feed, "position_updates_total", strategy="momentum") == 1

    async def test_peer_position_with_upper_case_side(self, nats_server: NatsServer, pub: Client) -> None:
        """A peer's position (``SHORT``, numbers as strings) is a negative quantity for its strategy."""
        ledger = Ledger()
        peer = seed_position(side="SHORT", quantity="2.5", avg_entry_price="3000", unrealized_pnl="-12.5",
                             strategy="mm")  # fmt: skip
        async with running(make_feed(nats_server, ledger)):
            await pub.publish(POSITIONS, encode(peer))
            await wait_until(lambda: len(ledger.positions) == 1)
        [(strategy, position)] = ledger.positions
        assert strategy == "mm"
        assert (position.quantity, position.avg_entry_price, position.unrealized_pnl) == (-2.5, 3000.0, -12.5)

    async def test_live_fill_latency_is_observed(self, nats_server: NatsServer, pub: Client) -> None:
        """A fill stamped just now is observed in fill_latency_microseconds; a replayed old one is not."""
        ledger = Ledger()
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        async with running(make_feed(nats_server, ledger)) as feed:
            await pub.publish(FILLS, encode(seed_fill("old")))
            await pub.publish(FILLS, encode(seed_fill("live", timestamp=now)))
            await wait_until(lambda: len(ledger.fills) == 2)
        assert metric(feed, "fill_latency_microseconds_count") == 1


class TestUnroutable:
    async def test_fill_of_an_unknown_order_is_counted_and_logged(self, nats_server: NatsServer, pub: Client) -> None:
        """A fill with no strategy and an order nobody knows is counted and logged, not handed on."""
        ledger = Ledger()
        with capture_logs() as logs:
            async with running(make_feed(nats_server, ledger)) as feed:
                await pub.publish(FILLS, encode(peer_fill("lost", order_id="o-404")))
                await pub.publish(FILLS, encode(seed_fill()))
                await wait_until(lambda: len(ledger.fills) == 1)
        assert ledger.calls == ["f-1"]
        assert metric(feed, "fills_unroutable_total") == 1
        [event] = [e for e in logs if e["event"] == "fill_unroutable"]
        assert (event["fill_id"], event["order_id"], event["subject"]) == ("lost", "o-404", FILLS)

    async def test_fill_with_neither_strategy_nor_order_is_counted(self, nats_server: NatsServer, pub: Client) -> None:
        """The account monitor's fill without its strategy is counted and logged naming the field, not routed."""
        ledger = Ledger()
        asked: list[str] = []
        feed = make_feed(nats_server, ledger)
        feed._route = lambda order_id: asked.append(order_id)  # type: ignore[assignment,func-returns-value]
        nameless = without(json.loads(ACCOUNT_MONITOR_FILL), "strategy")
        with capture_logs() as logs:
            async with running(feed):
                await pub.publish(FILLS, encode(nameless))
                await pub.publish(FILLS, encode(seed_fill()))
                await wait_until(lambda: len(ledger.fills) == 1)
        assert ledger.calls == ["f-1"] and asked == []
        assert metric(feed, "fills_unroutable_total") == 1
        [event] = [e for e in logs if e["event"] == "fill_unroutable"]
        assert (event["fill_id"], event["order_id"], event["field"]) == ("fill-test-001", "", "strategy")
        assert "no strategy field and no order_id" in event["reason"]

    async def test_position_without_strategy_is_counted(self, nats_server: NatsServer, pub: Client) -> None:
        """A position naming no strategy is counted and logged, not handed on."""
        ledger = Ledger()
        with capture_logs() as logs:
            async with running(make_feed(nats_server, ledger)) as feed:
                await pub.publish(POSITIONS, encode(without(seed_position(), "strategy")))
                await pub.publish(POSITIONS, encode(seed_position()))
                await wait_until(lambda: len(ledger.positions) == 1)
        assert metric(feed, "positions_unroutable_total") == 1
        assert [e["symbol"] for e in logs if e["event"] == "position_unroutable"] == ["BTCUSDT"]


BAD_MESSAGES = [
    pytest.param(FILLS, b'{"fill_id": "f-x", "price": ', "json", id="fill-malformed-json"),
    pytest.param(FILLS, b"[1, 2]", "json", id="fill-not-an-object"),
    pytest.param(FILLS, seed_fill("bad", colour="red"), "colour", id="fill-unknown-field"),
    pytest.param(FILLS, seed_fill("bad", price="abc"), "price", id="fill-price-not-a-number"),
    pytest.param(FILLS, seed_fill("bad", side=7), "side", id="fill-side-wrong-type"),
    pytest.param(FILLS, seed_fill("bad", quantity=-1), "quantity", id="fill-negative-quantity"),
    pytest.param(FILLS, without(seed_fill(), "fill_id"), "fill_id", id="fill-missing-fill-id"),
    pytest.param(FILLS, seed_fill("bad", fee_currency="USDT", quantiy=1), "quantiy", id="fill-misspelt-field"),
    pytest.param(POSITIONS, b"not json", "json", id="position-malformed-json"),
    pytest.param(POSITIONS, seed_position(leverage=3, quantiy=1), "quantiy", id="position-unknown-field"),
    pytest.param(POSITIONS, seed_position(quantity=[1]), "quantity", id="position-quantity-wrong-type"),
]


class TestBadInput:
    @pytest.mark.parametrize(("subject", "message", "field"), BAD_MESSAGES)
    async def test_bad_message_is_rejected_and_the_feed_goes_on(
        self, nats_server: NatsServer, pub: Client, subject: str, message: dict[str, Any] | bytes, field: str
    ) -> None:
        """Bad input is counted and logged by subject and field; the good messages around it arrive."""
        ledger = Ledger()
        before, after = (seed_fill("g-1"), seed_fill("g-2")) if subject == FILLS else (seed_position(),) * 2
        arrived = ledger.fills if subject == FILLS else ledger.positions
        with capture_logs() as logs:
            async with running(make_feed(nats_server, ledger)) as feed:
                for each in (before, message, after):
                    await pub.publish(subject, encode(each))
                await wait_until(lambda: len(arrived) == 2)
        assert metric(feed, "fill_errors_total", subject=subject, field=field) == 1
        [event] = [e for e in logs if e["event"] == "message_rejected"]
        assert (event["subject"], event["field"]) == (subject, field)
        assert event["reason"] and event["log_level"] == "warning"
        if subject == FILLS:
            assert ledger.ids == ["g-1", "g-2"]


class TestDeduplication:
    async def test_fill_published_twice_reaches_on_fill_once(self, nats_server: NatsServer, pub: Client) -> None:
        """The second delivery of a fill id is counted as a duplicate and never reaches on_fill."""
        ledger = Ledger()
        async with running(make_feed(nats_server, ledger)) as feed:
            for message in (seed_fill("f-1"), peer_fill("f-1"), seed_fill("f-2")):
                await pub.publish(FILLS, encode(message))
            await wait_until(lambda: metric(feed, "fills_duplicate_total") == 1 and len(ledger.fills) == 2)
        assert ledger.calls == ["f-1", "f-2"]

    async def test_fill_the_ledger_already_holds_is_a_duplicate(self, nats_server: NatsServer, pub: Client) -> None:
        """A fill on_fill answers False for (recorded before a restart) counts as a duplicate, not a fill."""
        ledger = Ledger()
        await ledger.on_fill(
            "momentum",
            Fill(
                fill_id="f-1", order_id="o-2", symbol="BTCUSDT", side=Side.BUY, price=1.0, quantity=1.0, timestamp_ns=0
            ),
        )
        async with running(make_feed(nats_server, ledger)) as feed:
            await pub.publish(FILLS, encode(seed_fill("f-1")))
            await wait_until(lambda: metric(feed, "fills_duplicate_total") == 1)
        assert metric(feed, "fills_received_total", strategy="momentum") == 0

    async def test_fill_whose_ledger_write_failed_is_taken_again(self, nats_server: NatsServer, pub: Client) -> None:
        """A fill whose on_fill raised is counted and not remembered: a re-send of it is recorded."""
        ledger = Ledger(fail_once=["f-1"])
        with capture_logs() as logs:
            async with running(make_feed(nats_server, ledger)) as feed:
                await pub.publish(FILLS, encode(seed_fill("f-1")))
                await wait_until(lambda: metric(feed, "fills_failed_total") == 1)
                await pub.publish(FILLS, encode(seed_fill("f-1")))
                await wait_until(lambda: ledger.ids == ["f-1"])
        [event] = [e for e in logs if e["event"] == "fill_failed"]
        assert event["fill_id"] == "f-1" and "disk I/O error" in event["error"]


class TestConnection:
    async def test_feed_reconnects_after_the_server_dies(self, nats_server: NatsServer) -> None:
        """Server killed: connected goes False, then True once it is back; later fills arrive; both counted."""
        ledger = Ledger()
        with capture_logs() as logs:
            async with running(make_feed(nats_server, ledger, max_reconnects=-1)) as feed:
                nats_server.stop()
                await wait_until(lambda: not feed.connected)
                assert metric(feed, "nats_disconnects_total") == 1
                nats_server.start()
                await wait_until(lambda: feed.connected, timeout=10)
                assert metric(feed, "nats_reconnects_total") == 1
                client = await nats.connect(nats_server.url)
                await client.publish(FILLS, encode(seed_fill("after")))
                await client.close()
                await wait_until(lambda: ledger.ids == ["after"])
        events = [e["event"] for e in logs]
        assert events.index("nats_disconnected") < events.index("nats_reconnected")

    async def test_fills_arrive_after_a_server_restart(self, nats_server: NatsServer) -> None:
        """After ``restart()`` the feed reconnects by itself and takes the fills published since."""
        ledger = Ledger()
        async with running(make_feed(nats_server, ledger)) as feed:
            nats_server.restart()
            await wait_until(lambda: metric(feed, "nats_reconnects_total") == 1 and feed.connected, timeout=10)
            client = await nats.connect(nats_server.url)
            await client.publish(FILLS, encode(seed_fill("after")))
            await client.close()
            await wait_until(lambda: ledger.ids == ["after"])
        assert metric(feed, "nats_disconnects_total") == 1

    async def test_each_time_core_subscriptions_are_live_again_the_engine_is_told(
        self, nats_server: NatsServer
    ) -> None:
        """Core NATS drops what is published while nobody is subscribed: the first subscription, a
        reconnect and a replaced client each call ``on_subscribed`` (the engine reconciles then)."""
        told: list[str] = []
        feed = make_feed(nats_server, Ledger(), max_reconnects=1, on_subscribed=told.append)
        async with running(feed):
            await wait_until(lambda: told == ["fills_subscribed"])
            nats_server.restart()
            await wait_until(lambda: told == ["fills_subscribed", "fills_resubscribed"] and feed.connected, timeout=10)
            nats_server.stop()
            await wait_until(lambda: metric(feed, "nats_connect_retries_total") >= 1, timeout=15)
            nats_server.start()
            await wait_until(lambda: told[-1:] == ["fills_subscribed"] and len(told) == 3, timeout=15)

    async def test_a_client_that_gave_up_is_replaced_when_the_server_returns(self, nats_server: NatsServer) -> None:
        """maxReconnects exhausted is not fatal: a new client is tried with backoff until the server is back."""
        ledger = Ledger()
        feed = make_feed(nats_server, ledger, max_reconnects=1)
        async with running(feed):
            await wait_until(lambda: feed.connected)
            nats_server.stop()
            await wait_until(lambda: metric(feed, "nats_connect_retries_total") >= 2, timeout=15)
            assert not feed.connected
            nats_server.start()
            await wait_until(lambda: feed.connected, timeout=15)
            client = await nats.connect(nats_server.url)
            await client.publish(FILLS, encode(seed_fill("back")))
            await client.close()
            await wait_until(lambda: ledger.ids == ["back"])

    async def test_jetstream_switched_on_against_a_core_server(self, nats_server: NatsServer) -> None:
        """nats.jetstream on a server without JetStream: run raises saying so."""
        feed = make_feed(nats_server, Ledger(), jetstream=True)
        with pytest.raises(FeedError, match="is JetStream enabled"):
            await asyncio.wait_for(feed.run(), 10)

    async def test_no_server_yet_is_retried_and_logged_naming_the_url(self, tmp_path: Any) -> None:
        """With nothing listening, run keeps trying (logged with the URL, counted) and close() still ends it."""
        url = f"nats://127.0.0.1:{free_port()}"
        ledger = Ledger()
        config = NatsConfig(url=url, max_reconnects=1, reconnect_wait=0.05)
        feed = FillFeed(config, on_fill=ledger.on_fill, on_position=ledger.on_position, route=ORDERS.get)
        with capture_logs() as logs:
            task = asyncio.create_task(feed.run())
            await wait_until(lambda: metric(feed, "nats_connect_retries_total") >= 2, timeout=10)
            assert not feed.connected and not task.done()
            await feed.close()
            await asyncio.wait_for(task, 10)
        unreachable = [e for e in logs if e["event"] == "nats_unreachable"]
        assert unreachable and unreachable[0]["url"] == url and "cannot connect" in unreachable[0]["reason"]

    async def test_close_while_connecting_ends_run(self) -> None:
        """close() during endless connect attempts ends run without an error."""
        ledger = Ledger()
        config = NatsConfig(url=f"nats://127.0.0.1:{free_port()}", max_reconnects=-1, reconnect_wait=0.05)
        feed = FillFeed(config, on_fill=ledger.on_fill, on_position=ledger.on_position, route=ORDERS.get)
        task = asyncio.create_task(feed.run())
        await asyncio.sleep(0)  # let run start connecting
        await feed.close()
        await asyncio.wait_for(task, 5)


class TestJetStream:
    async def test_fills_published_while_down_arrive_once(
        self, jetstream_server: NatsServer, js_pub: Client
    ) -> None:  # fmt: skip
        """Host down, 5 fills published (one twice, same Nats-Msg-Id); a new feed gets each exactly once."""
        ledger = Ledger()
        async with running(make_feed(jetstream_server, ledger)):
            pass  # creates the stream and the durable consumer, then the host goes down
        js = js_pub.jetstream()
        fills = [seed_fill(f"f-{i}") for i in range(5)]
        for message in [*fills, fills[2]]:
            await js.publish(FILLS, encode(message), headers={"Nats-Msg-Id": message["fill_id"]})
        async with running(make_feed(jetstream_server, ledger)) as feed:
            await wait_until(lambda: len(ledger.fills) == 5)
            await wait_until(lambda: settled(js_pub))
        assert ledger.calls == [f"f-{i}" for i in range(5)]
        assert metric(feed, "fills_received_total", strategy="momentum") == 5
        assert (await js.stream_info(STREAM)).state.messages == 5  # the stream dropped the re-send

    async def test_resend_without_msg_id_is_caught_by_the_ledger(
        self, jetstream_server: NatsServer, js_pub: Client
    ) -> None:  # fmt: skip
        """A fill recorded before the restart and re-sent while down reaches the new feed's on_fill, which says
        False: counted as a duplicate, acked, recorded once."""
        ledger = Ledger()
        async with running(make_feed(jetstream_server, ledger)):
            await js_pub.publish(FILLS, encode(seed_fill("f-1")))  # a peer publishes on core NATS
            await wait_until(lambda: ledger.ids == ["f-1"])
        for message in (seed_fill("f-1"), seed_fill("f-2")):
            await js_pub.publish(FILLS, encode(message))
        async with running(make_feed(jetstream_server, ledger)) as feed:
            await wait_until(lambda: ledger.ids == ["f-1", "f-2"])
            await wait_until(lambda: settled(js_pub))
        assert ledger.calls == ["f-1", "f-1", "f-2"]
        assert metric(feed, "fills_duplicate_total") == 1

    async def test_duplicate_within_one_process_reaches_on_fill_once(
        self, jetstream_server: NatsServer, js_pub: Client
    ) -> None:  # fmt: skip
        """A fill in the stream twice (no msg id) reaches on_fill once; both deliveries are acked."""
        ledger = Ledger()
        async with running(make_feed(jetstream_server, ledger)) as feed:
            for message in (seed_fill("f-1"), peer_fill("f-1"), seed_fill("f-2")):
                await js_pub.publish(FILLS, encode(message))
            await wait_until(lambda: ledger.ids == ["f-1", "f-2"])
            await wait_until(lambda: settled(js_pub))
        assert ledger.calls == ["f-1", "f-2"]
        assert metric(feed, "fills_duplicate_total") == 1

    async def test_failed_fill_is_redelivered_and_recorded_once(
        self, jetstream_server: NatsServer, js_pub: Client
    ) -> None:  # fmt: skip
        """A fill whose on_fill raised is not acked: JetStream redelivers it and it is recorded once."""
        ledger = Ledger(fail_once=["f-1"])
        async with running(make_feed(jetstream_server, ledger)) as feed:
            await js_pub.publish(FILLS, encode(seed_fill("f-1")))
            await wait_until(lambda: ledger.ids == ["f-1"])
            await wait_until(lambda: settled(js_pub))
        assert ledger.calls == ["f-1", "f-1"]
        assert metric(feed, "fills_failed_total") == 1
        assert metric(feed, "fills_received_total", strategy="momentum") == 1

    async def test_unroutable_fill_is_counted_and_terminated(
        self, jetstream_server: NatsServer, js_pub: Client
    ) -> None:  # fmt: skip
        """An unroutable fill is counted, then terminated: settled at once, never redelivered."""
        ledger = Ledger()
        async with running(make_feed(jetstream_server, ledger)) as feed:
            await js_pub.publish(FILLS, encode(peer_fill("lost", order_id="o-404")))
            await js_pub.publish(FILLS, encode(seed_fill("f-1")))
            await wait_until(lambda: ledger.ids == ["f-1"])
            await wait_until(lambda: settled(js_pub))
        info = await js_pub.jetstream().consumer_info(STREAM, DURABLE)
        assert info.num_redelivered == 0
        assert metric(feed, "fills_unroutable_total") == 1
        assert ledger.calls == ["f-1"]

    async def test_bad_message_is_counted_and_terminated(self, jetstream_server: NatsServer, js_pub: Client) -> None:
        """Malformed JSON on the stream is counted by subject and field, terminated, and the feed goes on."""
        ledger = Ledger()
        async with running(make_feed(jetstream_server, ledger)) as feed:
            await js_pub.publish(FILLS, b"{not json")
            await js_pub.publish(FILLS, encode(seed_fill("f-1")))
            await wait_until(lambda: ledger.ids == ["f-1"])
            await wait_until(lambda: settled(js_pub))
        assert metric(feed, "fill_errors_total", subject=FILLS, field="json") == 1

    async def test_position_published_while_down_arrives(self, jetstream_server: NatsServer, js_pub: Client) -> None:
        """Positions ride the same durable consumer: published while down, delivered after, in order."""
        ledger = Ledger()
        async with running(make_feed(jetstream_server, ledger)):
            pass
        await js_pub.publish(POSITIONS, encode(seed_position(quantity=0.5)))
        await js_pub.publish(FILLS, encode(seed_fill("f-1")))
        await js_pub.publish(POSITIONS, encode(seed_position(quantity=0.6)))
        async with running(make_feed(jetstream_server, ledger)):
            await wait_until(lambda: len(ledger.positions) == 2 and len(ledger.fills) == 1)
            await wait_until(lambda: settled(js_pub))
        assert [p.quantity for _, p in ledger.positions] == [0.5, 0.6]

    async def test_feed_resumes_after_a_server_restart(self, jetstream_server: NatsServer) -> None:
        """After the JetStream server restarts (its store kept), the feed reconnects and pulls again; it
        replays what it missed, so the engine is not told to reconcile for it (``on_subscribed``)."""
        ledger = Ledger()
        told: list[str] = []
        async with running(make_feed(jetstream_server, ledger, on_subscribed=told.append)) as feed:
            jetstream_server.restart()
            await wait_until(lambda: metric(feed, "nats_reconnects_total") == 1 and feed.connected, timeout=10)
            client = await nats.connect(jetstream_server.url)
            await client.publish(FILLS, encode(seed_fill("after")))
            await wait_until(lambda: ledger.ids == ["after"], timeout=10)
            await wait_until(lambda: settled(client))
            await client.close()
        assert told == []

    async def test_stream_over_a_wildcard_is_used(self, jetstream_server: NatsServer, js_pub: Client) -> None:
        """An existing stream whose subjects cover both (``trading.>``) is used as it is."""
        await js_pub.jetstream().add_stream(name=STREAM, subjects=["trading.>"])
        ledger = Ledger()
        async with running(make_feed(jetstream_server, ledger)):
            await js_pub.publish(FILLS, encode(seed_fill("f-1")))
            await wait_until(lambda: ledger.ids == ["f-1"])
        assert (await js_pub.jetstream().stream_info(STREAM)).config.subjects == ["trading.>"]

    async def test_stream_with_other_subjects_is_a_clear_error(
        self, jetstream_server: NatsServer, js_pub: Client
    ) -> None:  # fmt: skip
        """A stream of that name without the subjects: run raises naming the stream, its subjects and ours."""
        await js_pub.jetstream().add_stream(name=STREAM, subjects=["orders.>"])
        feed = make_feed(jetstream_server, Ledger())
        with pytest.raises(FeedError) as raised:
            await asyncio.wait_for(feed.run(), 10)
        text = str(raised.value)
        assert all(part in text for part in ("'TRADING'", "orders.>", FILLS, POSITIONS, "nats.stream")), text

    async def test_subjects_held_by_another_stream_are_a_clear_error(
        self, jetstream_server: NatsServer, js_pub: Client
    ) -> None:  # fmt: skip
        """When another stream already holds the subjects, the error names that stream."""
        await js_pub.jetstream().add_stream(name="EVERYTHING", subjects=["trading.>"])
        feed = make_feed(jetstream_server, Ledger())
        with pytest.raises(FeedError, match="'EVERYTHING'") as raised:
            await asyncio.wait_for(feed.run(), 10)
        assert "'TRADING'" in str(raised.value)

    async def test_incompatible_durable_is_a_clear_error(self, jetstream_server: NatsServer, js_pub: Client) -> None:
        """A durable of that name with another ack policy: run raises naming it and the way out."""
        js = js_pub.jetstream()
        await js.add_stream(name=STREAM, subjects=[FILLS, POSITIONS])
        await js.add_consumer(STREAM, js_api.ConsumerConfig(durable_name=DURABLE, ack_policy=js_api.AckPolicy.NONE))
        feed = make_feed(jetstream_server, Ledger())
        with pytest.raises(FeedError, match="jetstream consumer 'strategy-engine'") as raised:
            await asyncio.wait_for(feed.run(), 10)
        assert "nats.durableName" in str(raised.value)

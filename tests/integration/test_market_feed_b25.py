"""MarketDataFeed reading b25's channels (``redis.marketDataFormats``) from a real redis-server.

The messages are b25's market-data service's (compat/messages.md), published with redis-py to the
channels it publishes on; the feed subscribes to the patterns ``market_data:*``, ``orderbook:*`` and
``trades:*`` as a b25 deployment's config names them, beside a seed channel, and hands what it
accepts to a recording sink.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import redis.asyncio
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from host.config import parse
from host.feeds import MarketDataFeed
from sdk.events import Book, MarketEvent, Side, Tick, Trade
from tests.helpers import wait_until
from tests.servers import RedisServer

pytestmark = pytest.mark.integration

NS = "strategy_engine"
TICKER, BOOK, TRADES = "market_data:BTCUSDT", "orderbook:BTCUSDT", "trades:BTCUSDT"
B25_FORMATS = {"market_data:*": "b25-ticker", "orderbook:*": "b25-book", "trades:*": "b25-trade"}
UPDATED_AT = "2026-11-26T12:00:00.123456+00:00"
T_NS = 1_795_694_400_123_456_000


def ticker(**fields: Any) -> dict[str, Any]:
    message = {"symbol": "BTCUSDT", "last_price": 61837.635, "bid_price": 61837.63, "ask_price": 61837.64,
               "volume_24h": 0.0, "high_24h": 0.0, "low_24h": 0.0, "updated_at": UPDATED_AT}  # fmt: skip
    return {**message, **fields}


def book(update_id: int, **fields: Any) -> dict[str, Any]:
    message = {"symbol": "BTCUSDT", "bids": {"61837.62": 0.4, "61837.63": 1.2},
               "asks": {"61837.64": 0.8, "61837.65": 2.5}, "last_update_id": update_id, "timestamp": T_NS // 1000,
               "initialized": True}  # fmt: skip
    return {**message, **fields}


def trade(trade_id: int, **fields: Any) -> dict[str, Any]:
    message = {"symbol": "BTCUSDT", "trade_id": trade_id, "price": 61837.64, "quantity": 0.0125,
               "timestamp": T_NS // 1_000_000, "is_buyer_maker": True}  # fmt: skip
    return {**message, **fields}


class Sink:
    def __init__(self) -> None:
        self.events: list[MarketEvent] = []

    def __call__(self, event: MarketEvent) -> None:
        self.events.append(event)


FeedFactory = Callable[..., tuple[MarketDataFeed, Sink]]


@pytest.fixture
def make_feed(redis_server: RedisServer) -> FeedFactory:
    """A feed configured as a b25 deployment (the three patterns, their formats) plus ``market:btcusdt``."""

    def make(**redis: Any) -> tuple[MarketDataFeed, Sink]:
        section = {"port": redis_server.port, "marketDataChannels": [*B25_FORMATS, "market:btcusdt"],
                   "marketDataFormats": B25_FORMATS, **redis}  # fmt: skip
        sink = Sink()
        return MarketDataFeed(parse({"redis": section}, environ={}).redis, sink, registry=CollectorRegistry()), sink

    return make


@contextlib.asynccontextmanager
async def running(feed: MarketDataFeed) -> AsyncIterator[MarketDataFeed]:
    task = asyncio.create_task(feed.run())
    try:
        await wait_until(lambda: feed.connected, timeout=10)
        yield feed
    finally:
        feed.close()
        async with asyncio.timeout(5):
            await task


async def publish(client: redis.asyncio.Redis, *messages: tuple[str, dict[str, Any] | bytes]) -> None:
    for channel, message in messages:
        await client.publish(channel, message if isinstance(message, bytes) else orjson.dumps(message))


def sample(feed: MarketDataFeed, name: str, **labels: str) -> float:
    value = feed.registry.get_sample_value(f"{NS}_{name}", labels)
    return 0.0 if value is None else value


def done(feed: MarketDataFeed, count: int) -> Callable[[], bool]:
    """Every one of ``count`` messages handled: accepted or rejected."""
    return lambda: feed.stats.received + feed.stats.rejected == count


class TestB25Channels:
    async def test_each_family_arrives_decoded_by_its_format(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """A ticker, a book and a trade on b25's channels, and a seed tick beside them: four events, in order."""
        feed, sink = make_feed()
        seed = {"symbol": "BTCUSDT", "timestamp": "2026-11-26T12:00:00.123456Z", "sequence": 1, "type": "tick",
                "bid_price": 61837.63, "ask_price": 61837.64, "bid_size": 1.0, "ask_size": 2.0}  # fmt: skip
        async with running(feed):
            await publish(publisher, (TICKER, ticker()), (BOOK, book(51234567)), (TRADES, trade(3061234567)),
                          ("market:btcusdt", seed))  # fmt: skip
            await wait_until(lambda: len(sink.events) == 4)
        assert sink.events == [
            Tick(
                symbol="BTCUSDT",
                timestamp_ns=T_NS,
                bid_price=61837.63,
                bid_size=0.0,
                ask_price=61837.64,
                ask_size=0.0,
                last_price=61837.635,
                sequence=0,
            ),
            Book(
                symbol="BTCUSDT",
                timestamp_ns=T_NS,
                bids=((61837.63, 1.2), (61837.62, 0.4)),
                asks=((61837.64, 0.8), (61837.65, 2.5)),
                last_price=None,
                sequence=51234567,
            ),
            Trade(
                symbol="BTCUSDT",
                timestamp_ns=T_NS - 456_000,
                last_price=61837.64,
                volume=0.0125,
                volume_quote=None,
                side=Side.SELL,
                sequence=3061234567,
            ),
            Tick(
                symbol="BTCUSDT",
                timestamp_ns=T_NS,
                bid_price=61837.63,
                bid_size=1.0,
                ask_price=61837.64,
                ask_size=2.0,
                last_price=None,
                sequence=1,
            ),
        ]
        assert feed.stats.rejected == 0
        for kind, count in (("tick", 2), ("book", 1), ("trade", 1)):
            assert sample(feed, "market_data_received_total", symbol="BTCUSDT", type=kind) == count

    async def test_every_symbol_of_a_pattern_is_read(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """market_data:* takes BTCUSDT and ETHUSDT alike."""
        feed, sink = make_feed()
        async with running(feed):
            await publish(publisher, (TICKER, ticker()), ("market_data:ETHUSDT", ticker(symbol="ETHUSDT",
                          bid_price=2680.01, ask_price=2680.02, last_price=2680.015)))  # fmt: skip
            await wait_until(lambda: len(sink.events) == 2)
        assert [(e.symbol, e.kind) for e in sink.events] == [("BTCUSDT", "tick"), ("ETHUSDT", "tick")]

    async def test_exact_b25_channels_work_as_patterns_do(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """A format named for an exact channel (SUBSCRIBE, not PSUBSCRIBE) is applied the same way."""
        feed, sink = make_feed(marketDataChannels=[BOOK], marketDataFormats={BOOK: "b25-book"})
        async with running(feed):
            await publish(publisher, (BOOK, book(7)))
            await wait_until(lambda: len(sink.events) == 1)
        assert isinstance(sink.events[0], Book) and sink.events[0].sequence == 7


class TestB25Rejection:
    @pytest.mark.parametrize(
        ("channel", "message", "field", "reason"),
        [
            (TICKER, ticker(bid_price=None), "bid_price", "b25-ticker.bid_price: required"),
            (TICKER, ticker(updated_at="noon"), "updated_at", "expected RFC 3339 time, got 'noon'"),
            (TICKER, ticker(bid_price=61837.65), "bid_price", "crossed market"),
            (BOOK, book(5, timestamp=T_NS // 1_000_000), "timestamp", "(that reads as milliseconds)"),
            (BOOK, book(5, bids={"x": 1.0}), "bids", "b25-book.bids['x']: expected a price, got 'x'"),
            (BOOK, book(5, last_update_id=-1), "last_update_id", "must be in 0..2^63-1"),
            (BOOK, book(5, initialized=False), "initialized", "not synced to a snapshot"),
            (TRADES, trade(5, is_buyer_maker="no"), "is_buyer_maker", "expected true or false, got 'no'"),
            (TRADES, trade(5, price=0), "price", "b25-trade.price: must be > 0"),
            (TRADES, trade(5, side="buy"), "side", "b25-trade.side: unknown field"),
            (TRADES, b"[1, 2]", "json", "b25-trade.json: expected a JSON object, got list"),
            (BOOK, b"{not json", "json", "not JSON"),
        ],
    )
    async def test_a_bad_message_is_counted_under_its_field_and_the_feed_goes_on(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis, channel: str, message: Any, field: str,
        reason: str,
    ) -> None:  # fmt: skip
        """Rejected, counted in market_data_errors_total{channel, field}, logged with the reason; the next
        message arrives."""
        feed, sink = make_feed()
        async with running(feed):
            with capture_logs() as logs:
                await publish(publisher, (channel, message), (TICKER, ticker()))
                await wait_until(lambda: len(sink.events) == 1)
            assert feed.stats.rejected == 1 and feed.connected
        assert sample(feed, "market_data_errors_total", channel=channel, field=field) == 1
        (rejected,) = [e for e in logs if e["event"] == "market_data_rejected"]
        assert (rejected["channel"], rejected["field"]) == (channel, field)
        assert reason in rejected["reason"]

    async def test_b25_messages_on_a_seed_channel_are_rejected_not_misread(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """A b25 ticker on a channel left in the seed's format fails on its first b25-only field."""
        feed, sink = make_feed(marketDataChannels=["market_data:*"], marketDataFormats={})
        async with running(feed):
            await publish(publisher, (TICKER, ticker()))
            await wait_until(done(feed, 1))
        assert sink.events == []
        assert sample(feed, "market_data_errors_total", channel=TICKER, field="volume_24h") == 1

    async def test_an_uninitialized_book_leaves_the_symbol_stale(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """Until b25 has synced its book nothing trades on it: the symbol stays stale; the first initialized
        book makes it fresh."""
        feed, sink = make_feed()
        async with running(feed):
            await publish(publisher, (BOOK, book(5, initialized=False)), (BOOK, book(6, initialized=False)))
            await wait_until(done(feed, 2))
            assert feed.health.is_stale("BTCUSDT") and sink.events == []
            await publish(publisher, (BOOK, book(7)))
            await wait_until(lambda: len(sink.events) == 1)
            assert not feed.health.is_stale("BTCUSDT")
        assert sample(feed, "market_data_errors_total", channel=BOOK, field="initialized") == 2


class TestB25Sequences:
    async def test_book_update_ids_jump_without_gaps_and_trade_ids_count_missed_trades(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """Book ids 100, 117, 250 (jumps: no gap), trade ids 10, 11, 15 (3 trades missed), tickers unnumbered;
        interleaved on one symbol, each family checked on its own."""
        feed, sink = make_feed()
        stream = [(BOOK, book(100)), (TRADES, trade(10)), (TICKER, ticker()), (BOOK, book(117)),
                  (TRADES, trade(11)), (TICKER, ticker()), (BOOK, book(250)), (TRADES, trade(15))]  # fmt: skip
        async with running(feed):
            with capture_logs() as logs:
                await publish(publisher, *stream)
                await wait_until(lambda: len(sink.events) == len(stream))
        (status,) = feed.health.status()
        assert (status.gaps, status.missing, status.out_of_order) == (1, 3, 0)
        assert sample(feed, "market_data_sequence_gaps_total", symbol="BTCUSDT") == 1
        assert sample(feed, "market_data_missing_total", symbol="BTCUSDT") == 3
        gaps = [e for e in logs if e["event"] == "market_data_gap"]
        assert [(g["stream"], g["last"], g["received"], g["missing"]) for g in gaps] == [("b25-trade", 11, 15, 3)]

    async def test_a_book_going_back_is_out_of_order(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """Book id 200 after 300: late (another publisher, or a replay), counted out of order and still delivered."""
        feed, sink = make_feed()
        async with running(feed):
            with capture_logs() as logs:
                await publish(publisher, (BOOK, book(300)), (BOOK, book(200)), (BOOK, book(301)))
                await wait_until(lambda: len(sink.events) == 3)
        (status,) = feed.health.status()
        assert (status.gaps, status.out_of_order, status.last_sequence) == (0, 1, 301)
        late = [e for e in logs if e["event"] == "market_data_out_of_order"]
        assert [(e["stream"], e["last"], e["received"]) for e in late] == [("b25-book", 300, 200)]

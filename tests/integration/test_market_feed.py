"""MarketDataFeed against a real redis-server: decoding, rejection, patterns, AUTH, reconnects, health.

Messages are published with redis-py (asyncio) to a redis-server started on a free port by the
``redis_server`` fixture; the feed hands what it accepts to a recording sink. Reconnects are tested
by killing and restarting that server, a half-open connection by stopping it with SIGSTOP.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from host.config import RedisConfig
from host.feeds import MarketDataFeed
from sdk.events import Book, Candle, MarketEvent, Tick, Trade
from tests import helpers
from tests.helpers import ManualClock, wait_until
from tests.servers import RedisServer

pytestmark = pytest.mark.integration

NS = "strategy_engine"
T0 = "2024-08-08T23:54:14.087891Z"
T0_NS = 1_723_161_254_087_891_000
T0_WHOLE_NS = 1_723_161_254_000_000_000
BTC = "market:btcusdt"
ETH = "market:ethusdt"
PASSWORD = "s3cret-pass"


def tick(sequence: int, symbol: str = "BTCUSDT", **fields: Any) -> dict[str, Any]:
    """A seed tick as the recorded files carry it."""
    message = {"symbol": symbol, "timestamp": T0, "sequence": sequence, "type": "tick", "bid_price": 61837.63,
               "bid_size": 3.78826, "ask_price": 61837.64, "ask_size": 1.54698}  # fmt: skip
    return {**message, **fields}


def decoded_tick(sequence: int, symbol: str = "BTCUSDT") -> Tick:
    return Tick(
        symbol=symbol,
        timestamp_ns=T0_NS,
        bid_price=61837.63,
        bid_size=3.78826,
        ask_price=61837.64,
        ask_size=1.54698,
        last_price=None,
        sequence=sequence,
    )


go_market = functools.partial(helpers.go_market, timestamp=T0)


def dumps(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


class Sink:
    """Records what the feed hands on; optionally raises for the first ``fail`` events."""

    def __init__(self, fail: int = 0) -> None:
        self.events: list[MarketEvent] = []
        self.fail = fail

    def __call__(self, event: MarketEvent) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("sink broke")
        self.events.append(event)


FeedAndSink = tuple[MarketDataFeed, Sink]
FeedFactory = Callable[..., FeedAndSink]


@pytest.fixture
def make_feed(redis_server: RedisServer) -> FeedFactory:
    """A feed on the test's redis-server; keyword arguments override RedisConfig fields or feed options."""

    def make(*, sink: Sink | None = None, server: RedisServer | None = None, **overrides: Any) -> FeedAndSink:
        options = {k: overrides.pop(k) for k in ("clock", "connect_timeout", "ping_interval") if k in overrides}
        fields = {"port": (server or redis_server).port, "reconnect_min_delay": 0.05, "reconnect_max_delay": 0.2}
        config = RedisConfig(**{**fields, **overrides})
        sink = sink or Sink()
        return MarketDataFeed(config, sink, registry=CollectorRegistry(), **options), sink

    return make


@contextlib.asynccontextmanager
async def running(feed: MarketDataFeed, *, connected: bool = True) -> AsyncIterator[MarketDataFeed]:
    """``feed.run()`` as a task for the block (subscribed first, unless ``connected=False``); then closed."""
    task = asyncio.create_task(feed.run())
    try:
        if connected:
            await wait_until(lambda: feed.connected, timeout=10)
        yield feed
    finally:
        feed.close()
        async with asyncio.timeout(5):
            await task


async def publish(client: redis.asyncio.Redis, channel: str, *messages: dict[str, Any] | bytes) -> None:
    for message in messages:
        await client.publish(channel, message if isinstance(message, bytes) else dumps(message))


def sample(feed: MarketDataFeed, name: str, **labels: str) -> float:
    value = feed.registry.get_sample_value(f"{NS}_{name}", labels)
    return 0.0 if value is None else value


class TestDecoding:
    async def test_seed_messages_of_each_type_arrive_decoded(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """A tick, trade, book and candle in the seed's JSON reach the sink as the matching events."""
        feed, sink = make_feed()
        book = {"symbol": "BTCUSDT", "timestamp": T0, "sequence": 3, "type": "book", "last_price": 61837.63,
                "bids": [[61837.63, 3.78826], [61837.62, 0.5]], "asks": [[61837.64, 1.5], [61837.65, 2.0]],
                "bid_price": 61837.63, "bid_size": 3.78826, "ask_price": 61837.64, "ask_size": 1.5}  # fmt: skip
        candle = go_market("candle", sequence=4, open=100.0, high=110.0, low=95.0, close=105.0, volume=12.5,
                            volume_quote=1300.0, last_price=105.0)  # fmt: skip
        trade = {"symbol": "BTCUSDT", "timestamp": T0, "sequence": 2, "type": "trade", "last_price": 61837.63,
                 "volume": 0.02, "volume_quote": 1236.7526}  # fmt: skip
        async with running(feed):
            await publish(publisher, BTC, tick(1), trade, book, candle)
            await wait_until(lambda: len(sink.events) == 4)
        assert sink.events == [
            decoded_tick(1),
            Trade(
                symbol="BTCUSDT",
                timestamp_ns=T0_NS,
                last_price=61837.63,
                volume=0.02,
                volume_quote=1236.7526,
                side=None,
                sequence=2,
            ),
            Book(
                symbol="BTCUSDT",
                timestamp_ns=T0_NS,
                bids=((61837.63, 3.78826), (61837.62, 0.5)),
                asks=((61837.64, 1.5), (61837.65, 2.0)),
                last_price=61837.63,
                sequence=3,
            ),
            Candle(
                symbol="BTCUSDT",
                timestamp_ns=T0_NS,
                open=100.0,
                high=110.0,
                low=95.0,
                close=105.0,
                volume=12.5,
                volume_quote=1300.0,
                sequence=4,
            ),
        ]
        for kind in ("tick", "trade", "book", "candle"):
            assert sample(feed, "market_data_received_total", symbol="BTCUSDT", type=kind) == 1

    async def test_go_zero_values_are_accepted(self, make_feed: FeedFactory, publisher: redis.asyncio.Redis) -> None:
        """A tick with every field present and the unused ones at 0 / null (as Go marshals it) decodes."""
        feed, sink = make_feed()
        async with running(feed):
            await publish(publisher, BTC, go_market("tick", sequence=1, bid_price=10.0, ask_price=10.5, bid_size=1,
                                                     ask_size=2))  # fmt: skip
            await wait_until(lambda: len(sink.events) == 1)
        assert sink.events == [
            Tick(
                symbol="BTCUSDT",
                timestamp_ns=T0_NS,
                bid_price=10.0,
                bid_size=1.0,
                ask_price=10.5,
                ask_size=2.0,
                last_price=None,
                sequence=1,
            )
        ]

    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            (
                {"symbol": "ETHUSDT", "timestamp": "2024-08-08T23:54:14Z", "sequence": "5", "type": "TICK",
                 "bid_price": "2680.01", "bid_size": "1.5", "ask_price": "2680.02", "ask_size": "2"},
                Tick(
                    symbol="ETHUSDT", timestamp_ns=T0_WHOLE_NS, bid_price=2680.01, bid_size=1.5, ask_price=2680.02,
                    ask_size=2.0, sequence=5,
                ),
            ),
            (
                {"symbol": "ETHUSDT", "timestamp": "2024-08-09T01:54:14.5+02:00", "type": "Trade",
                 "last_price": "2680.5", "volume": "0.25", "sequence": 6},
                Trade(
                    symbol="ETHUSDT", timestamp_ns=T0_WHOLE_NS + 500_000_000, last_price=2680.5, volume=0.25,
                    sequence=6,
                ),
            ),
            (
                {"symbol": "ETHUSDT", "timestamp": "2024-08-08T23:54:14.25", "type": "tick", "bid_price": 1,
                 "ask_price": 2},
                Tick(
                    symbol="ETHUSDT", timestamp_ns=T0_WHOLE_NS + 250_000_000, bid_price=1.0, bid_size=0.0,
                    ask_price=2.0, ask_size=0.0,
                ),
            ),
            (
                {"symbol": "ETHUSDT", "timestamp": "2024-08-08T23:54:14.123456789Z", "type": "CANDLE",
                 "open": "1", "high": "2", "low": "0.5", "close": "1.5"},
                Candle(
                    symbol="ETHUSDT", timestamp_ns=T0_WHOLE_NS + 123_456_789, open=1.0, high=2.0, low=0.5, close=1.5,
                ),
            ),
        ],
        ids=["strings-upper-case-no-fraction", "offset-mixed-case", "no-zone", "nanoseconds"],
    )  # fmt: skip
    async def test_peer_format_is_accepted(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis, message: dict[str, Any], expected: MarketEvent
    ) -> None:
        """Numbers as strings, enums in any case, timestamps without fraction, with offset or zone-less."""
        feed, sink = make_feed()
        async with running(feed):
            await publish(publisher, ETH, message)
            await wait_until(lambda: len(sink.events) == 1)
        assert sink.events == [expected]
        assert feed.stats.rejected == 0


BAD_MESSAGES = [
    ("malformed-json", b'{"symbol": "BTCUSDT", "timestamp": ', "json"),
    ("not-an-object", b"[1, 2, 3]", "json"),
    ("a-string", b'"tick"', "json"),
    ("unknown-field", dumps(tick(9, colour="red")), "colour"),
    ("wrong-type", dumps(tick(9, bid_price="cheap")), "bid_price"),
    ("wrong-type-sequence", dumps({**tick(9), "sequence": "nine"}), "sequence"),
    ("missing-symbol", dumps({k: v for k, v in tick(9).items() if k != "symbol"}), "symbol"),
    ("missing-timestamp", dumps({k: v for k, v in tick(9).items() if k != "timestamp"}), "timestamp"),
    ("bad-timestamp", dumps(tick(9, timestamp="yesterday")), "timestamp"),
    ("bad-type", dumps(tick(9, type="quote")), "type"),
    ("negative-price", dumps(tick(9, bid_price=-1)), "bid_price"),
    ("crossed-bid-above-ask", dumps(tick(9, bid_price="61837.65", ask_price="61837.64")), "bid_price"),
    (
        "trade-price-zero",
        dumps({"symbol": "BTCUSDT", "timestamp": T0, "type": "trade", "last_price": 0, "volume": 1}),
        "last_price",
    ),
    (
        "bad-book-level",
        dumps({"symbol": "BTCUSDT", "timestamp": T0, "type": "book", "bids": [[1.0]], "asks": []}),
        "bids",
    ),
]


class TestRejection:
    @pytest.mark.parametrize(("payload", "field"), [(p, f) for _, p, f in BAD_MESSAGES],
                             ids=[name for name, _, _ in BAD_MESSAGES])  # fmt: skip
    async def test_bad_message_is_counted_logged_and_skipped(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis, payload: bytes, field: str
    ) -> None:
        """A bad message is counted under its channel and field and logged; the ones around it arrive in order."""
        feed, sink = make_feed()
        async with running(feed):
            with capture_logs() as logs:
                await publish(publisher, BTC, tick(1), payload, tick(2))
                await wait_until(lambda: len(sink.events) == 2)
        assert sink.events == [decoded_tick(1), decoded_tick(2)]
        assert sample(feed, "market_data_errors_total", channel=BTC, field=field) == 1
        assert feed.stats.rejected == 1
        rejected = [e for e in logs if e["event"] == "market_data_rejected"]
        assert [(e["channel"], e["field"], e["log_level"]) for e in rejected] == [(BTC, field, "warning")]
        assert rejected[0]["reason"]

    async def test_crossed_tick_is_rejected_naming_both_prices_and_a_locked_one_kept(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """bid > ask is bad market data, logged with both prices; bid == ask (a locked market) is a tick."""
        feed, sink = make_feed()
        async with running(feed):
            with capture_logs() as logs:
                await publish(publisher, BTC, tick(1, bid_price=61837.65), tick(2, bid_price=61837.64))
                await wait_until(lambda: feed.stats.received + feed.stats.rejected == 2)
        assert [(e.sequence, e.bid_price, e.ask_price) for e in sink.events] == [(2, 61837.64, 61837.64)]
        assert sample(feed, "market_data_errors_total", channel=BTC, field="bid_price") == 1
        [rejected] = [e for e in logs if e["event"] == "market_data_rejected"]
        assert "bid_price 61837.65 > ask_price 61837.64" in rejected["reason"]

    async def test_a_stream_of_mixed_messages_keeps_its_good_ones_in_order(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """Every bad kind interleaved with 14 good ticks: all good ones arrive, in order; each bad one counted."""
        feed, sink = make_feed()
        stream: list[dict[str, Any] | bytes] = []
        for sequence, (_, payload, _) in enumerate(BAD_MESSAGES, 1):
            stream += [tick(sequence), payload]
        stream.append(tick(len(BAD_MESSAGES) + 1))
        async with running(feed):
            await publish(publisher, BTC, *stream)
            await wait_until(lambda: len(sink.events) == len(BAD_MESSAGES) + 1)
            assert feed.connected
        assert sink.events == [decoded_tick(s) for s in range(1, len(BAD_MESSAGES) + 2)]
        assert feed.stats.rejected == len(BAD_MESSAGES)
        for field in {f for _, _, f in BAD_MESSAGES}:
            expected = sum(1 for _, _, f in BAD_MESSAGES if f == field)
            assert sample(feed, "market_data_errors_total", channel=BTC, field=field) == expected

    async def test_repeated_rejections_log_once_a_second_but_all_count(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """Five bad messages within a second: one log line, five counted; the next line says four were held back."""
        clock = ManualClock()
        feed, sink = make_feed(clock=clock)
        async with running(feed):
            with capture_logs() as logs:
                await publish(publisher, BTC, *([b"not json"] * 5), tick(1))
                await wait_until(lambda: len(sink.events) == 1)
                clock.advance(1.0)
                await publish(publisher, BTC, b"not json", tick(2))
                await wait_until(lambda: len(sink.events) == 2)
        assert sample(feed, "market_data_errors_total", channel=BTC, field="json") == 6
        rejected = [e for e in logs if e["event"] == "market_data_rejected"]
        assert [e["suppressed"] for e in rejected] == [0, 4]

    async def test_a_sink_that_raises_costs_one_message(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """The sink raising is counted (field "sink") and logged; the next message is delivered."""
        feed, sink = make_feed(sink=Sink(fail=1))
        async with running(feed):
            with capture_logs() as logs:
                await publish(publisher, BTC, tick(1), tick(2))
                await wait_until(lambda: len(sink.events) == 1)
        assert sink.events == [decoded_tick(2)]
        assert sample(feed, "market_data_errors_total", channel=BTC, field="sink") == 1
        assert feed.stats.sink_errors == 1
        assert [e["error"] for e in logs if e["event"] == "market_data_sink_failed"] == ["RuntimeError: sink broke"]


class TestSubscriptions:
    async def test_default_channels_are_btc_and_eth(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """With the default redis.marketDataChannels, both market:btcusdt and market:ethusdt are read."""
        feed, sink = make_feed()
        async with running(feed):
            await publish(publisher, BTC, tick(1))
            await publish(publisher, ETH, tick(1, "ETHUSDT"))
            await wait_until(lambda: len(sink.events) == 2)
        assert sink.events == [decoded_tick(1), decoded_tick(1, "ETHUSDT")]

    async def test_pattern_receives_from_two_channels(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """A market:* pattern gets both markets' messages, and nothing from a channel outside it."""
        feed, sink = make_feed(market_data_channels=("market:*",))
        async with running(feed):
            await publish(publisher, "other:btcusdt", tick(7))
            await publish(publisher, BTC, tick(1))
            await publish(publisher, ETH, tick(1, "ETHUSDT"))
            await wait_until(lambda: len(sink.events) == 2)
        assert sink.events == [decoded_tick(1), decoded_tick(1, "ETHUSDT")]

    async def test_exact_channels_and_patterns_together(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """An exact channel and a pattern in one list: SUBSCRIBE and PSUBSCRIBE on one connection."""
        feed, sink = make_feed(market_data_channels=("ticks", "market:eth*"))
        async with running(feed):
            await publish(publisher, "ticks", tick(1))
            await publish(publisher, ETH, tick(1, "ETHUSDT"))
            await publish(publisher, BTC, tick(2))
            await wait_until(lambda: len(sink.events) == 2)
        assert sink.events == [decoded_tick(1), decoded_tick(1, "ETHUSDT")]

    async def test_a_rejection_names_the_channel_a_pattern_matched(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """Through a pattern, the error's channel label is the channel published to, not the pattern."""
        feed, sink = make_feed(market_data_channels=("market:*",))
        async with running(feed):
            await publish(publisher, ETH, b"{", tick(1, "ETHUSDT"))
            await wait_until(lambda: len(sink.events) == 1)
        assert sample(feed, "market_data_errors_total", channel=ETH, field="json") == 1


@pytest.fixture
def secured_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server that requires a password."""
    server = RedisServer(tmp_path / "redis-auth", password=PASSWORD)
    server.start()
    yield server
    server.stop()


class TestAuth:
    async def test_password_is_sent_with_auth(self, make_feed: FeedFactory, secured_redis: RedisServer) -> None:
        """With redis.password set, the feed authenticates, subscribes and receives."""
        feed, sink = make_feed(server=secured_redis, password=PASSWORD)
        client = redis.asyncio.Redis(port=secured_redis.port, password=PASSWORD)
        try:
            async with running(feed):
                await publish(client, BTC, tick(1))
                await wait_until(lambda: len(sink.events) == 1)
        finally:
            await client.aclose()
        assert sink.events == [decoded_tick(1)]

    async def test_wrong_password_is_a_counted_failed_connect(
        self, make_feed: FeedFactory, secured_redis: RedisServer
    ) -> None:
        """A wrong password never connects: each attempt is counted and logged naming AUTH, and retried."""
        feed, _ = make_feed(server=secured_redis, password="wrong")
        with capture_logs() as logs:
            async with running(feed, connected=False):
                await wait_until(lambda: feed.stats.failed_connects >= 2)
                assert not feed.connected
        failed = [e for e in logs if e["event"] == "redis_connect_failed"]
        assert failed and "redis AUTH" in failed[0]["reason"] and "WRONGPASS" in failed[0]["reason"]

    async def test_no_password_against_a_secured_server_fails_to_subscribe(
        self, make_feed: FeedFactory, secured_redis: RedisServer
    ) -> None:
        """Without a password the server refuses SELECT: not connected, the reason names the command."""
        feed, _ = make_feed(server=secured_redis)
        async with running(feed, connected=False):
            await wait_until(lambda: feed.stats.failed_connects >= 1)
            assert not feed.connected
        assert "NOAUTH" in feed.stats.last_error and "SELECT" in feed.stats.last_error


class TestReconnect:
    async def test_redis_restart_mid_stream(self, make_feed: FeedFactory, redis_server: RedisServer) -> None:
        """Redis killed: connected goes False; restarted: True again, resubscribed, data resumes, counted."""
        feed, sink = make_feed()
        with capture_logs() as logs:
            async with running(feed):
                client = redis.asyncio.Redis(port=redis_server.port)
                await publish(client, BTC, tick(1))
                await wait_until(lambda: len(sink.events) == 1)
                await client.aclose()
                redis_server.stop()
                await wait_until(lambda: not feed.connected)
                assert sample(feed, "redis_connected") == 0
                redis_server.start()
                await wait_until(lambda: feed.connected, timeout=10)
                client = redis.asyncio.Redis(port=redis_server.port)
                await publish(client, BTC, tick(2))
                await publish(client, ETH, tick(1, "ETHUSDT"))
                await wait_until(lambda: len(sink.events) == 3)
                await client.aclose()
        assert sink.events == [decoded_tick(1), decoded_tick(2), decoded_tick(1, "ETHUSDT")]
        assert feed.stats.reconnects == 1
        assert sample(feed, "redis_reconnects_total") == 1
        events = [e["event"] for e in logs if e["event"].startswith("redis_")]
        assert events[:3] == ["redis_connected", "redis_disconnected", "redis_reconnecting"]
        assert events[-1] == "redis_connected"

    async def test_starts_while_redis_is_down(self, make_feed: FeedFactory, redis_server: RedisServer) -> None:
        """No Redis at start: attempts fail and are counted, with backoff; once it is up the feed subscribes."""
        redis_server.stop()
        feed, sink = make_feed()
        async with running(feed, connected=False):
            await wait_until(lambda: feed.stats.failed_connects >= 2)
            assert not feed.connected
            redis_server.start()
            await wait_until(lambda: feed.connected, timeout=10)
            client = redis.asyncio.Redis(port=redis_server.port)
            await publish(client, BTC, tick(1))
            await wait_until(lambda: len(sink.events) == 1)
            await client.aclose()
        assert feed.stats.reconnects == 0  # the first subscription is not a reconnect

    async def test_a_frozen_server_is_detected_by_ping(self, make_feed: FeedFactory, redis_server: RedisServer) -> None:
        """A server that stops answering (SIGSTOP: the TCP connection stays open) is found by PING and left."""
        feed, _ = make_feed(ping_interval=0.2, connect_timeout=0.5)
        assert redis_server.proc is not None
        pid = redis_server.proc.pid
        async with running(feed):
            os.kill(pid, signal.SIGSTOP)
            try:
                await wait_until(lambda: not feed.connected, timeout=5)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert "PING" in feed.stats.last_error
            await wait_until(lambda: feed.connected, timeout=10)
        assert feed.stats.reconnects == 1

    async def test_close_during_backoff_returns_promptly(
        self, make_feed: FeedFactory, redis_server: RedisServer
    ) -> None:
        """close() while waiting to reconnect (a 30 s backoff) ends run() at once."""
        redis_server.stop()
        feed, _ = make_feed(reconnect_min_delay=30.0, reconnect_max_delay=30.0)
        task = asyncio.create_task(feed.run())
        await wait_until(lambda: feed.stats.failed_connects == 1)
        feed.close()
        async with asyncio.timeout(1):
            await task
        assert not feed.connected


class TestHealth:
    async def test_sequence_gap_is_counted(self, make_feed: FeedFactory, publisher: redis.asyncio.Redis) -> None:
        """1, 2, 5, 6 on one symbol: one gap with 2 missing, in FeedHealth, the metrics and the log."""
        feed, sink = make_feed()
        async with running(feed):
            with capture_logs() as logs:
                await publish(publisher, BTC, tick(1), tick(2), tick(5), tick(6))
                await wait_until(lambda: len(sink.events) == 4)
        (status,) = feed.health.status()
        assert (status.symbol, status.gaps, status.missing, status.last_sequence) == ("BTCUSDT", 1, 2, 6)
        assert sample(feed, "market_data_sequence_gaps_total", symbol="BTCUSDT") == 1
        assert sample(feed, "market_data_missing_total", symbol="BTCUSDT") == 2
        gaps = [e for e in logs if e["event"] == "market_data_gap"]
        assert [(g["symbol"], g["last"], g["received"], g["missing"]) for g in gaps] == [("BTCUSDT", 2, 5, 2)]

    async def test_silent_symbol_is_flagged_stale(self, make_feed: FeedFactory, publisher: redis.asyncio.Redis) -> None:
        """No update for stale_after: the symbol is stale (for risk) and the gauge says so; an update clears it."""
        feed, sink = make_feed(stale_after=1.0)
        async with running(feed):
            assert feed.health.is_stale("BTCUSDT")  # nothing received yet
            await publish(publisher, BTC, tick(1))
            await wait_until(lambda: len(sink.events) == 1)
            assert not feed.health.is_stale("BTCUSDT")
            await wait_until(lambda: feed.health.is_stale("BTCUSDT"), timeout=5)
            assert feed.health.stale_symbols() == ["BTCUSDT"]
            assert sample(feed, "market_data_stale", symbol="BTCUSDT") == 1
            await publish(publisher, BTC, tick(2))
            await wait_until(lambda: not feed.health.is_stale("BTCUSDT"))

    async def test_latency_is_observed_for_live_data_only(
        self, make_feed: FeedFactory, publisher: redis.asyncio.Redis
    ) -> None:
        """A tick stamped now is observed in the latency histogram; a recorded one (2024) is not."""
        feed, sink = make_feed()
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        async with running(feed):
            await publish(publisher, BTC, tick(1, timestamp=now), tick(2))
            await wait_until(lambda: len(sink.events) == 2)
        assert sample(feed, "market_data_latency_microseconds_count") == 1
        assert 0 <= sample(feed, "market_data_latency_microseconds_sum") < 60e6

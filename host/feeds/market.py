"""Market data from Redis pub/sub: subscribe, decode, count, hand each event to a sink; reconnect.

Model. One ``MarketDataFeed`` per host, run as one task: ``run()`` connects, sends AUTH (when a
password is set), SELECT, SUBSCRIBE for the exact channels and PSUBSCRIBE for the patterns in one
write, and reads until ``close()``. The subscriber is a small one of its own, on asyncio streams
and hiredis' RESP parser, not redis-py's PubSub: a subscribed connection only carries pushed arrays
(``message``, ``pmessage``, ``subscribe``, ``psubscribe``, ``pong``), and handling every complete
reply of each chunk read in one synchronous loop skips redis-py's per-message machinery. Measured
on 2 cores (bench/bench_redis_subscriber.py, a 200k-tick burst): reading alone ~1.36M msgs/s
against ~143k for ``PubSub.listen()``; read, decoded and handed to a no-op sink ~156k against ~80k,
so at 50k ticks/s this feed takes about a third of one core instead of two thirds.

Formats. Each channel and pattern is read in the format ``redis.marketDataFormats`` names for it
(``host.feeds.formats``): the seed's JSON (``sdk._codec.decode_market``, the one place the seed's
rules live; msgspec's shortcut in ``host.feeds.fastjson`` gives the same events for the messages it
is sure of) unless it names one of b25's. A message is matched to its format by the subscription
Redis delivered it for: the exact channel, or the pattern of a ``pmessage``.

Ordering and back-pressure. Everything runs on the event loop: each message is decoded (its
format's shortcut, else orjson and its format's decoder), counted, observed by ``FeedHealth`` (in
its format's sequence stream) and passed to ``sink`` before the next one is looked at, so the
sink sees messages in the order Redis delivered them. The sink is synchronous and must not block (``Supervisor.publish``
only queues); while it runs nothing is read, TCP back-pressure reaches Redis, and Redis' pub/sub
output buffer limit decides what happens next (a disconnect, handled like any other).

Bad input. A message that is not JSON, not an object, or that the codec rejects is counted in
``market_data_errors_total{channel, field}`` (field: the one the ``ValidationError`` names, or
``json``) and logged as ``market_data_rejected`` at most once a second per channel and field (the
counter counts every one); the feed goes on with the next message.

Liveness. ``connected`` is true from the moment every subscription is confirmed until the
connection is lost; /ready follows it. A connection silent for ``ping_interval`` is sent a PING,
and one still silent after another interval is dropped (a half-open TCP connection would otherwise
look like a quiet market). On loss: ``connected`` goes false, ``redis_disconnected`` is logged, the
feed waits an exponential, jittered backoff between ``reconnect_min_delay`` and
``reconnect_max_delay`` (the supervisor's backoff rule; reset once subscribed again), reconnects,
resubscribes and counts ``redis_reconnects_total``.

Latency. ``market_data_latency_microseconds`` (receive wall time minus the message's timestamp) is
observed only for messages stamped within 60 s of now: recorded data replayed through Redis is
hours or years old and would only fill the top bucket. Clock skew between publisher and host shows
in it as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import hiredis
import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from host.clock import Clock, SystemClock
from host.config import RedisConfig
from host.errors import EngineError
from host.feeds.formats import FORMATS, SEED, WireFormat
from host.feeds.health import FeedHealth, Gap
from host.feeds.tally import Spread, Tally
from host.labels import LabelGuard
from host.supervisor.policy import BreakerPolicy, backoff_delay
from sdk.errors import ValidationError
from sdk.events import MarketEvent

__all__ = ["FeedStats", "MarketDataFeed", "RedisCommandError"]

log = structlog.get_logger("host.feeds.market")

_READ_SIZE = 1 << 18  # bytes per read: a burst is taken in large chunks, a trickle as it comes
_LIVE_WINDOW_NS = 60 * 10**9  # latency is observed only for messages stamped this close to now
_LOG_EVERY_S = 1.0  # a repeated warning (same channel and field, or symbol) is logged once per this
_MAX_ERROR_LABELS = 256  # distinct (channel, field) labels and log keys kept: stray keys must not grow them forever
_OTHER = "_other"
_LATENCY_BUCKETS_US = (250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000)
_PING = hiredis.pack_command(("PING",))


class RedisCommandError(EngineError):
    """Redis answered a command of the handshake with an error (wrong password, bad db, ACL)."""

    def __init__(self, command: str, reply: str) -> None:
        self.command = command
        self.reply = reply
        super().__init__(f"redis {command}: {reply}")


# What ends a connection (and is retried); anything else is a bug and ends run().
_CONNECTION_ERRORS = (OSError, TimeoutError, EOFError, hiredis.ProtocolError, RedisCommandError)


@dataclass(frozen=True)
class FeedStats:
    connected: bool
    received: int  # messages accepted and handed to the sink
    rejected: int  # messages rejected (counted in market_data_errors_total)
    sink_errors: int  # accepted messages the sink raised on
    reconnects: int  # subscriptions re-established after a lost connection
    failed_connects: int  # connection attempts that never got to subscribed
    last_error: str  # why the last connection ended or failed; "" = none yet


class _Limiter:
    """At most one log line per key per ``every_s``; says how many were held back in between."""

    def __init__(self, clock: Clock, every_s: float) -> None:
        self._clock = clock
        self._every_s = every_s
        self._last: dict[object, tuple[float, int]] = {}

    def allow(self, key: object) -> int | None:
        """None: stay quiet. Else log now, mentioning this many suppressed since the last line."""
        now = self._clock.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self._every_s:
            self._last[key] = (last[0], last[1] + 1)
            return None
        if len(self._last) >= _MAX_ERROR_LABELS and last is None:
            self._last.clear()
        self._last[key] = (now, 0)
        return 0 if last is None else last[1]


class MarketDataFeed:
    """Redis pub/sub market data -> ``MarketEvent`` -> ``sink``, with health, metrics and reconnects."""

    def __init__(
        self,
        config: RedisConfig,
        sink: Callable[[MarketEvent], object],
        *,
        health: FeedHealth | None = None,
        registry: CollectorRegistry | None = None,
        namespace: str = "strategy_engine",
        clock: Clock | None = None,
        connect_timeout: float = 5.0,
        ping_interval: float = 5.0,
        draw: Callable[[], float] = random.random,
        labels: LabelGuard | None = None,
    ) -> None:
        self.config = config
        # A message's symbol is the publisher's string: the engine's guard maps one outside the
        # configured universe to "other" (without a guard, as in a standalone feed, it is kept).
        self._symbol_label = labels.symbol if labels is not None else _same
        self._sink = sink
        self._clock = clock or SystemClock()
        self.health = health if health is not None else FeedHealth(config.stale_after, self._clock)
        self.registry = registry if registry is not None else CollectorRegistry()
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self._draw = draw
        self._backoff = BreakerPolicy(backoff_initial_s=config.reconnect_min_delay,
                                      backoff_max_s=config.reconnect_max_delay)  # fmt: skip
        self._hello, self._replies, self._subscriptions = _handshake(config)
        # Subscription (channel or pattern, as Redis names it in a message) -> its format, when not the seed's.
        self._formats = {channel.encode(): FORMATS[config.format_of(channel)]
                         for channel in config.market_data_channels if config.format_of(channel) != "seed"}  # fmt: skip
        self._define_metrics(namespace)
        self._received_counts = self._m_received.counts
        self._error_children: dict[tuple[bytes, str], Counter] = {}
        self._limiter = _Limiter(self._clock, _LOG_EVERY_S)
        self._connected = False
        self._ever_connected = False
        self._closing = False
        self._wake = asyncio.Event()
        self._session_task: asyncio.Task[None] | None = None
        self._awaiting: deque[str] = deque()
        self._confirmed = 0
        self._received = self._rejected = self._sink_errors = self._reconnects = self._failed_connects = 0
        self._last_error = ""

    def _define_metrics(self, ns: str) -> None:
        r = self.registry
        # Counted on every message: plain numbers read at scrape time (host.feeds.tally).
        self._m_received = Tally(f"{ns}_market_data_received_total", "Market data messages accepted, by symbol and "
                                 "type", ["symbol", "type"])  # fmt: skip
        r.register(self._m_received)
        self._m_errors = Counter(
            "market_data_errors_total", "Market data messages rejected, by channel and the field at fault (json: "
            "not a JSON object; sink: the sink raised)", ["channel", "field"], namespace=ns, registry=r,
        )  # fmt: skip
        self._m_reconnects = Counter("redis_reconnects_total", "Market data subscriptions re-established after a "
                                     "lost Redis connection", namespace=ns, registry=r)  # fmt: skip
        self._m_connected = Gauge("redis_connected", "1 while the market data subscription is up", namespace=ns,
                                  registry=r)  # fmt: skip
        self._m_latency = Spread(
            f"{ns}_market_data_latency_microseconds", "Receive time minus the message's own timestamp, for messages "
            "stamped within 60 s of now", _LATENCY_BUCKETS_US,
        )  # fmt: skip
        r.register(self._m_latency)
        r.register(_HealthCollector(ns, self.health))

    # ---------------------------------------------------------------- state

    @property
    def connected(self) -> bool:
        """Subscribed to every channel and pattern, and the connection not known to be lost."""
        return self._connected

    @property
    def stats(self) -> FeedStats:
        return FeedStats(
            connected=self._connected, received=self._received, rejected=self._rejected,
            sink_errors=self._sink_errors, reconnects=self._reconnects, failed_connects=self._failed_connects,
            last_error=self._last_error,
        )  # fmt: skip

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Subscribe and deliver until ``close()``; a lost or refused connection is retried forever."""
        failures = 0  # since the last time subscribed: the backoff step
        try:
            while not self._closing:
                try:
                    await self._run_session()
                except _CONNECTION_ERRORS as err:
                    failures = 1 if self._connected else failures + 1
                    self._lost(_describe(err))
                    await self._pause(failures)
        finally:
            self._set_connected(False)

    def close(self) -> None:
        """Stop: ends the current connection or backoff wait; ``run()`` returns soon after."""
        self._closing = True
        self._wake.set()
        if self._session_task is not None:
            self._session_task.cancel()

    async def _run_session(self) -> None:
        # A task of its own so that close() can end it in any phase (connecting, handshake, reading).
        task = asyncio.create_task(self._session(), name="redis-market-data")
        self._session_task = task
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self._closing or (current is not None and current.cancelling()):
                raise
        finally:
            self._session_task = None

    async def _pause(self, failures: int) -> None:
        if self._closing:
            return
        delay = backoff_delay(self._backoff, failures, self._draw())
        delay = min(max(delay, self.config.reconnect_min_delay), self.config.reconnect_max_delay)
        log.info("redis_reconnecting", delay_s=round(delay, 3), failures=failures)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def _session(self) -> None:
        cfg, limit = self.config, self._connect_timeout
        try:
            async with asyncio.timeout(limit):
                reader, writer = await asyncio.open_connection(cfg.host, cfg.port, limit=_READ_SIZE)
        except TimeoutError:
            raise TimeoutError(f"no connection within {limit:g} s") from None
        try:
            parser = hiredis.Reader()
            self._awaiting, self._confirmed = deque(self._replies), 0
            writer.write(self._hello)
            try:
                async with asyncio.timeout(limit):
                    await writer.drain()
                    while self._awaiting or self._confirmed < self._subscriptions:
                        self._pump(parser, await _read(reader))
            except TimeoutError:
                raise TimeoutError(f"subscriptions not confirmed within {limit:g} s") from None
            self._subscribed()
            await self._serve(reader, writer, parser)
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: hiredis.Reader) -> None:
        pinged = False
        while True:
            try:
                async with asyncio.timeout(self._ping_interval):
                    data = await _read(reader)
            except TimeoutError:
                if pinged:
                    raise TimeoutError(f"no reply to PING within {self._ping_interval:g} s") from None
                writer.write(_PING)
                pinged = True
                continue
            pinged = False
            self._pump(parser, data)

    def _subscribed(self) -> None:
        cfg = self.config
        if self._ever_connected:
            self._reconnects += 1
            self._m_reconnects.inc()
        log.info("redis_connected", host=cfg.host, port=cfg.port, db=cfg.db, channels=list(cfg.exact_channels),
                 patterns=list(cfg.channel_patterns), reconnects=self._reconnects)  # fmt: skip
        self._ever_connected = True
        self._set_connected(True)

    def _lost(self, reason: str) -> None:
        self._last_error = reason
        if self._connected:
            self._set_connected(False)
            log.warning("redis_disconnected", host=self.config.host, port=self.config.port, reason=reason)
        else:
            self._failed_connects += 1
            log.warning("redis_connect_failed", host=self.config.host, port=self.config.port, reason=reason)

    def _set_connected(self, up: bool) -> None:
        self._connected = up
        self._m_connected.set(1 if up else 0)

    # ---------------------------------------------------------------- replies (hot path)

    def _pump(self, parser: hiredis.Reader, data: bytes) -> None:
        """Handle every complete reply in ``data`` (and what an earlier chunk left incomplete)."""
        parser.feed(data)
        gets, message = parser.gets, self._message
        received_ns = time.time_ns()  # what a message's latency is measured to: when its chunk was read
        reply = gets()
        while reply is not False:
            kind = reply[0] if type(reply) is list else None
            if kind == b"message":
                message(reply[1], reply[2], reply[1], received_ns)
            elif kind == b"pmessage":
                message(reply[2], reply[3], reply[1], received_ns)
            else:
                self._control(reply)
            reply = gets()

    def _control(self, reply: object) -> None:
        if isinstance(reply, list):
            if reply[0] in (b"subscribe", b"psubscribe"):
                self._confirmed += 1
            return  # pong: liveness only
        command = self._awaiting.popleft() if self._awaiting else "SUBSCRIBE"
        if isinstance(reply, hiredis.ReplyError):
            raise RedisCommandError(command, str(reply))

    def _message(self, channel: bytes, payload: bytes, subscription: bytes, received_ns: int) -> None:
        wire = self._formats.get(subscription, SEED)
        fast = wire.fast
        event = None if fast is None else fast(payload)
        if event is None:
            event = self._decode(channel, wire, payload)
            if event is None:
                return
        self._received += 1
        key = (self._symbol_label(event.symbol), event.kind)
        received = self._received_counts
        received[key] = received.get(key, 0) + 1
        gap = self.health.observe(event, wire.stream, wire.numbering)
        if gap is not None:
            self._gap(gap)
        age_ns = received_ns - event.timestamp_ns
        if -_LIVE_WINDOW_NS < age_ns < _LIVE_WINDOW_NS:
            self._m_latency.observe(max(age_ns, 0) / 1000)
        try:
            self._sink(event)
        except Exception as err:  # the sink's bug must not end the feed either
            self._sink_failed(channel, event, err)

    def _decode(self, channel: bytes, wire: WireFormat, payload: bytes) -> MarketEvent | None:
        """The message's event by orjson and its format's decoder; None when it is rejected (counted, logged)."""
        try:
            data = orjson.loads(payload)
            return wire.decode(data) if type(data) is dict else _not_an_object(wire, data)
        except ValidationError as err:
            self._reject(channel, wire.field_of(err), str(err))
        except orjson.JSONDecodeError as err:
            self._reject(channel, "json", f"not JSON: {err}")
        except Exception as err:  # a codec bug must cost one message, not the feed
            self._reject(channel, "message", f"{type(err).__name__}: {err}")
        return None

    # ---------------------------------------------------------------- the unhappy paths

    def _reject(self, channel: bytes, field: str, reason: str) -> None:
        self._rejected += 1
        self._count_error(channel, field)
        suppressed = self._limiter.allow((channel, field))
        if suppressed is not None:
            log.warning("market_data_rejected", channel=channel.decode("utf-8", "replace"), field=field, reason=reason,
                        suppressed=suppressed)  # fmt: skip

    def _count_error(self, channel: bytes, field: str) -> None:
        key = (channel, field)
        counter = self._error_children.get(key)
        if counter is None:
            if len(self._error_children) >= _MAX_ERROR_LABELS:
                counter = self._m_errors.labels(channel=_OTHER, field=_OTHER)
            else:
                label = channel.decode("utf-8", "replace")
                counter = self._error_children[key] = self._m_errors.labels(channel=label, field=field)
        counter.inc()

    def _sink_failed(self, channel: bytes, event: MarketEvent, err: Exception) -> None:
        self._sink_errors += 1
        self._count_error(channel, "sink")
        suppressed = self._limiter.allow((channel, "sink"))
        if suppressed is not None:
            log.error("market_data_sink_failed", channel=channel.decode("utf-8", "replace"), symbol=event.symbol,
                      kind=event.kind, error=f"{type(err).__name__}: {err}", suppressed=suppressed)  # fmt: skip

    def _gap(self, gap: Gap) -> None:
        what = "market_data_out_of_order" if gap.out_of_order else "market_data_gap"
        suppressed = self._limiter.allow((gap.symbol, what))
        if suppressed is not None:
            log.warning(what, symbol=gap.symbol, stream=gap.stream or "seed", last=gap.last, received=gap.received,
                        missing=gap.missing, suppressed=suppressed)  # fmt: skip


def _same(value: str) -> str:
    return value


class _HealthCollector(Collector):
    """Per-symbol gaps, missing and out-of-order counts and staleness, read from FeedHealth at scrape time."""

    def __init__(self, namespace: str, health: FeedHealth) -> None:
        self._ns = namespace
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        ns, labels = self._ns, ["symbol"]
        gaps = CounterMetricFamily(f"{ns}_market_data_sequence_gaps", "Times a symbol's sequence jumped ahead",
                                   labels=labels)  # fmt: skip
        missing = CounterMetricFamily(f"{ns}_market_data_missing", "Updates skipped by sequence gaps", labels=labels)
        late = CounterMetricFamily(f"{ns}_market_data_out_of_order", "Updates at or below the last sequence seen "
                                   "(late or duplicated)", labels=labels)  # fmt: skip
        stale = GaugeMetricFamily(f"{ns}_market_data_stale", "1 while a symbol has had no update for staleAfter",
                                  labels=labels)  # fmt: skip
        age = GaugeMetricFamily(f"{ns}_market_data_age_seconds", "Since the last update of a symbol was received",
                                labels=labels)  # fmt: skip
        for s in self._health.status():
            gaps.add_metric([s.symbol], s.gaps)
            missing.add_metric([s.symbol], s.missing)
            late.add_metric([s.symbol], s.out_of_order)
            stale.add_metric([s.symbol], 1 if s.stale else 0)
            age.add_metric([s.symbol], s.age_s)
        yield from (gaps, missing, late, stale, age)


def _handshake(config: RedisConfig) -> tuple[bytes, list[str], int]:
    """The commands sent on connect, in one write; the names of those answered by a plain reply; and
    how many subscriptions must be confirmed."""
    commands: list[tuple[str, ...]] = []
    if config.password:
        commands.append(("AUTH", config.password))
    commands.append(("SELECT", str(config.db)))
    replies = [command[0] for command in commands]
    if config.exact_channels:
        commands.append(("SUBSCRIBE", *config.exact_channels))
    if config.channel_patterns:
        commands.append(("PSUBSCRIBE", *config.channel_patterns))
    # hiredis' stub types the argument as a 1-tuple; the function takes a command of any length.
    hello = b"".join(hiredis.pack_command(command) for command in commands)  # type: ignore[arg-type]
    return hello, replies, len(config.exact_channels) + len(config.channel_patterns)


async def _read(reader: asyncio.StreamReader) -> bytes:
    data = await reader.read(_READ_SIZE)
    if not data:
        raise EOFError("connection closed by the server")
    return data


def _not_an_object(wire: WireFormat, data: object) -> MarketEvent:
    raise ValidationError(wire.owner, "json", f"expected a JSON object, got {type(data).__name__}")


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__

"""Fills and positions from NATS: decoded, routed to their strategy, each fill handed on once.

Model. ``FillFeed.run`` connects (retrying as ``nats.maxReconnects``/``reconnectWait`` say) and
consumes ``nats.fillSubject`` and ``nats.positionSubject`` until ``close``. Every message takes one
path in both modes: decode through ``sdk._codec`` (seed JSON and peer variants — ``id`` for
``fill_id``, ``BUY``, numbers as strings, no ``order_id``, informational fields such as
``fee_currency``), pick the strategy (the ``strategy`` field, else ``route(order_id)`` for a fill
that names an order; one with neither is unroutable), hand it on; the ``Outcome`` is what
JetStream acks, terms or naks by.

Exactly once. ``FillDedupe`` (the last 100 000 fill ids of this process) sits in front of
``on_fill``, so a fill delivered twice — a peer's re-send, a JetStream redelivery after a lost ack —
reaches ``on_fill`` once per process. ``on_fill`` (the ledger) returns False for a fill it already
holds: that is the durable de-duplication across restarts. Both count ``fills_duplicate_total``.
A fill id is remembered only after ``on_fill`` returned, so a fill whose ``on_fill`` raised is
still taken when it comes again. ``on_fill`` should record the fill and then deliver it to the
strategy (``Supervisor.deliver``); ``route`` should be able to answer before the feed starts (the
order journal is loaded first), because an order is journaled before it is sent.

Core NATS (``nats.jetstream: false``): plain subscriptions, at most once. One subscription task per
subject, so fills are handed on in the order they were published, positions likewise, but a fill
and a position are not ordered against each other. A fill whose ``on_fill`` raised is counted and
logged with its payload; nothing redelivers it.

Core NATS loses what is published while the engine is not subscribed: before its first
subscription, during a reconnect, between two clients. Each time the core subscriptions are live
again, ``on_subscribed(trigger)`` is called (``fills_subscribed`` for a new client, ``fills_resubscribed``
after the client reconnected); the engine reconciles its working orders with the venue then, so a
fill lost in that gap is recovered from the venue's filled quantity (``reconciled``), not left out
until the next restart. JetStream replays what it missed and is not reconciled for it.

JetStream (``nats.jetstream: true``), at least once, made exactly once by the de-duplication above:

- The stream ``nats.stream`` must hold both subjects. It is created when missing (server default
  limits; create it yourself to choose them). If it exists without them, or another stream holds
  them, ``run`` raises ``FeedError`` saying which stream holds what and what to change.
- One durable pull consumer ``nats.durableName`` over both subjects (``filter_subjects``): explicit
  ack, deliver all, unlimited redelivery, ack wait 5 s (a batch of 32 takes milliseconds; a message
  handed to an engine that died before acking it is delivered again that much later, so a fill
  held by a crashed engine reaches the next one within seconds). One consumer keeps fills and positions in
  publish order, and positions published while the host was down are replayed too, in order, so a
  strategy ends on the latest one. It is created or updated on every start; one the server will
  not update (another ack policy, a push consumer) is a ``FeedError``.
- Messages are fetched in batches and handled one at a time. Ack once ``on_fill`` returned (True:
  recorded, False: the ledger already had it) or the position was handed on; nak with
  ``retry_delay`` when ``on_fill``/``on_position``/``route`` raised, so JetStream redelivers it.
- Term (no redelivery) for a message that cannot be decoded and for one that cannot be routed,
  once it is counted and logged with its payload: neither changes by being delivered again (the
  order journal already holds every order this engine sent), and a nak would redeliver it forever
  and hold an ack-pending slot. Term keeps it in the stream (limits retention) for an operator.

Liveness. ``connected`` is true while the client is connected and subscribed (for ``/ready``).
Disconnects and reconnects are counted and logged; the client retries by itself
(``maxReconnects`` times, ``reconnectWait`` apart). A broker outage is never fatal: once the client
gives up, or a connection cannot be made at all, ``run`` starts a new client after a backoff
(``reconnectWait`` doubling up to 30 s, ``nats_connect_retries_total``), for as long as it runs. ``close`` stops the
fetch loop (within one fetch wait, 0.5 s), finishes and acks the batch in hand, and drains.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from enum import Enum
from typing import Any, TypeVar

import nats
import orjson
import structlog
from nats import errors as nats_errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js import errors as js_errors
from prometheus_client import CollectorRegistry, Counter, Histogram

from host.config import NatsConfig
from host.errors import EngineError
from host.labels import LabelGuard
from sdk._codec import decode_fill, decode_position
from sdk.errors import ValidationError
from sdk.events import Fill, Position

__all__ = ["FeedError", "FeedMetrics", "FillDedupe", "FillFeed", "Outcome"]

log = structlog.get_logger("host.feeds.fills")

T = TypeVar("T")
OnFill = Callable[[str, Fill], Awaitable[bool]]
OnPosition = Callable[[str, Position], Awaitable[None] | None]

_FETCH_BATCH = 32
_FETCH_WAIT_S = 0.5  # also how long ``close`` may wait for the fetch loop
_ACK_WAIT_S = 5.0
_DRAIN_TIMEOUT_S = 5.0
_RETRY_MAX_S = 30.0  # the longest wait between two attempts once the client has given up
_LIVE_LATENCY_NS = 60 * 1_000_000_000  # older (replayed, recorded) fills say nothing about latency
_PAYLOAD_LOGGED = 300
_FIELD_LABEL_MAX = 48  # an unknown field's name becomes a label: keep one bad peer from bloating it
_LATENCY_BUCKETS_US = (
    250, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000, 30_000_000,
)  # fmt: skip


class FeedError(EngineError):
    """The feed cannot run: ``what`` names the server, stream or consumer, ``reason`` the rule and fix."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what}: {reason}")


class _Unreachable(FeedError):
    """The broker cannot be reached now: retried, never fatal."""


class Outcome(Enum):
    """What became of one message; JetStream acks, terms or naks by it."""

    RECORDED = "recorded"  # a new fill, in the ledger: ack
    DUPLICATE = "duplicate"  # seen by this process or already in the ledger: ack
    DELIVERED = "delivered"  # a position, handed on: ack
    REJECTED = "rejected"  # bad input, counted: term
    UNROUTABLE = "unroutable"  # no strategy to give it to, counted: term
    FAILED = "failed"  # on_fill/on_position/route raised: nak, redelivered


class FillDedupe:
    """The ids of the last ``capacity`` fills this process handed on (least recently seen go first).

    Pure and synchronous; the feed asks ``seen`` before ``on_fill`` and calls ``record`` after it.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError(f"FillDedupe.capacity: must be >= 1, got {capacity}")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, fill_id: str) -> bool:
        """True if ``fill_id`` was recorded and not evicted since; a hit makes it the most recent."""
        if fill_id in self._ids:
            self._ids.move_to_end(fill_id)
            return True
        return False

    def record(self, fill_id: str) -> None:
        self._ids[fill_id] = None
        self._ids.move_to_end(fill_id)
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


class FeedMetrics:
    """The feed's metrics, under the seed's names where the seed had one."""

    def __init__(self, registry: CollectorRegistry, namespace: str) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, namespace=namespace, registry=registry)

        self.registry = registry
        self.received = counter("fills_received_total", "New fills recorded, by strategy", ("strategy",))
        self.latency_us = Histogram(
            "fill_latency_microseconds", "Fill timestamp to recorded, for fills under 60 s old",
            namespace=namespace, registry=registry, buckets=_LATENCY_BUCKETS_US,
        )  # fmt: skip
        self.positions = counter("position_updates_total", "Position updates handed on, by strategy", ("strategy",))
        self.errors = counter("fill_errors_total", "Bad input rejected, by subject and field", ("subject", "field"))
        self.unroutable = counter("fills_unroutable_total", "Fills with no strategy and an order nobody knows")
        self.positions_unroutable = counter("positions_unroutable_total", "Positions with no strategy")
        self.duplicates = counter("fills_duplicate_total", "Fills delivered again, dropped before or by the ledger")
        self.failed = counter("fills_failed_total", "Fills whose on_fill (ledger) or route raised")
        self.positions_failed = counter("positions_failed_total", "Positions whose on_position raised")
        self.reconnects = counter("nats_reconnects_total", "NATS reconnects of the fill feed")
        self.disconnects = counter("nats_disconnects_total", "NATS disconnects of the fill feed")
        self.retries = counter("nats_connect_retries_total", "New NATS connections tried after the client gave up")


class FillFeed:
    """Fills and positions from NATS (core or JetStream) to ``on_fill`` / ``on_position``."""

    def __init__(
        self,
        config: NatsConfig,
        *,
        on_fill: OnFill,
        on_position: OnPosition,
        route: Callable[[str], str | None],
        registry: CollectorRegistry | None = None,
        namespace: str = "strategy_engine",
        dedupe: FillDedupe | None = None,
        retry_delay: float = 1.0,
        labels: LabelGuard | None = None,
        on_subscribed: Callable[[str], object] | None = None,
    ) -> None:
        self.config = config
        # The strategy a fill or position names is the peer's string: the engine's guard maps one
        # it does not run to "other" (without a guard, as in a standalone feed, it is kept).
        self._label = labels.strategy if labels is not None else _same
        self.metrics = FeedMetrics(registry if registry is not None else CollectorRegistry(), namespace)
        self.dedupe = dedupe if dedupe is not None else FillDedupe()
        self._on_fill = on_fill
        self._on_position = on_position
        self._on_subscribed = on_subscribed
        self._route = route
        self._retry_delay = retry_delay  # before JetStream redelivers a message whose handler raised
        self._nc: Client | None = None
        self._psub: JetStreamContext.PullSubscription | None = None
        self._up = asyncio.Event()
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()  # the client gave up reconnecting
        self._done = asyncio.Event()
        self._running = False
        self._closing_client = False

    @property
    def connected(self) -> bool:
        """Connected to NATS and consuming: what ``/ready`` asks."""
        return self._up.is_set() and self._nc is not None and self._nc.is_connected

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Consume until ``close``. A broker that cannot be reached, or that the client gave up on,
        is retried for ever with backoff (``connected`` false meanwhile, so /ready says so); only a
        JetStream setup that cannot work (a misconfigured stream or consumer) raises ``FeedError``."""
        self._running = True
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    self._nc = await _unless(self._stop, self._connect())
                    if self._nc is not None:
                        await self._consume(self._nc)
                        failures = 0  # it was up: the next outage starts its backoff afresh
                except _Unreachable as err:
                    log.warning("nats_unreachable", url=self.config.url, reason=err.reason)
                if self._stop.is_set():
                    break
                failures += 1
                await self._pause(failures)
        finally:
            self._stop.set()  # from here on a disconnect or close is ours, not news
            self._up.clear()
            await self._shutdown()
            self._done.set()

    async def _pause(self, failures: int) -> None:
        """Between two connection attempts after the client gave up: backoff, counted and logged."""
        await self._shutdown()
        self._lost.clear()
        delay = min(_RETRY_MAX_S, max(self.config.reconnect_wait, 0.05) * 2 ** min(failures - 1, 10))
        self.metrics.retries.inc()
        log.warning("nats_retrying", url=self.config.url, attempt=failures, after_s=round(delay, 3))
        with suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()

    async def close(self) -> None:
        """Stop consuming, settle the batch in hand and drain the connection."""
        self._stop.set()
        if self._running:
            async with asyncio.timeout(_DRAIN_TIMEOUT_S + _FETCH_WAIT_S + 5):
                await self._done.wait()

    async def _connect(self) -> Client:
        options: dict[str, Any] = {
            "servers": [url.strip() for url in self.config.url.split(",")],
            "max_reconnect_attempts": self.config.max_reconnects,
            "reconnect_time_wait": self.config.reconnect_wait,  # seconds; nats-py annotates it int, takes float
            "disconnected_cb": self._disconnected,
            "reconnected_cb": self._reconnected,
            "error_cb": self._error,
            "closed_cb": self._closed,
            "name": "strategy-engine-fills",
        }
        try:
            return await nats.connect(**options)
        except (OSError, nats_errors.Error) as err:
            raise _Unreachable(f"nats {self.config.url}", f"cannot connect: {err}") from None

    async def _consume(self, nc: Client) -> None:
        mode = "jetstream" if self.config.jetstream else "core"
        fills, positions = self.config.fill_subject, self.config.position_subject
        if self.config.jetstream:
            js = nc.jetstream()
            try:
                self._psub = await self._bind(js)
            except nats_errors.Error as err:  # FeedError passes: it says more than this
                reason = f"cannot set up the stream and consumer: {err}; is JetStream enabled (nats-server -js)?"
                raise FeedError(f"jetstream at {self.config.url}", reason) from None
            self._up.set()
            log.info("fill_feed_started", mode=mode, fills=fills, positions=positions, stream=self.config.stream,
                     consumer=self.config.durable_name)  # fmt: skip
            await self._pull(js)
        else:
            await nc.subscribe(fills, cb=self._core)
            await nc.subscribe(positions, cb=self._core)
            await nc.flush()
            self._up.set()
            log.info("fill_feed_started", mode=mode, fills=fills, positions=positions)
            self._subscribed("fills_subscribed")
            await _first(self._stop, self._lost)

    async def _shutdown(self) -> None:
        nc, self._nc = self._nc, None
        psub, self._psub = self._psub, None
        if nc is None or nc.is_closed:
            return
        self._closing_client = True  # its closed callback is our doing, not news
        try:
            if psub is not None:
                # Unsubscribed first: drain would otherwise wait for the pull inbox to be read.
                with suppress(nats_errors.Error):
                    await psub.unsubscribe()
            try:
                async with asyncio.timeout(_DRAIN_TIMEOUT_S):
                    await nc.drain()
            except (TimeoutError, nats_errors.Error) as err:
                log.warning("nats_drain_failed", error=str(err))
                await nc.close()
        finally:
            self._closing_client = False

    # ---------------------------------------------------------------- connection callbacks

    async def _disconnected(self) -> None:
        self._up.clear()
        if self._stop.is_set():
            return  # our own close
        self.metrics.disconnects.inc()
        log.warning("nats_disconnected", url=self.config.url)

    async def _reconnected(self) -> None:
        self.metrics.reconnects.inc()
        self._up.set()
        url = self._nc.connected_url if self._nc is not None else None
        log.info("nats_reconnected", url=url.geturl() if url is not None else self.config.url)
        if not self.config.jetstream:
            self._subscribed("fills_resubscribed")

    def _subscribed(self, trigger: str) -> None:
        """Core NATS subscriptions are live again after a time they were not: whatever was published
        meanwhile is gone (at most once), so ``on_subscribed`` is told (the engine reconciles)."""
        if self._on_subscribed is None:
            return
        try:
            self._on_subscribed(trigger)
        except Exception as err:  # the callback's bug must not end the feed
            log.error("fill_feed_subscribed_callback_failed", error=f"{type(err).__name__}: {err}")

    async def _error(self, err: Exception) -> None:
        log.warning("nats_error", url=self.config.url, error=str(err) or type(err).__name__)

    async def _closed(self) -> None:
        self._up.clear()
        if not self._stop.is_set() and not self._closing_client:
            self._lost.set()
            log.error("nats_closed", url=self.config.url, reason="reconnect attempts exhausted")

    # ---------------------------------------------------------------- core NATS

    async def _core(self, msg: Msg) -> None:
        await self._handle(msg)

    # ---------------------------------------------------------------- JetStream

    async def _bind(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        await self._ensure_stream(js)
        await self._ensure_consumer(js)
        return await js.pull_subscribe_bind(durable=self.config.durable_name, stream=self.config.stream)

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        stream, subjects = self.config.stream, [self.config.fill_subject, self.config.position_subject]
        what = f"jetstream stream {stream!r}"
        try:
            info = await js.stream_info(stream)
        except js_errors.NotFoundError:
            try:
                await js.add_stream(name=stream, subjects=subjects)
            except js_errors.APIError as err:
                raise FeedError(what, await self._create_failure(js, subjects, err)) from None
            log.info("jetstream_stream_created", stream=stream, subjects=subjects)
            return
        held = list(info.config.subjects or [])
        missing = [s for s in subjects if not any(_covers(pattern, s) for pattern in held)]
        if missing:
            raise FeedError(what, f"exists with subjects {held}, which do not include {missing}; add them to "
                            "the stream, or set nats.stream to the stream that holds them")  # fmt: skip

    async def _create_failure(self, js: JetStreamContext, subjects: list[str], err: js_errors.APIError) -> str:
        reason = f"cannot create it with subjects {subjects}: {err.description}"
        with suppress(nats_errors.Error):
            holder = await js.find_stream_name_by_subject(subjects[0])
            reason += f"; stream {holder!r} already holds {subjects[0]}: set nats.stream to {holder!r}"
        return reason

    async def _ensure_consumer(self, js: JetStreamContext) -> None:
        name = self.config.durable_name
        config = js_api.ConsumerConfig(
            name=name, durable_name=name, ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.ALL, ack_wait=_ACK_WAIT_S, max_deliver=-1,
            filter_subjects=[self.config.fill_subject, self.config.position_subject],
        )  # fmt: skip
        try:
            await js.add_consumer(self.config.stream, config)
        except js_errors.APIError as err:
            raise FeedError(
                f"jetstream consumer {name!r} on stream {self.config.stream!r}",
                f"cannot be used as an explicit-ack pull consumer of both subjects: {err.description}; delete it "
                f"(nats consumer rm {self.config.stream} {name}) or set nats.durableName to another name",
            ) from None

    async def _pull(self, js: JetStreamContext) -> None:
        while not self._stop.is_set() and not self._lost.is_set():
            if not self._up.is_set():
                await _first(self._up, self._stop, self._lost)
                continue
            try:
                if self._psub is None:
                    self._psub = await self._bind(js)
                msgs = await self._psub.fetch(_FETCH_BATCH, timeout=_FETCH_WAIT_S)
            except TimeoutError:
                continue  # nothing to fetch, or the link dropped mid-fetch
            except nats_errors.Error as err:
                await self._fetch_failed(err)
                continue
            for msg in msgs:
                await self._settle(msg, await self._handle(msg))

    async def _fetch_failed(self, err: nats_errors.Error) -> None:
        """Log, wait, and bind afresh: the consumer may have been deleted or the server restarted empty."""
        log.warning("jetstream_fetch_failed", stream=self.config.stream, consumer=self.config.durable_name,
                    error=str(err) or type(err).__name__)  # fmt: skip
        psub, self._psub = self._psub, None
        if psub is not None:
            with suppress(nats_errors.Error):
                await psub.unsubscribe()
        with suppress(TimeoutError):
            async with asyncio.timeout(self.config.reconnect_wait):
                await _first(self._stop, self._lost)

    async def _handle(self, msg: Msg) -> Outcome:
        if msg.subject == self.config.fill_subject:
            return await self.handle_fill(msg.data)
        return await self.handle_position(msg.data)

    async def _settle(self, msg: Msg, outcome: Outcome) -> None:
        try:
            if outcome in (Outcome.REJECTED, Outcome.UNROUTABLE):
                await msg.term()
            elif outcome is Outcome.FAILED:
                await msg.nak(delay=self._retry_delay)
            else:
                await msg.ack()
        except nats_errors.Error as err:
            # Unacked, so JetStream redelivers it after the ack wait; the de-duplication absorbs that.
            log.warning("jetstream_ack_failed", subject=msg.subject, outcome=outcome.value, error=str(err))

    # ---------------------------------------------------------------- one message

    async def handle_fill(self, data: bytes) -> Outcome:
        """Decode, de-duplicate, route and record one fill message; never raises for bad input."""
        fill = self._decode(self.config.fill_subject, data, decode_fill)
        if fill is None:
            return Outcome.REJECTED
        if self.dedupe.seen(fill.fill_id):
            return self._duplicate(fill, by="feed")
        try:
            strategy = fill.strategy or (self._route(fill.order_id) if fill.order_id else None)
            if not strategy:
                return self._unroutable(fill, data)
            new = await self._on_fill(strategy, fill)
        except Exception as err:  # the ledger's failure, whatever it is: not acked, so redelivered
            self.metrics.failed.inc()
            log.error("fill_failed", subject=self.config.fill_subject, fill_id=fill.fill_id, order_id=fill.order_id,
                      error=f"{type(err).__name__}: {err}", payload=_excerpt(data))  # fmt: skip
            return Outcome.FAILED
        self.dedupe.record(fill.fill_id)
        if not new:
            return self._duplicate(fill, by="ledger")
        self.metrics.received.labels(strategy=self._label(strategy)).inc()
        age_ns = time.time_ns() - fill.timestamp_ns
        if 0 <= age_ns <= _LIVE_LATENCY_NS:
            self.metrics.latency_us.observe(age_ns / 1_000)
        return Outcome.RECORDED

    def _unroutable(self, fill: Fill, data: bytes) -> Outcome:
        self.metrics.unroutable.inc()
        if fill.order_id:
            reason = f"no strategy field, and order_id {fill.order_id!r} is no order of this engine"
        else:
            reason = "no strategy field and no order_id: set strategy on the fill"
        log.error("fill_unroutable", subject=self.config.fill_subject, fill_id=fill.fill_id, order_id=fill.order_id,
                  field="strategy", reason=reason, payload=_excerpt(data))  # fmt: skip
        return Outcome.UNROUTABLE

    def _duplicate(self, fill: Fill, *, by: str) -> Outcome:
        self.metrics.duplicates.inc()
        log.info("fill_duplicate", fill_id=fill.fill_id, order_id=fill.order_id, by=by)
        return Outcome.DUPLICATE

    async def handle_position(self, data: bytes) -> Outcome:
        """Decode and hand on one position message; never raises for bad input."""
        subject = self.config.position_subject
        position = self._decode(subject, data, decode_position)
        if position is None:
            return Outcome.REJECTED
        strategy = position.strategy
        if not strategy:
            self.metrics.positions_unroutable.inc()
            log.error("position_unroutable", subject=subject, symbol=position.symbol, reason="no strategy field",
                      payload=_excerpt(data))  # fmt: skip
            return Outcome.UNROUTABLE
        try:
            result = self._on_position(strategy, position)
            if inspect.isawaitable(result):
                await result
        except Exception as err:  # whatever the receiver's failure: counted, and redelivered on JetStream
            self.metrics.positions_failed.inc()
            log.error("position_failed", subject=subject, strategy=strategy, symbol=position.symbol,
                      error=f"{type(err).__name__}: {err}")  # fmt: skip
            return Outcome.FAILED
        self.metrics.positions.labels(strategy=self._label(strategy)).inc()
        return Outcome.DELIVERED

    def _decode(self, subject: str, data: bytes, decode: Callable[[Mapping[str, Any]], T]) -> T | None:
        try:
            obj = orjson.loads(data)
            if not isinstance(obj, dict):
                raise ValidationError("message", "json", f"expected a JSON object, got {type(obj).__name__}")
            return decode(obj)
        except ValidationError as err:
            field, reason = err.field, err.reason
        except orjson.JSONDecodeError as err:
            field, reason = "json", f"malformed JSON: {err}"
        except (ValueError, TypeError, OverflowError) as err:  # a value the codec has no rule for
            field, reason = "message", f"{type(err).__name__}: {err}"
        field = field[:_FIELD_LABEL_MAX]
        self.metrics.errors.labels(subject=subject, field=field).inc()
        log.warning("message_rejected", subject=subject, field=field, reason=reason, payload=_excerpt(data))
        return None


def _same(value: str) -> str:
    return value


def _covers(pattern: str, subject: str) -> bool:
    """Whether the NATS subject ``pattern`` (``*`` one token, ``>`` the rest) matches ``subject``."""
    tokens, parts = pattern.split("."), subject.split(".")
    for i, token in enumerate(tokens):
        if token == ">":
            return len(parts) > i
        if i >= len(parts) or token not in ("*", parts[i]):
            return False
    return len(tokens) == len(parts)


def _excerpt(data: bytes) -> str:
    return data[:_PAYLOAD_LOGGED].decode("utf-8", "replace")


async def _first(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set (bound it with ``asyncio.timeout`` where it must end)."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _unless(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """``work``'s result, or None (``work`` cancelled) if ``stop`` is set first."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    return None

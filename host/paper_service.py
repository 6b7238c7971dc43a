"""``strategy-engine paper-venue``: the local stand-in for the order-execution service.

A real gRPC server on ``grpc.orderExecutionAddress`` in one of two protocols (``protocol``, by
default ``grpc.protocol``): ``orderexecution`` serves ``orderexecution.OrderExecution``
(``PaperVenueServer``), ``order-service`` serves b25's ``order.OrderService``
(``PaperOrderService``). Either matches orders with the same engine as simulation mode against
market data it reads from Redis (``redis.marketDataChannels``), and publishes every fill and the
strategy's (order-service: the user's) position after it to NATS (``nats.fillSubject``,
``nats.positionSubject``) in the seed's JSON, as the real service's peers do. With
``nats.jetstream`` fills are published through JetStream with ``Nats-Msg-Id`` = fill id, so a
republish is de-duplicated by the stream. ``order-service`` also publishes every order update as
b25 does, in its JSON, on ``orders.updates.<SYMBOL>`` (core NATS, as b25 publishes them).

Fills and order updates come out of the matching engine synchronously; they are queued and
published by one task in the order they happened, so a slow NATS never blocks matching. Runs
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

import nats
import orjson
import structlog
from nats import errors as nats_errors

from host.clock import SystemClock
from host.config import Config
from host.execution.matching import MatchingEngine
from host.execution.paper import PaperVenueServer, paper_id_prefix
from host.execution.paper_order_service import PaperOrderService
from host.execution.paper_order_wire import ServiceUpdate, update_json
from host.feeds.market import MarketDataFeed
from sdk._codec import encode_fill, encode_position
from sdk.events import Fill, Position

__all__ = ["PaperVenueService", "SERVICES"]

# What each protocol serves, as the command says it.
SERVICES = {"orderexecution": "orderexecution.OrderExecution", "order-service": "order.OrderService"}

log = structlog.get_logger("host.paper_venue")
_NATS_RETRY_MAX_S = 5.0  # the longest wait before a new NATS client while the broker is away


class PaperVenueService:
    """Paper venue + Redis market data in + NATS fills and positions out."""

    def __init__(
        self, config: Config, *, fee_rate: float = 0.0, slippage_bps: float = 0.0, protocol: str | None = None
    ) -> None:
        self.config = config
        self.protocol = protocol or config.grpc.protocol
        if self.protocol not in SERVICES:
            raise ValueError(f"protocol: expected one of {', '.join(SERVICES)}, got {self.protocol!r}")
        clock = SystemClock()
        self.matching = MatchingEngine(fee_rate, slippage_bps, clock=clock, id_prefix=paper_id_prefix())
        self._outbox: asyncio.Queue[tuple[Fill, Position] | ServiceUpdate] = asyncio.Queue()
        address = config.grpc.order_execution_address
        self.server: PaperVenueServer | PaperOrderService
        if self.protocol == "order-service":
            self.server = PaperOrderService(
                self.matching, address=address, fill_sink=self._queue, update_sink=self._outbox.put_nowait
            )
        else:
            self.server = PaperVenueServer(self.matching, address=address, fill_sink=self._queue)
        self.market = MarketDataFeed(config.redis, self.server.on_market)
        self.published = 0  # fills (each with its position)
        self.updates_published = 0  # order updates (order-service)

    def _queue(self, fill: Fill, position: Position) -> None:
        self._outbox.put_nowait((fill, position))

    async def _publish(self) -> None:
        """Publish the outbox in order, for as long as the venue runs: a NATS outage (past the
        client's own reconnects, or no server at all) is waited out with a new client after a
        backoff (``nats.reconnectWait`` doubling up to 5 s), and the message in hand is published
        again then (a fill twice on JetStream is one message, by its ``Nats-Msg-Id``; on core NATS
        the engine keeps one by its fill id). Nothing is dropped and the venue keeps matching."""
        nats_config = self.config.nats
        pending: tuple[Fill, Position] | ServiceUpdate | None = None
        backoff = nats_config.reconnect_wait
        while True:
            try:
                client = await nats.connect(
                    nats_config.url, max_reconnect_attempts=nats_config.max_reconnects,
                    reconnect_time_wait=nats_config.reconnect_wait, name="strategy-engine-paper-venue",
                    allow_reconnect=True,
                )  # fmt: skip
            except (nats_errors.Error, OSError, TimeoutError) as error:
                log.warning("paper_venue_nats_unavailable", error=str(error) or type(error).__name__, retry_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _NATS_RETRY_MAX_S)
                continue
            backoff = nats_config.reconnect_wait
            stream = client.jetstream() if nats_config.jetstream else None
            try:
                while True:
                    if pending is None:
                        pending = await self._outbox.get()
                    if isinstance(pending, ServiceUpdate):
                        body = orjson.dumps(update_json(pending))
                        await client.publish(f"orders.updates.{pending.order.symbol}", body)
                        self.updates_published += 1
                    else:
                        await self._publish_fill(client, stream, *pending)
                    pending = None
            except (nats_errors.Error, OSError, TimeoutError) as error:
                log.warning("paper_venue_publish_failed", error=str(error) or type(error).__name__,
                            outbox=self._outbox.qsize() + (pending is not None))  # fmt: skip
            finally:
                with contextlib.suppress(Exception):
                    await client.close()

    async def _publish_fill(self, client: Any, stream: Any, fill: Fill, position: Position) -> None:
        nats_config = self.config.nats
        fill_body = orjson.dumps(encode_fill(fill))
        position_body = orjson.dumps(encode_position(position))
        if stream is not None:
            await stream.publish(nats_config.fill_subject, fill_body, headers={"Nats-Msg-Id": fill.fill_id})
            await stream.publish(nats_config.position_subject, position_body)
        else:
            await client.publish(nats_config.fill_subject, fill_body)
            await client.publish(nats_config.position_subject, position_body)
        self.published += 1

    async def run(self, shutdown: Awaitable[object]) -> None:
        address = await self.server.start()
        log.info("paper_venue_listening", address=address, service=SERVICES[self.protocol])
        try:
            async with asyncio.TaskGroup() as group:
                market = group.create_task(self.market.run())
                publisher = group.create_task(self._publish())
                await shutdown
                log.info("paper_venue_stopping", published=self.published)
                self.market.close()
                market.cancel()
                publisher.cancel()
        finally:
            await self.server.stop(1.0)

"""``strategy-engine paper-venue``: the local stand-in for the order-execution service.

A real gRPC server speaking ``orderexecution.OrderExecution`` (``PaperVenueServer``) on
``grpc.orderExecutionAddress``, matching orders with the same engine as simulation mode against
market data it reads from Redis (``redis.marketDataChannels``), and publishing every fill and the
strategy's position after it to NATS (``nats.fillSubject``, ``nats.positionSubject``) in the seed's
JSON, as the real service's peers do. With ``nats.jetstream`` fills are published through
JetStream with ``Nats-Msg-Id`` = fill id, so a republish is de-duplicated by the stream.

Fills come out of the matching engine synchronously; they are queued and published by one task
in order, so a slow NATS never blocks matching. Runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

import nats
import orjson
import structlog

from host.clock import SystemClock
from host.config import Config
from host.execution.matching import MatchingEngine
from host.execution.paper import PaperVenueServer, paper_id_prefix
from host.feeds.market import MarketDataFeed
from sdk.codec import encode_fill, encode_position
from sdk.events import Fill, Position

__all__ = ["PaperVenueService"]

log = structlog.get_logger("host.paper_venue")


class PaperVenueService:
    """Paper venue + Redis market data in + NATS fills and positions out."""

    def __init__(self, config: Config, *, fee_rate: float = 0.0, slippage_bps: float = 0.0) -> None:
        self.config = config
        clock = SystemClock()
        self.matching = MatchingEngine(fee_rate, slippage_bps, clock=clock, id_prefix=paper_id_prefix())
        self._outbox: asyncio.Queue[tuple[Fill, Position]] = asyncio.Queue()
        self.server = PaperVenueServer(
            self.matching, address=config.grpc.order_execution_address, fill_sink=self._queue
        )
        self.market = MarketDataFeed(config.redis, self.server.on_market)
        self.published = 0

    def _queue(self, fill: Fill, position: Position) -> None:
        self._outbox.put_nowait((fill, position))

    async def _publish(self) -> None:
        nats_config = self.config.nats
        client = await nats.connect(
            nats_config.url, max_reconnect_attempts=nats_config.max_reconnects,
            reconnect_time_wait=nats_config.reconnect_wait, name="strategy-engine-paper-venue",
        )  # fmt: skip
        stream = client.jetstream() if nats_config.jetstream else None
        try:
            while True:
                fill, position = await self._outbox.get()
                fill_body = orjson.dumps(encode_fill(fill))
                position_body = orjson.dumps(encode_position(position))
                if stream is not None:
                    await stream.publish(nats_config.fill_subject, fill_body, headers={"Nats-Msg-Id": fill.fill_id})
                    await stream.publish(nats_config.position_subject, position_body)
                else:
                    await client.publish(nats_config.fill_subject, fill_body)
                    await client.publish(nats_config.position_subject, position_body)
                self.published += 1
        finally:
            with contextlib.suppress(Exception):
                await client.drain()

    async def run(self, shutdown: Awaitable[object]) -> None:
        address = await self.server.start()
        log.info("paper_venue_listening", address=address)
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

"""What the two paper gRPC servers share: binding a grpc.aio server, and fills with their positions.

``PaperVenueServer`` (``orderexecution.OrderExecution``) and ``PaperOrderService``
(``order.OrderService``) are two wire shells over one ``MatchingEngine``; everything below the wire
is the same, so it lives here once:

- ``serve_grpc(bind, register)``: a grpc.aio server on ``bind`` (``host:port``, port 0 picks a free
  one) with one servicer registered; returns the started server and the bound address, or raises
  ``ListenError`` naming ``grpc.orderExecutionAddress`` (the key both commands listen on).
- ``PaperFills``: each fill is applied to its strategy's ``PositionBook`` (``Fill.strategy``) and
  handed, with the strategy's position after it, to the sink — what ``paper-venue`` publishes on
  ``nats.fillSubject`` and ``nats.positionSubject``. Called synchronously on the event loop; a sink
  that raises is logged (``paper_fill_sink_failed``) and counted, and the next fill still goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import grpc
import structlog

from host.errors import ListenError
from sdk._positions import PositionBook
from sdk.events import Fill, Position

__all__ = ["FillCounters", "PaperFills", "PositionSink", "serve_grpc"]

log = structlog.get_logger("host.execution.paper")

PositionSink = Callable[[Fill, Position], None]


class FillCounters(Protocol):
    """Where ``PaperFills`` counts: a server's stats."""

    fills: int
    sink_errors: int


async def serve_grpc(bind: str, register: Callable[[Any], None]) -> tuple[Any, str]:
    """Start a grpc.aio server on ``bind`` with what ``register`` adds; (server, bound ``host:port``)."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    register(server)
    try:
        port = server.add_insecure_port(bind)
    except RuntimeError:  # grpcio raises where it used to return 0
        port = 0
    if port == 0:
        raise ListenError("grpc.orderExecutionAddress", bind, "address in use or not available")
    await server.start()
    return server, f"{bind.rsplit(':', 1)[0]}:{port}"


class PaperFills:
    """Fills -> per-strategy positions -> ``sink(fill, position)``, counted in ``counters``."""

    def __init__(self, sink: PositionSink | None, counters: FillCounters) -> None:
        self._sink = sink
        self._counters = counters
        self._books: dict[str, PositionBook] = {}

    def positions(self, strategy: str) -> PositionBook:
        book = self._books.get(strategy)
        if book is None:
            book = self._books[strategy] = PositionBook(strategy)
        return book

    def publish(self, fills: Iterable[Fill]) -> None:
        for fill in fills:
            self._counters.fills += 1
            position = self.positions(fill.strategy).apply_fill(fill)
            if self._sink is None:
                continue
            try:
                self._sink(fill, position)
            except Exception:
                self._counters.sink_errors += 1
                log.exception("paper_fill_sink_failed", fill_id=fill.fill_id, order_id=fill.order_id,
                              symbol=fill.symbol, strategy=fill.strategy)  # fmt: skip

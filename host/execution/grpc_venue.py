"""``GrpcVenue``: the live ``Venue``, a client of the order-execution service (``orderexecution.OrderExecution``).

One grpc.aio channel to ``GrpcConfig.order_execution_address``, opened on first use, used from one
event loop. Every attempt has the deadline ``config.timeout``. What a failed attempt means:

- UNAVAILABLE: the venue could not be reached. Retried up to ``max_retries`` times, waiting
  ``retry_backoff`` then doubling, always with the same ``signal_id`` (so even an attempt that did
  arrive cannot place a second order: the venue answers a known id with the existing order). Out
  of retries: ``VenueUnavailable``.
- DEADLINE_EXCEEDED: sent, no answer in time: ``VenueTimeout``, never retried here. AMBIGUOUS:
  the caller resolves it with ``status()`` and never resends under a new id.
- any other gRPC error, or a reply that cannot be read (an unknown status string): also
  ``VenueTimeout``, since the venue may have acted before failing.

Circuit breaker (``ConnectionBreaker``, pure, clock injected): ``breaker_failures`` consecutive
failed attempts (any error above) open it; while open every call fails at once with
``VenueUnavailable(retry_after=...)`` and nothing is sent. After ``breaker_reset`` seconds one
trial call goes through (half-open): a reply closes the breaker, a failure opens it for another
``breaker_reset``. A trial that never reports (its task was cancelled) is given up after
``breaker_reset`` and another is allowed. Any reply, whatever the order's status, is a success:
the breaker is about the connection, not about orders. (The supervisor's ``CircuitBreaker`` is a
restart policy with budgets and backoff steps; this is the plain connection breaker.)

The channel's reconnect backoff is capped near the retry schedule, so once the service is back a
retry or the half-open trial finds the channel reconnected instead of failing fast.

Coming back (``watch``, run beside the execution engine). The channel's connectivity is followed
for as long as the engine runs: when it is READY again after it was lost (the service restarted, or
the network came back), or READY while the breaker is open, one probe (``GetOrderStatus`` of an
empty id: any answer, an error status included, shows the service is up) goes out past the
breaker; its reply closes the breaker at once instead of after ``breaker_reset``, and ``on_back``
is called so the engine reconciles its working orders with a venue that may have forgotten them.

Fills: none. In live mode fills reach the host on NATS ``trading.fills`` (the feeds component),
into the same sink a ``PaperVenue`` is given; this venue only places, cancels and queries orders.
Replies map status strings leniently (``oms_wire.parse_status``); ``CancelOrderResponse`` carries
no quantities, so a cancel reply has 0 filled: ask ``status()`` for them. Cancels and status
queries name the order by both ids: ``order_id`` (the venue's, when known: what the b25 definition
has) and ``signal_id`` (an extension field after the definition's: the client order id, which
works before the venue's id is known). Timestamps on the wire are microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from engine_proto import order_execution_pb2 as pb
from engine_proto.order_execution_pb2_grpc import OrderExecutionStub
from host.clock import Clock
from host.config import GrpcConfig
from host.execution.oms_wire import WireError, intent_to_request, parse_status
from host.execution.venue import VenueReply, VenueTimeout, VenueUnavailable
from host.orders import OrderIntent, OrderStatus
from host.supervisor.policy import BreakerState

__all__ = ["ConnectionBreaker", "GrpcVenue", "GrpcVenueStats"]

log = structlog.get_logger("host.execution.grpc_venue")


class ConnectionBreaker:
    """Consecutive failures open it for ``reset_s``; then one trial call decides (pure, not thread-safe)."""

    def __init__(self, failures: int, reset_s: float, clock: Clock) -> None:
        if failures < 1 or reset_s <= 0:
            raise ValueError(f"ConnectionBreaker: needs failures >= 1 and reset_s > 0, got {failures}, {reset_s}")
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive = 0
        self._since = 0.0  # when it opened, or when the half-open trial started

    def allow(self) -> float | None:
        """None: make the call. Else the seconds until a trial may go (the call must not be made)."""
        if self.state is BreakerState.CLOSED:
            return None
        wait = self._since + self.reset_s - self._clock.monotonic()
        if wait > 0:
            return wait
        self.state, self._since = BreakerState.HALF_OPEN, self._clock.monotonic()
        return None

    def success(self) -> None:
        self.state, self.consecutive = BreakerState.CLOSED, 0

    def failure(self) -> bool:
        """Count a failed call; True when this failure opened the breaker."""
        self.consecutive += 1
        if self.state is BreakerState.HALF_OPEN or self.consecutive >= self.failures:
            opened = self.state is not BreakerState.OPEN
            self.state, self._since = BreakerState.OPEN, self._clock.monotonic()
            return opened
        return False


@dataclass(slots=True)
class GrpcVenueStats:
    attempts: int = 0  # RPCs sent (retries included)
    retries: int = 0
    unavailable: int = 0  # calls that ended in VenueUnavailable after their retries
    timeouts: int = 0  # calls that ended in VenueTimeout (ambiguous)
    breaker_rejections: int = 0  # calls refused at once because the breaker was open
    breaker_opened: int = 0


def _never_connected(error: Any) -> bool:
    """An UNAVAILABLE raised before any connection existed: the request cannot have left."""
    return "failed to connect" in (error.details() or "").lower()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class GrpcVenue:
    """A ``Venue`` over gRPC to the order-execution service (live mode).

    The connection (channel, retries, breaker, ``watch``) is shared with ``OrderServiceVenue``
    (``host.execution.order_service``), the venue for b25's ``order.OrderService``: a subclass
    names its stub (``stub_class``) and its probe (``_probe_call``)."""

    name = "grpc"
    stub_class: Any = OrderExecutionStub

    def __init__(self, config: GrpcConfig, clock: Clock) -> None:
        self.config = config
        self.breaker = ConnectionBreaker(config.breaker_failures, config.breaker_reset, clock)
        self.stats = GrpcVenueStats()
        self.connected: bool | None = None  # the channel's state as ``watch`` last saw it (None: not watched)
        self.last_error = ""  # the last failed attempt: "<operation>: <gRPC code>: <details>"
        self.last_success_at: float | None = None  # the last answered call, on ``clock``'s monotonic scale
        self._clock = clock
        self._channel: Any = None
        self._stub: Any = None

    # ------------------------------------------------------------------ Venue

    async def submit(self, intent: OrderIntent) -> VenueReply:
        cid = intent.client_order_id
        response = await self._call("submit", cid, "SubmitOrder", intent_to_request(intent))
        return self._order_reply("submit", cid, response)

    async def submit_batch(self, intents: Sequence[OrderIntent]) -> list[VenueReply]:
        """One SubmitBatchOrders; retried whole on UNAVAILABLE (every order keeps its signal_id)."""
        ids = [intent.client_order_id for intent in intents]
        label = ",".join(ids[:3]) + (",..." if len(ids) > 3 else "")
        request = pb.BatchOrderRequest(orders=[intent_to_request(intent) for intent in intents])
        response = await self._call("submit_batch", label, "SubmitBatchOrders", request)
        by_id = {r.signal_id: r for r in response.responses}
        missing = [cid for cid in ids if cid not in by_id]
        if missing:
            raise self._ambiguous("submit_batch", label, f"no response for signal ids {missing}")
        return [self._order_reply("submit_batch", cid, by_id[cid]) for cid in ids]

    async def cancel(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> VenueReply:
        """``cancelled`` is the reply; ``not_found`` means unknown; ``failed`` (the order was not working)
        is followed by ``status()``, which says what it is."""
        request = pb.CancelOrderRequest(order_id=venue_order_id, signal_id=client_order_id)
        response = await self._call("cancel", client_order_id, "CancelOrder", request)
        if response.status.strip().lower() == "failed":
            return await self.status(client_order_id, venue_order_id or response.order_id)
        status = self._parse("cancel", client_order_id, response.status, "CancelOrderResponse")
        return VenueReply(
            client_order_id, status, response.order_id, message=response.message, timestamp_ns=response.timestamp * 1000
        )

    async def status(self, client_order_id: str, venue_order_id: str = "", symbol: str = "") -> VenueReply:
        request = pb.OrderStatusRequest(order_id=venue_order_id, signal_id=client_order_id)
        response = await self._call("status", client_order_id, "GetOrderStatus", request)
        status = self._parse("status", client_order_id, response.status, "OrderStatusResponse")
        return VenueReply(
            client_order_id, status, response.order_id, response.filled_quantity, response.average_price,
            response.message, response.timestamp * 1000,
        )  # fmt: skip

    async def watch(self, on_back: Callable[[str], None]) -> None:
        """Until cancelled: call ``on_back`` each time the venue is reachable again (see the module doc)."""
        self._stubs()
        channel = self._channel
        ready = grpc.ChannelConnectivity.READY
        seen_ready = lost = False
        while True:
            state = channel.get_state(try_to_connect=True)
            if state is ready:
                self.connected = True
                if lost or self.breaker.state is not BreakerState.CLOSED:
                    if not await self._probe():
                        await asyncio.sleep(self.config.retry_backoff)  # a READY that does not answer yet
                        continue
                    log.info("venue_reachable", venue=self.name, reconnected=lost)
                    lost = False
                    on_back("venue_reconnected")
                seen_ready = True
            elif seen_ready and not lost and state is not grpc.ChannelConnectivity.CONNECTING:
                lost, self.connected = True, False
                log.warning("venue_connection_lost", venue=self.name, state=state.name)
            await channel.wait_for_state_change(state)

    async def _probe(self) -> bool:
        """One status call past the breaker; its reply closes the breaker (any reply: the service is up)."""
        self.stats.attempts += 1
        try:
            await self._probe_call(self._stubs())
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                log.info("venue_probe_failed", venue=self.name, code=error.code().name)
                return False
            # Refusing an empty id is an answer too: the service is up.
        if self.breaker.state is not BreakerState.CLOSED:
            log.warning("venue_breaker_closed", venue=self.name, after="successful probe")
        self.breaker.success()
        return True

    async def _probe_call(self, stub: Any) -> None:
        await stub.GetOrderStatus(pb.OrderStatusRequest(signal_id=""), timeout=self.config.timeout)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    # ------------------------------------------------------------------ calls

    def _stubs(self) -> Any:
        if self._stub is None:
            cfg = self.config
            max_backoff = max(cfg.retry_backoff, min(cfg.breaker_reset / 2, cfg.retry_backoff * 2**cfg.max_retries))
            options = [
                ("grpc.initial_reconnect_backoff_ms", _ms(cfg.retry_backoff)),
                ("grpc.max_reconnect_backoff_ms", _ms(max_backoff)),
                # An idle channel would go IDLE after 30 min, which ``watch`` cannot tell from a lost one.
                ("grpc.client_idle_timeout_ms", 2**31 - 1),
            ]
            self._channel = grpc.aio.insecure_channel(cfg.order_execution_address, options=options)
            self._stub = self.stub_class(self._channel)
        return self._stub

    async def _call(
        self, operation: str, cid: str, method: str, request: Any, *, missing_ok: bool = False,
        refusals: tuple[grpc.StatusCode, ...] = (), resend_safe: bool = True,
    ) -> Any:  # fmt: skip
        """One call with retries. With ``missing_ok`` a NOT_FOUND answer returns None; an error whose
        code is in ``refusals`` is returned (the service answered: it refused). Without
        ``resend_safe`` (a service that does not recognise a repeated request) an UNAVAILABLE that
        may have come after the request left is ambiguous (``VenueTimeout``), not retried; only a
        connection that was never made is retried."""
        delay = self.config.retry_backoff
        for attempt in range(self.config.max_retries + 1):
            self._admit(operation, cid)
            self.stats.attempts += 1
            try:
                response = await getattr(self._stubs(), method)(request, timeout=self.config.timeout)
            except grpc.aio.AioRpcError as error:
                if (missing_ok and error.code() == grpc.StatusCode.NOT_FOUND) or error.code() in refusals:
                    self.breaker.success()
                    self.last_success_at = self._clock.monotonic()
                    return None if error.code() == grpc.StatusCode.NOT_FOUND else error
                self.last_error = f"{operation}: {error.code().name}: {error.details()}"
                opened = self._failed(operation, cid)
                if error.code() != grpc.StatusCode.UNAVAILABLE or not (resend_safe or _never_connected(error)):
                    raise self._rpc_ambiguous(operation, cid, error) from error
                if attempt == self.config.max_retries or opened or self.breaker.state is BreakerState.OPEN:
                    self.stats.unavailable += 1
                    reason = f"unreachable after {attempt + 1} attempt(s): {error.details()}"
                    log.warning("venue_unavailable", venue=self.name, operation=operation, client_order_id=cid,
                                attempts=attempt + 1, details=error.details())  # fmt: skip
                    raise VenueUnavailable(self.name, operation, cid, reason) from error
                self.stats.retries += 1
                log.info("venue_call_retry", venue=self.name, operation=operation, client_order_id=cid,
                         attempt=attempt + 1, delay_s=delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay *= 2
                continue
            self.breaker.success()
            self.last_success_at = self._clock.monotonic()
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _admit(self, operation: str, cid: str) -> None:
        wait = self.breaker.allow()
        if wait is None:
            return
        self.stats.breaker_rejections += 1
        reason = f"circuit breaker open after {self.breaker.consecutive} consecutive failures; trial in {wait:.3g} s"
        raise VenueUnavailable(self.name, operation, cid, reason, retry_after=wait)

    def _failed(self, operation: str, cid: str) -> bool:
        opened = self.breaker.failure()
        if opened:
            self.stats.breaker_opened += 1
            log.warning("venue_breaker_open", venue=self.name, operation=operation, client_order_id=cid,
                        failures=self.breaker.consecutive, reset_s=self.breaker.reset_s)  # fmt: skip
        return opened

    def _rpc_ambiguous(self, operation: str, cid: str, error: Any) -> VenueTimeout:
        code = error.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            reason = f"no answer within {self.config.timeout:g} s: the order may exist, resolve with status()"
        else:
            reason = f"venue failed with {code.name} ({error.details()}): the order may exist, resolve with status()"
        return self._ambiguous(operation, cid, reason)

    def _ambiguous(self, operation: str, cid: str, reason: str) -> VenueTimeout:
        self.stats.timeouts += 1
        log.warning("venue_timeout", venue=self.name, operation=operation, client_order_id=cid, reason=reason)
        return VenueTimeout(self.name, operation, cid, reason)

    # ------------------------------------------------------------------ replies

    def _parse(self, operation: str, cid: str, text: str, message: str) -> OrderStatus | None:
        try:
            return parse_status(text, message)
        except WireError as error:
            raise self._ambiguous(operation, cid, f"unreadable reply: {error}") from error

    def _order_reply(self, operation: str, cid: str, response: pb.OrderResponse) -> VenueReply:
        status = self._parse(operation, cid, response.status, "OrderResponse")
        return VenueReply(
            cid, status, response.order_id, response.executed_quantity, response.executed_price,
            response.message, response.timestamp * 1000,
        )  # fmt: skip

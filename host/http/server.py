"""The engine's HTTP port: health, readiness, status, metrics, a status page and operator controls.

Model. One aiohttp application, served by an ``AppRunner`` on ``server.host``:``server.port``
(port 0: any free port; ``start`` returns the port bound). It runs on the engine's event loop and
knows the engine only through what it is given, all synchronous and cheap: ``status()`` (the
/status JSON), ``ready()`` (why the engine is not ready; empty: ready), ``controls`` (the operator
actions) and the Prometheus ``registry``. A handler awaits nothing of the engine, so a response
shows one moment of it, and a control has taken effect in the engine when its 200 is sent.

Access. Read-only endpoints (``GET``) are open. The controls (``POST``) need
``Authorization: Bearer <server.authToken>`` when a token is configured: missing or wrong is 401
and nothing happens; the token is compared in constant time. Checks run in the order
authentication, body (400), strategy (404), state (409), so a caller without the token learns
nothing about which strategies exist. Every control request, rejected ones included, is counted in
``http_control_requests_total{action,result}`` and logged as ``operator_control`` with the same
result label. Strategy names from URLs go into logs, never into metric labels.

Timeouts. ``server.readTimeout`` bounds reading a request body and how long an idle keep-alive
connection is kept open; ``server.writeTimeout`` bounds writing a response, after which the
connection is dropped. aiohttp has no timeout on a request whose headers trickle in; the port is
bound to localhost unless configured otherwise.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from host.config import ServerConfig
from host.errors import EngineError, ListenError
from host.http.controls import BadRequest, ControlRefused, Controls, KillSwitchRequest
from host.http.page import CONTENT_SECURITY_POLICY, STATUS_PAGE
from host.supervisor.supervisor import UnknownStrategy

__all__ = ["HttpServer", "HttpServerError"]

log = structlog.get_logger("host.http")

SERVICE = "strategy-engine"
_RESERVED = ("/", "/health", "/ready", "/status", "/kill-switch")
_MAX_BODY = 64 * 1024
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="strategy-engine"'}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Act = Callable[[web.Request], Awaitable[dict[str, Any]]]


class HttpServerError(EngineError):
    """The HTTP server cannot be set up or cannot listen."""


class _Rejected(Exception):
    """A control request answered with an error status; ``result`` is its metric label."""

    def __init__(self, status: int, result: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.result = result
        self.message = message


class HttpServer:
    """/health, /ready, /status, metrics, / and the operator controls on one port."""

    def __init__(
        self,
        config: ServerConfig,
        metrics_path: str | None,
        *,
        status: Callable[[], dict[str, Any]],
        ready: Callable[[], list[str]],
        controls: Controls,
        registry: CollectorRegistry,
        namespace: str = "strategy_engine",
    ) -> None:
        if metrics_path in _RESERVED or (metrics_path or "").startswith("/strategies/"):
            raise HttpServerError(f"metrics.path: {metrics_path!r} is taken by another endpoint; choose another path")
        self.config = config
        self.metrics_path = metrics_path
        self._status = status
        self._ready = ready
        self._controls = controls
        self._registry = registry
        self._requests = Counter(
            "http_control_requests_total", "Operator control requests over HTTP, by action and result",
            ["action", "result"], namespace=namespace, registry=registry,
        )  # fmt: skip
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> int:
        """Listen on ``server.host``:``server.port``; the port bound. ListenError if it cannot."""
        host, port = self.config.host, self.config.port
        runner = web.AppRunner(self._app(), access_log=None, keepalive_timeout=self.config.read_timeout,
                               shutdown_timeout=self.config.write_timeout)  # fmt: skip
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as err:
            await runner.cleanup()
            reason = os.strerror(err.errno).lower() if err.errno else str(err)
            raise ListenError("server.port", f"{host}:{port}", reason) from err
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("http_listening", host=host, port=self.port, auth=bool(self.config.auth_token))
        return self.port

    async def stop(self) -> None:
        """Stop listening and close every connection (bounded); a no-op when not started."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        async with asyncio.timeout(self.config.write_timeout + 5.0):
            await runner.cleanup()
        log.info("http_stopped", port=self.port)

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY, middlewares=[self._bounded])
        app.router.add_get("/", self._page)
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._readiness)
        app.router.add_get("/status", self._state)
        if self.metrics_path is not None:
            app.router.add_get(self.metrics_path, self._metrics)
        app.router.add_post("/strategies/{name}/{action:pause|resume|restart}", self._strategy_action)
        app.router.add_post("/kill-switch", self._kill_switch)
        return app

    @web.middleware
    async def _bounded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Common headers, and the response written within ``server.writeTimeout`` or the connection dropped."""
        response = await handler(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        try:
            async with asyncio.timeout(self.config.write_timeout):
                await response.prepare(request)
                await response.write_eof()
        except TimeoutError:
            log.warning("http_write_timeout", path=request.path, timeout_s=self.config.write_timeout)
            if request.transport is not None:
                request.transport.abort()
        return response

    # ---------------------------------------------------------------- read-only

    async def _health(self, request: web.Request) -> web.Response:
        return _json({"status": "healthy", "service": SERVICE})

    async def _readiness(self, request: web.Request) -> web.Response:
        reasons = self._ready()
        if reasons:
            return _json({"status": "not_ready", "reasons": reasons}, 503)
        return _json({"status": "ready"})

    async def _state(self, request: web.Request) -> web.Response:
        return _json(self._status())

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _page(self, request: web.Request) -> web.Response:
        headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
        return web.Response(body=STATUS_PAGE, content_type="text/html", charset="utf-8", headers=headers)

    # ---------------------------------------------------------------- controls

    async def _strategy_action(self, request: web.Request) -> web.Response:
        name, action = request.match_info["name"], request.match_info["action"]
        perform = {"pause": self._controls.pause, "resume": self._controls.resume, "restart": self._controls.restart}

        async def act(_: web.Request) -> dict[str, Any]:
            return {"strategy": name, "state": perform[action](name)}

        return await self._control(request, action, name, act)

    async def _kill_switch(self, request: web.Request) -> web.Response:
        async def act(request: web.Request) -> dict[str, Any]:
            order = KillSwitchRequest.parse(await self._body(request))
            risk = self._controls.kill_switch(order.action, order.strategy)
            return {"switch": order.action, "strategy": order.strategy, "risk": dict(risk)}

        return await self._control(request, "kill_switch", None, act)

    async def _control(self, request: web.Request, action: str, strategy: str | None, act: Act) -> web.Response:
        try:
            if not self._authorized(request):
                raise _Rejected(401, "unauthorized", "missing or wrong token: send Authorization: Bearer <token>")
            try:
                data = await act(request)
            except BadRequest as err:
                raise _Rejected(400, "bad_request", str(err)) from None
            except UnknownStrategy as err:
                raise _Rejected(404, "not_found", str(err)) from None
            except ControlRefused as err:
                raise _Rejected(409, "conflict", str(err)) from None
        except _Rejected as rejected:
            self._record(request, action, strategy, rejected.result, rejected.message)
            headers = _CHALLENGE if rejected.status == 401 else None
            return _json({"status": "error", "error": rejected.message}, rejected.status, headers)
        self._record(request, action, data.get("strategy", strategy), "ok", "")
        return _json({"status": "ok", "action": action, **data})

    def _authorized(self, request: web.Request) -> bool:
        token = self.config.auth_token
        if not token:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Both sides compared as bytes: compare_digest refuses non-ASCII str, and a token may not be ASCII.
        # aiohttp decodes header bytes that are not UTF-8 (a Latin-1 "ø") to surrogates; surrogateescape
        # gives those bytes back, so such a header is a wrong token (401), not an encoding error (500).
        given_bytes = given.strip().encode(errors="surrogateescape")
        return scheme.lower() == "bearer" and hmac.compare_digest(given_bytes, token.encode())

    async def _body(self, request: web.Request) -> bytes:
        try:
            async with asyncio.timeout(self.config.read_timeout):
                return await request.read()
        except TimeoutError:
            limit = self.config.read_timeout
            raise BadRequest("body", f"not received within server.readTimeout ({limit:g} s)") from None
        except web.HTTPRequestEntityTooLarge:
            raise BadRequest("body", f"larger than {_MAX_BODY} bytes") from None

    def _record(self, request: web.Request, action: str, strategy: str | None, result: str, reason: str) -> None:
        self._requests.labels(action=action, result=result).inc()
        if action == "kill_switch" and strategy is None and result == "ok":
            strategy = "all"  # the global switch
        fields = {"action": action, "strategy": (strategy or "")[:200], "result": result, "remote": request.remote}
        if result == "ok":
            log.info("operator_control", **fields)
        else:
            log.warning("operator_control", **fields, reason=reason[:300])


def _json(data: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)

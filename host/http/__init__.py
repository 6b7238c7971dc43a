"""The engine's HTTP port: /health, /ready, /status, metrics, the status page and operator controls."""

from __future__ import annotations

from host.http.controls import BadRequest, ControlRefused, Controls, KillSwitchAction, KillSwitchRequest
from host.http.engine import (
    EngineControls,
    build_status,
    engine_server,
    readiness,
    reconcile_status,
    venue_problem,
    venue_status,
)
from host.http.server import HttpServer, HttpServerError

__all__ = [
    "HttpServer",
    "HttpServerError",
    "Controls",
    "ControlRefused",
    "BadRequest",
    "KillSwitchAction",
    "KillSwitchRequest",
    "EngineControls",
    "build_status",
    "engine_server",
    "readiness",
    "reconcile_status",
    "venue_problem",
    "venue_status",
]

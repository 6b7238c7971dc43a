"""What the HTTP surface reads from one Engine and does to it: status, readiness, controls.

Model. Pure reads of the engine's in-memory state on the event loop (no I/O, no awaits):
``build_status`` assembles the /status document from the supervisor's per-strategy status, the
execution stats, the book and the risk manager; ``readiness`` lists why the engine is not ready.
``EngineControls`` maps the operator actions onto the supervisor and the execution engine.
``engine_server`` wires all of it into an ``HttpServer`` the way a live run does.

Connections. /status also says what the run is connected to, as it is at that moment: each broker
connection the run's source holds (``brokers``, the same callable /ready reads) and the venue
orders go to: the gRPC order-execution service with its connection breaker, failure counts, last
error and last answered call, the in-process paper venue, or none (observation). With it, the
execution engine's last reconciliation with the venue (``last_reconcile``; null until one ran) and
how the venue's position messages compare with the ledger (``venue_positions``: counts, and the
latest disagreement per strategy and symbol). ``controls.token_required`` tells the status page
whether to offer the controls, and whether to ask for the token.

Readiness. Ready means: every broker connection named in ``brokers`` is up, the gRPC venue's
connection is up and its breaker closed (open or half-open means its calls fail or are refused
without being sent: no order can go out), the supervisor has started its strategies, and every
strategy that is meant to run has a Ready runner (the rule of ``Supervisor.ready``). The venue's
connection is watched (``GrpcVenue.watch``: lost when its channel leaves READY, back once a probe
is answered, which also closes the breaker), so a venue that dies is noticed with no orders going
out; its breaker also opens on failed calls.

A strategy an operator paused, or whose breaker is held open (boot error, restart budget spent),
is *not* a reason: it is not meant to run until someone resumes it, and a readiness probe that
failed for it would take the whole engine, with its healthy strategies, out of service for a
per-strategy problem a restart cannot fix. Those show in /status (state and breaker) and in the
``breaker_state`` / ``strategy_state`` metrics, where alerts belong. A strategy starting, waiting
out a restart backoff, or stopped (shutdown) is a reason.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from host.assembly import Engine
from host.clock import Clocks
from host.execution.grpc_venue import GrpcVenue
from host.execution.position_check import PositionCheck
from host.execution.venue import Venue
from host.http.controls import ControlRefused, KillSwitchAction
from host.http.server import HttpServer
from host.supervisor.managed import StrategyState, StrategyStatus
from host.supervisor.policy import BreakerState
from host.supervisor.reload import HotReloader
from host.supervisor.sandbox import SandboxLayers
from host.supervisor.status import ReloadRecord
from host.supervisor.supervisor import Supervisor, UnknownStrategy

__all__ = [
    "EngineControls", "build_status", "engine_server", "quantity", "readiness", "reconcile_status", "venue_problem",
    "venue_status",
]  # fmt: skip

# What ExecutionEngine.last_reconcile records about the last reconciliation with the venue.
RECONCILE_FIELDS = ("at_ns", "trigger", "checked", "closed", "resent", "reconciled_fills", "unavailable")


def readiness(supervisor: Supervisor, brokers: Mapping[str, bool], venue: Venue | None = None) -> list[str]:
    """Why the engine is not ready, one short sentence each; empty when it is ready."""
    reasons = [f"{name} disconnected" for name, up in brokers.items() if not up]
    problem = venue_problem(venue)
    if problem is not None:
        reasons.append(problem)
    return reasons + supervisor.not_ready()


def venue_problem(venue: Venue | None) -> str | None:
    """Why orders cannot go out now (the gRPC venue's connection was lost, or its breaker is not
    closed), else None."""
    if not isinstance(venue, GrpcVenue):
        return None
    if venue.connected is False:
        return f"venue: connection lost ({venue.config.order_execution_address})"
    if venue.breaker.state is BreakerState.CLOSED:
        return None
    breaker = venue.breaker
    return (
        f"venue: circuit breaker {breaker.state.value} after {breaker.consecutive} consecutive failures "
        f"({venue.config.order_execution_address})"
    )


def build_status(
    engine: Engine,
    *,
    uptime_s: float,
    reloader: HotReloader | None = None,
    brokers: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """The /status document: engine-wide figures, connections, risk, reloads, and one record per strategy."""
    statuses = engine.supervisor.status()
    return {
        "mode": engine.execution.mode,
        "active_strategies": sum(1 for s in statuses if s.state is StrategyState.RUNNING),
        "signal_queue_size": len(engine.execution.queue),
        "uptime_s": round(uptime_s, 3),
        "brokers": [{"name": name, "up": bool(up)} for name, up in (brokers or {}).items()],
        "venue": venue_status(engine.venue, engine.execution.clock),
        "last_reconcile": reconcile_status(getattr(engine.execution, "last_reconcile", None)),
        "venue_positions": _venue_positions(engine.positions.check),
        "controls": {"token_required": bool(engine.config.server.auth_token)},
        "risk": engine.execution.risk.status().as_dict(),
        "reloads": _reloads(reloader),
        "strategies": [_strategy(engine, s) for s in statuses],
        "captures": [record.as_dict() for record in engine.supervisor.capture_records()],
        "capture_ring_bytes": engine.supervisor.capture_memory(),
    }


def venue_status(venue: Venue | None, clock: Clocks | None = None) -> dict[str, Any]:
    """Where orders go: ``{"kind": "none"}`` (observation), the venue's name, and for gRPC its connection.

    ``last_success`` is when the gRPC venue last answered a call (None: never), dated with ``clock``
    (the engine's, on whose monotonic scale the venue records it), and how long ago that was.
    """
    if venue is None:
        return {"kind": "none"}
    if not isinstance(venue, GrpcVenue):
        return {"kind": str(getattr(venue, "name", type(venue).__name__))}
    breaker = venue.breaker
    return {
        "kind": "grpc",
        "address": venue.config.order_execution_address,
        "up": breaker.state is BreakerState.CLOSED and venue.connected is not False,
        "connected": venue.connected,
        "breaker": {
            "state": breaker.state.value, "consecutive_failures": breaker.consecutive,
            "opens_after": breaker.failures, "reset_s": breaker.reset_s,
        },
        "last_error": venue.last_error[:300],
        **_last_success(venue.last_success_at, clock),
        "stats": dataclasses.asdict(venue.stats),
    }  # fmt: skip


def _last_success(at: float | None, clock: Clocks | None) -> dict[str, Any]:
    if at is None or clock is None:
        return {"last_success": None, "last_success_age_s": None}
    age_s = max(0.0, clock.monotonic() - at)
    return {"last_success": _iso((clock.now_ns() - age_s * 1e9) / 1e9), "last_success_age_s": round(age_s, 3)}


def reconcile_status(last: object) -> dict[str, Any] | None:
    """The last reconciliation with the venue (``ExecutionEngine.last_reconcile``), None before the first.

    Its fields as they are, and ``at`` (ISO 8601, UTC) from ``at_ns``.
    """
    if last is None:
        return None
    if dataclasses.is_dataclass(last) and not isinstance(last, type):
        fields = dataclasses.asdict(last)
    else:
        fields = {name: getattr(last, name, None) for name in RECONCILE_FIELDS}
    at_ns = fields.get("at_ns")
    fields["at"] = _iso(at_ns / 1e9) if isinstance(at_ns, int) else None
    return fields


def _venue_positions(check: PositionCheck) -> dict[str, Any]:
    """The venue's position messages against the ledger: counts, and each pair's latest disagreement."""
    return {
        "settle_s": check.settle_s, "checked": check.checked, "agreed": check.agreed, "disagreed": check.disagreed,
        "pending": check.pending, "mismatched_now": check.current,
        "disagreements": [
            {
                "strategy": p.strategy, "symbol": p.symbol, "ledger": quantity(p.latest.ledger),
                "venue": quantity(p.latest.venue), "at": _iso(p.latest.at_ns / 1e9), "current": p.current,
                "count": p.disagreements,
            }
            for p in check.pairs()
        ],
    }  # fmt: skip


def _reloads(reloader: HotReloader | None) -> dict[str, Any]:
    """Hot reload and config watching: on or off, and the last change of each package and of the file."""
    if reloader is None:
        return {"watching": False, "packages": {}, "config": None}
    config = reloader.last_config
    return {
        "watching": reloader.active,
        "packages": {
            name: {"kind": r.kind, "ok": r.ok, "error": r.error, "at": _iso(r.at), "duration_s": r.duration_s}
            for name, r in sorted(reloader.last.items())
        },
        "config": None if config is None else {
            "path": config.path, "ok": config.ok, "error": config.error, "at": _iso(config.at),
            "applied": list(config.applied), "restart_required": list(config.restart_required),
        },
    }  # fmt: skip


def quantity(value: float) -> float:
    """A position as an operator reads it: float noise of summed fills dropped (0.1 + 0.2 - 0.32 -> -0.02).

    Ten decimals keep every real lot size (venues quote to 1e-8 at the finest) and drop the
    last-bit noise of adding binary fractions; -0.0 becomes 0.0.
    """
    return round(value, 10) + 0.0


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _last_reload(record: ReloadRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"at": _iso(record.at), "result": "ok" if record.ok else "failed", "error": record.error}


def _strategy(engine: Engine, s: StrategyStatus) -> dict[str, Any]:
    stats, book, breaker = engine.execution.stats, engine.book, s.breaker
    return {
        "id": s.id,
        "plugin": s.plugin,
        "state": s.state.value,
        "pid": s.pid,
        "breaker": {
            "state": breaker.state.value,
            "restarts_in_budget": breaker.restarts_in_budget,
            "failures_by_kind": dict(breaker.failures_by_kind),
            "last_reason": breaker.last_reason,
            "paused_by_operator": breaker.paused_by_operator,
        },
        "restarts": s.restarts,
        "reloads": s.reloads,
        "reload_failures": s.reload_failures,
        "last_reload": _last_reload(s.last_reload),
        "last_error": s.last_error,
        "last_exit": s.last_exit,
        "events": s.events_sent,
        "batches": s.batches,
        "signals": s.signals,
        "orders": stats.orders_by_strategy.get(s.id, 0),
        "rejections": dict(stats.rejections.get(s.id, {})),  # its orders refused, by reason (risk rule or other)
        "cpu_share": None if s.cpu_share is None else round(s.cpu_share, 3),  # cores over the CPU window so far
        "fills": stats.fills_by_strategy.get(s.id, 0),
        "latency_p50_us": s.latency_p50_us,
        "latency_p99_us": s.latency_p99_us,
        "position": {symbol: quantity(q) for symbol, q in book.positions(s.id).items()},
        "realized_pnl": book.realized(s.id),
        "unrealized_pnl": book.unrealized(s.id),
        "sandbox": SandboxLayers.parse(s.sandbox).to_status(),
        "protocol_version": s.protocol_version,  # the strategy protocol its runner speaks ("" with no runner)
        "sdk_version": s.sdk_version,  # the SDK its runner runs it on
    }


class EngineControls:
    """The operator actions on one Engine (``host.http.controls.Controls``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pause(self, strategy: str) -> str:
        self.engine.supervisor.pause(strategy)
        return self._state(strategy).value

    def resume(self, strategy: str) -> str:
        self.engine.supervisor.resume(strategy)
        return self._state(strategy).value

    def restart(self, strategy: str) -> str:
        state = self._state(strategy)
        if state is not StrategyState.RUNNING:
            # Supervisor.restart ignores a strategy that is not serving; say so instead of a 200.
            raise ControlRefused(
                f"strategy {strategy!r} is {state.value}: only a running strategy can be restarted "
                "(resume a paused or open one)"
            )
        self.engine.supervisor.restart(strategy)
        return state.value

    def kill_switch(self, action: KillSwitchAction, strategy: str | None) -> Mapping[str, Any]:
        if strategy is not None and strategy not in {d.id for d in self.engine.supervisor.definitions()}:
            # The risk manager would keep a switch for any name; a misspelt one must not look engaged.
            raise UnknownStrategy(strategy)
        execution = self.engine.execution
        if action == "engage":
            execution.engage_kill_switch(strategy)
        else:
            execution.release_kill_switch(strategy)
        return execution.risk.status().as_dict()

    def _state(self, strategy: str) -> StrategyState:
        return self.engine.supervisor.strategy(strategy).state


def engine_server(
    engine: Engine,
    *,
    brokers: Callable[[], Mapping[str, bool]] = dict,
    reloader: HotReloader | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> HttpServer:
    """The HttpServer of ``engine`` per its config (``server``, ``metrics``); ``brokers`` for /ready."""
    config = engine.config
    started = clock()
    return HttpServer(
        config.server, config.metrics.path if config.metrics.enabled else None,
        status=lambda: build_status(engine, uptime_s=clock() - started, reloader=reloader, brokers=brokers()),
        ready=lambda: readiness(engine.supervisor, brokers(), engine.venue),
        controls=EngineControls(engine), registry=engine.metrics.registry, namespace=config.metrics.namespace,
    )  # fmt: skip

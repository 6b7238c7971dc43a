"""The HTTP port against a real engine: scripted runners, paper venue, aiohttp on a free port.

Each test builds an Engine as a live run does (tests/integration/http_stack.py) with three
strategies: ``alpha`` (buys on every 2nd BTCUSDT tick and after every fill, up to the position
cap), ``beta`` (ETHUSDT, never trades) and ``broken`` (its package fails to import, so its
breaker is held open), and talks to the server with aiohttp's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client import CONTENT_TYPE_LATEST
from structlog.testing import capture_logs

import sdk
from host.clock import SystemClock
from host.config import parse
from host.errors import ListenError
from host.execution.grpc_venue import GrpcVenue
from host.execution.matching import MatchingEngine
from host.execution.paper import PaperVenueServer
from host.execution.venue import VenueUnavailable
from host.http import HttpServer, readiness, venue_problem, venue_status
from host.live import live_app
from host.supervisor.managed import StrategyState
from host.supervisor.policy import BreakerState
from protocol import wire
from sdk.events import Position
from tests.helpers import NOON, RUNNERS, pid_alive, wait_until
from tests.integration.http_stack import MAX_POSITION, Reconciled, Stack, engine_config, running_stack
from tests.servers import NatsServer, RedisServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

TOKEN = "s3cret-tøken"  # not ASCII on purpose: compared as bytes
STRATEGY_KEYS = {
    "id", "plugin", "state", "breaker", "restarts", "last_error", "last_exit", "events", "batches", "signals", "orders",
    "fills", "latency_p50_us", "latency_p99_us", "position", "realized_pnl", "unrealized_pnl", "sandbox", "reloads",
    "reload_failures", "last_reload", "pid", "rejections", "cpu_share", "protocol_version", "sdk_version",
}  # fmt: skip
BREAKER_KEYS = {"state", "restarts_in_budget", "failures_by_kind", "last_reason", "paused_by_operator"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(engine_config(tmp_path), tmp_path) as running:
        yield running


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Stack]:
    """The same engine with ``server.authToken`` set."""
    async with running_stack(engine_config(tmp_path, token=TOKEN), tmp_path) as running:
        yield running


# One engine for the module's tests that only read, or whose requests are all refused (each of those
# checks that nothing changed): they need no fresh one. A test that changes anything has its own.
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    folder = tmp_path_factory.mktemp("shared")
    async with running_stack(engine_config(folder), folder) as running:
        yield await _fresh_connections(running)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_guarded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """``shared`` with ``server.authToken`` set."""
    folder = tmp_path_factory.mktemp("guarded")
    async with running_stack(engine_config(folder, token=TOKEN), folder) as running:
        yield await _fresh_connections(running)


async def _fresh_connections(stack: Stack) -> Stack:
    """A client that opens a connection per request: the server closes one idle past its readTimeout
    (2 s), and the tests of a shared engine are further apart than that."""
    await stack.client.close()
    stack.client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    return stack


def _metric(text: str, line_start: str) -> float:
    """The value of the one sample whose line starts with ``line_start``."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    assert len(values) == 1, (line_start, values)
    return values[0]


class TestHealth:
    @pytest.mark.asyncio(loop_scope="module")
    async def test_health_says_healthy(self, shared: Stack) -> None:
        """GET /health is 200 with the seed's body."""
        reply = await shared.get("/health")
        assert (reply.status, reply.data) == (200, {"status": "healthy", "service": "strategy-engine"})


class TestReady:
    async def test_not_ready_until_every_runner_is_ready(self, tmp_path: Path) -> None:
        """503 before the strategies start and while one is starting, naming it; 200 once all are Ready."""
        strategies = {"slow": {"plugin": "scripted", "strategy": "scripted", "parameters": {"mode": "slow_start:1500"}}}
        async with running_stack(engine_config(tmp_path, strategies=strategies), tmp_path, start=False) as stack:
            before = await stack.get("/ready")
            assert (before.status, before.data["reasons"]) == (503, ["strategies not started yet"])
            assert before.data["status"] == "not_ready"
            await stack.start()
            starting = await stack.get("/ready")
            assert (starting.status, starting.data["reasons"]) == (503, ["strategy 'slow' is starting"]), starting

            async def ready() -> bool:
                return (await stack.get("/ready")).status == 200

            await wait_until(ready, 15)
            assert (await stack.get("/ready")).data == {"status": "ready"}

    async def test_open_and_paused_strategies_leave_it_ready(self, stack: Stack) -> None:
        """A breaker held open (``broken``) and a strategy an operator paused are not readiness reasons."""
        assert stack.engine.supervisor.strategy("broken").state is StrategyState.OPEN
        assert (await stack.post("/strategies/alpha/pause")).status == 200
        reply = await stack.get("/ready")
        assert (reply.status, reply.data) == (200, {"status": "ready"})
        assert stack.engine.supervisor.ready()  # the supervisor's own rule agrees

    async def test_a_disconnected_broker_is_named(self, tmp_path: Path) -> None:
        """Each broker connection that is down is a reason of its own."""
        brokers = {"redis": False, "nats": True}
        async with running_stack(engine_config(tmp_path), tmp_path, brokers=lambda: brokers) as stack:
            reply = await stack.get("/ready")
            assert (reply.status, reply.data["reasons"]) == (503, ["redis disconnected"])
            brokers["redis"] = True
            assert (await stack.get("/ready")).status == 200

    async def test_an_unreachable_venue_is_named_until_a_call_is_answered(self, stack: Stack) -> None:
        """The gRPC venue's breaker open (or half-open) is a reason naming it; closed again by an answer, ready."""
        supervisor = stack.engine.supervisor
        server = PaperVenueServer(MatchingEngine(clock=SystemClock(), id_prefix="p-"), address="127.0.0.1:0")
        address = await server.start()
        settings = {"orderExecutionAddress": address, "timeout": "1s", "maxRetries": 0, "breakerFailures": 2,
                    "breakerReset": "0.2s", "retryBackoff": "0.05s"}  # fmt: skip
        venue = GrpcVenue(parse({"grpc": settings}, environ={}).grpc, SystemClock())
        try:
            assert not (await venue.status("x")).known
            assert readiness(supervisor, {}, venue) == [] and venue_problem(venue) is None
            await server.stop(0)
            for _ in range(2):
                with pytest.raises(VenueUnavailable):
                    await venue.status("x")
            reason = f"venue: circuit breaker open after 2 consecutive failures ({address})"
            assert readiness(supervisor, {"redis": False}, venue) == ["redis disconnected", reason]
            server = PaperVenueServer(MatchingEngine(clock=SystemClock(), id_prefix="p-"), address=address)
            await server.start()

            async def answered() -> bool:
                with contextlib.suppress(VenueUnavailable):
                    await venue.status("x")
                return venue.breaker.state is BreakerState.CLOSED

            await wait_until(answered, 15, interval=0.1)
            assert readiness(supervisor, {}, venue) == []
        finally:
            await venue.close()
            await server.stop(0)

    async def test_shutdown_is_not_ready(self, stack: Stack) -> None:
        """Once the supervisor has stopped the strategies, /ready names each stopped one."""
        await stack.stop()
        reply = await stack.get("/ready")
        assert reply.status == 503
        assert set(reply.data["reasons"]) >= {"strategy 'alpha' is stopped", "strategy 'beta' is stopped"}


class TestStatus:
    @pytest.mark.asyncio(loop_scope="module")
    async def test_status_has_the_documented_shape(self, shared: Stack) -> None:
        """Engine-wide fields, risk, and one record per strategy with every documented key."""
        reply = await shared.get("/status")
        assert reply.status == 200
        status = reply.data
        assert set(status) == {
            "mode", "active_strategies", "signal_queue_size", "uptime_s", "brokers", "venue", "last_reconcile",
            "venue_positions", "controls", "risk", "reloads", "strategies", "captures", "capture_ring_bytes",
        }  # fmt: skip
        assert status["captures"] == [] and status["capture_ring_bytes"] >= 0
        assert (status["brokers"], status["venue"]) == ([], {"kind": "paper"})  # hand-fed: no broker connection
        assert status["venue_positions"] == {
            "settle_s": 0.25, "checked": 0, "agreed": 0, "disagreed": 0, "pending": 0, "mismatched_now": 0,
            "disagreements": [],
        }  # fmt: skip
        assert status["controls"] == {"token_required": False}
        assert status["reloads"] == {"watching": False, "packages": {}, "config": None}
        assert (status["mode"], status["active_strategies"], status["signal_queue_size"]) == ("simulation", 2, 0)
        assert status["uptime_s"] > 0
        assert status["risk"]["kill_switch"] is False and status["risk"]["killed_strategies"] == []
        assert [s["id"] for s in status["strategies"]] == ["alpha", "beta", "broken"]
        for strategy in status["strategies"]:
            assert set(strategy) == STRATEGY_KEYS, strategy["id"]
            assert set(strategy["breaker"]) == BREAKER_KEYS
            assert set(strategy["sandbox"]) == {"applied", "skipped"}

    async def test_each_broker_connection_is_listed_up_or_down(self, tmp_path: Path) -> None:
        """/status lists every broker connection the run holds and follows it going down and up."""
        brokers = {"redis": True, "nats": False}
        async with running_stack(engine_config(tmp_path), tmp_path, brokers=lambda: brokers) as stack:
            listed = (await stack.get("/status")).data["brokers"]
            assert listed == [{"name": "redis", "up": True}, {"name": "nats", "up": False}]
            brokers["nats"] = True
            assert all(b["up"] for b in (await stack.get("/status")).data["brokers"])

    @pytest.mark.asyncio(loop_scope="module")
    async def test_a_token_shows_as_required(self, shared_guarded: Stack) -> None:
        """With server.authToken set, /status says the controls need a token (and never shows it)."""
        reply = await shared_guarded.get("/status")
        assert reply.data["controls"] == {"token_required": True}
        assert TOKEN not in reply.text

    async def test_grpc_venue_shows_its_address_breaker_and_failures(self) -> None:
        """The gRPC venue's entry: its address, its connection breaker (open after failures), the last error
        and its counts; never answered, so no last success."""
        address = f"127.0.0.1:{free_port()}"
        settings = {"orderExecutionAddress": address, "timeout": "1s", "maxRetries": 0, "breakerFailures": 1}
        venue = GrpcVenue(parse({"grpc": settings}, environ={}).grpc, SystemClock())
        try:
            assert venue_status(venue)["breaker"]["state"] == "closed"
            with pytest.raises(VenueUnavailable):
                await venue.status("x")
            shown = venue_status(venue, SystemClock())
        finally:
            await venue.close()
        assert (shown["kind"], shown["address"], shown["up"]) == ("grpc", address, False)
        assert shown["breaker"] == {"state": "open", "consecutive_failures": 1, "opens_after": 1, "reset_s": 30.0}
        assert shown["last_error"].startswith("status: UNAVAILABLE: "), shown["last_error"]
        assert (shown["last_success"], shown["last_success_age_s"]) == (None, None)
        assert (shown["stats"]["unavailable"], shown["stats"]["timeouts"]) == (1, 0)
        assert venue_status(None) == {"kind": "none"}

    async def test_grpc_venue_shows_when_it_last_answered(self) -> None:
        """After an answered call: up, breaker closed, and the time of that answer (UTC) and its age."""
        server = PaperVenueServer(MatchingEngine(clock=SystemClock(), id_prefix="p-"), address="127.0.0.1:0")
        venue = GrpcVenue(parse({"grpc": {"orderExecutionAddress": await server.start()}}, environ={}).grpc,
                          SystemClock())  # fmt: skip
        try:
            before = datetime.now(UTC)
            await venue.status("x")
            shown = venue_status(venue, SystemClock())
        finally:
            await venue.close()
            await server.stop(0)
        assert (shown["up"], shown["breaker"]["state"], shown["last_error"]) == (True, "closed", "")
        answered = datetime.fromisoformat(shown["last_success"])
        assert before - timedelta(seconds=1) <= answered <= datetime.now(UTC) + timedelta(seconds=1)
        assert 0 <= shown["last_success_age_s"] < 5

    async def test_last_reconcile_is_null_until_one_ran_then_its_fields(self, stack: Stack) -> None:
        """/status ``last_reconcile``: null while the execution engine has none, else its fields and ``at``."""
        execution = stack.engine.execution
        execution.last_reconcile = None  # type: ignore[attr-defined]  # what ExecutionEngine says before any
        assert (await stack.get("/status")).data["last_reconcile"] is None
        execution.last_reconcile = Reconciled(NOON, "venue_reconnected", 4, 1, 2, 3, 0)  # type: ignore[attr-defined]
        shown = (await stack.get("/status")).data["last_reconcile"]
        assert shown == {
            "at_ns": NOON, "trigger": "venue_reconnected", "checked": 4, "closed": 1, "resent": 2,
            "reconciled_fills": 3, "unavailable": 0, "at": "2024-03-01T12:00:00.000Z",
        }  # fmt: skip

    @pytest.mark.asyncio(loop_scope="module")
    async def test_running_strategy_reports_its_runner(self, shared: Stack) -> None:
        """A Ready strategy: running, breaker closed, the sandbox layers and versions its runner reported."""
        alpha = await shared.status_of("alpha")
        assert (alpha["plugin"], alpha["state"], alpha["breaker"]["state"]) == ("scripted", "running", "closed")
        assert (alpha["protocol_version"], alpha["sdk_version"]) == (wire.PROTOCOL_VERSION, sdk.__version__)
        assert alpha["restarts"] == 0 and alpha["last_error"] == ""
        sandbox = alpha["sandbox"]
        assert isinstance(sandbox["applied"], list) and isinstance(sandbox["skipped"], dict)
        assert sandbox["applied"] or sandbox["skipped"], "the runner's Hello listed no sandbox layer"

    @pytest.mark.asyncio(loop_scope="module")
    async def test_open_breaker_says_why(self, shared: Stack) -> None:
        """A strategy that could not load: state and breaker open, the boot failure counted and named."""
        broken = await shared.status_of("broken")
        assert (broken["state"], broken["breaker"]["state"]) == ("open", "open")
        assert broken["breaker"]["failures_by_kind"]["boot"] == 1
        assert broken["breaker"]["paused_by_operator"] is False
        assert "broken_import" in broken["breaker"]["last_reason"] or broken["last_error"], broken

    async def test_trading_shows_in_the_strategy_record(self, stack: Stack) -> None:
        """Signals, orders, fills, position and P&L follow the engine's own books (alpha trades up to its cap)."""
        stats = stack.engine.execution.stats
        await stack.feed_until(
            lambda: (
                stats.fills_by_strategy.get("alpha", 0) >= MAX_POSITION
                and stats.orders_by_strategy.get("alpha", 0) >= MAX_POSITION
            )
        )
        alpha = await stack.status_of("alpha")
        book = stack.engine.book
        assert alpha["events"] > 0 and alpha["signals"] >= MAX_POSITION  # any past the cap were rejected by risk
        assert 0 < alpha["batches"] <= alpha["events"]
        assert (alpha["orders"], alpha["fills"]) == (MAX_POSITION, MAX_POSITION)
        assert alpha["position"] == dict(book.positions("alpha")) == {"BTCUSDT": MAX_POSITION}
        assert alpha["realized_pnl"] == book.realized("alpha") == 0.0
        assert alpha["unrealized_pnl"] == pytest.approx(book.unrealized("alpha")) != 0.0
        assert alpha["latency_p50_us"] > 0 and alpha["latency_p99_us"] >= alpha["latency_p50_us"]
        beta = await stack.status_of("beta")
        assert (beta["orders"], beta["fills"], beta["position"]) == (0, 0, {})


class TestMetrics:
    @pytest.mark.asyncio(loop_scope="module")
    async def test_metrics_are_the_engine_registry(self, shared: Stack) -> None:
        """GET /metrics serves the engine's registry in the Prometheus text format."""
        reply = await shared.get("/metrics")
        assert reply.status == 200
        assert reply.headers["Content-Type"] == CONTENT_TYPE_LATEST
        assert _metric(reply.text, "strategy_engine_active_strategies ") == 2
        assert 'strategy_engine_breaker_state{strategy="broken"} 2.0' in reply.text
        assert "strategy_engine_signal_queue_size " in reply.text
        assert "# TYPE strategy_engine_current_positions gauge" in reply.text

    async def test_current_positions_follow_the_books(self, stack: Stack) -> None:
        """current_positions{strategy,symbol} is the signed position the books hold, read at scrape time."""
        stack.engine.book.position_changed(
            Position(symbol="BTCUSDT", quantity=-0.5, avg_entry_price=100.0, timestamp_ns=1, strategy="alpha"),
            date.today(),
        )
        text = (await stack.get("/metrics")).text
        assert 'strategy_engine_current_positions{strategy="alpha",symbol="BTCUSDT"} -0.5' in text

    @pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed on this machine")
    async def test_promtool_accepts_the_exposition(self, stack: Stack) -> None:
        """promtool finds no problem but the unit of the seed's *_microseconds names, kept for its dashboards."""
        await stack.post("/strategies/alpha/pause")  # the control counter has a sample
        text = (await stack.get("/metrics")).text
        assert "strategy_engine_http_control_requests_total" in text
        checker = await asyncio.create_subprocess_exec(
            "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(checker.communicate(text.encode()), 30)
        problems = [line for line in output.decode().splitlines() if line.strip()]
        seed_units = [p for p in problems if p.endswith('use base unit "seconds" instead of "microseconds"')]
        assert [p for p in problems if p not in seed_units] == []
        assert all(p.split()[0].split("_microseconds")[0].endswith(("_latency", "_time")) for p in seed_units)

    async def test_control_requests_are_counted_by_result(self, guarded: Stack) -> None:
        """Every control request is counted under its action and result, rejected ones included."""
        await guarded.post("/strategies/alpha/pause")
        await guarded.post("/strategies/alpha/pause", token="wrong")
        await guarded.post("/strategies/nope/pause", token=TOKEN)
        await guarded.post("/kill-switch", {"action": "explode"}, token=TOKEN)
        await guarded.post("/strategies/alpha/pause", token=TOKEN)
        text = (await guarded.get("/metrics")).text
        name = "strategy_engine_http_control_requests_total"
        assert _metric(text, f'{name}{{action="pause",result="unauthorized"}}') == 2
        assert _metric(text, f'{name}{{action="pause",result="not_found"}}') == 1
        assert _metric(text, f'{name}{{action="pause",result="ok"}}') == 1
        assert _metric(text, f'{name}{{action="kill_switch",result="bad_request"}}') == 1


class TestControls:
    async def test_pause_then_resume(self, stack: Stack) -> None:
        """Pause makes the strategy paused in /status; resume brings it back to running."""
        reply = await stack.post("/strategies/alpha/pause")
        assert (reply.status, reply.data) == (
            200, {"status": "ok", "action": "pause", "strategy": "alpha", "state": "paused"},
        )  # fmt: skip
        paused = await stack.status_of("alpha")
        assert paused["state"] == "paused" and paused["breaker"]["paused_by_operator"] is True
        reply = await stack.post("/strategies/alpha/resume")
        assert (reply.status, reply.data["state"]) == (200, "starting")  # the state it is in now, not "paused"

        async def running() -> bool:
            return (await stack.status_of("alpha"))["state"] == "running"

        await wait_until(running, 15)

    async def test_restart_replaces_the_runner(self, stack: Stack) -> None:
        """Restart of a running strategy ends its runner and starts a new one."""
        supervisor = stack.engine.supervisor
        old = supervisor.strategy("alpha").pid
        assert old is not None
        reply = await stack.post("/strategies/alpha/restart")
        assert (reply.status, reply.data["state"]) == (200, "running")
        await wait_until(lambda: supervisor.strategy("alpha").pid not in (None, old)
                         and supervisor.strategy("alpha").state is StrategyState.RUNNING, 15)  # fmt: skip
        await wait_until(lambda: not pid_alive(old), 5)

    @pytest.mark.asyncio(loop_scope="module")
    async def test_restart_of_a_strategy_that_is_not_running_is_refused(self, shared: Stack) -> None:
        """Restart of an open strategy is 409 saying to resume it; nothing changes."""
        reply = await shared.post("/strategies/broken/restart")
        assert reply.status == 409
        assert reply.data["error"].startswith("strategy 'broken' is open: only a running strategy can be restarted")
        assert shared.engine.supervisor.strategy("broken").state is StrategyState.OPEN

    @pytest.mark.parametrize("action", ["pause", "resume", "restart"])
    @pytest.mark.asyncio(loop_scope="module")
    async def test_unknown_strategy_is_404_naming_it(self, shared: Stack, action: str) -> None:
        """A strategy that is not configured is 404 and the answer names it."""
        reply = await shared.post(f"/strategies/ghost/{action}")
        assert (reply.status, reply.data) == (404, {"status": "error", "error": "no strategy 'ghost'"})

    @pytest.mark.asyncio(loop_scope="module")
    async def test_controls_are_post_only(self, shared: Stack) -> None:
        """A GET on a control is 405 and does nothing."""
        assert (await shared.get("/strategies/alpha/pause")).status == 405
        assert (await shared.status_of("alpha"))["state"] == "running"

    async def test_controls_are_logged(self, stack: Stack) -> None:
        """Each control request logs operator_control with action, strategy and result."""
        with capture_logs() as logs:
            await stack.post("/strategies/alpha/pause")
            await stack.post("/strategies/ghost/pause")
            await stack.post("/kill-switch", {"action": "engage"})
        events = [
            (e["action"], e["strategy"], e["result"], e["log_level"]) for e in logs if e["event"] == "operator_control"
        ]
        assert events == [
            ("pause", "alpha", "ok", "info"), ("pause", "ghost", "not_found", "warning"),
            ("kill_switch", "all", "ok", "info"),
        ]  # fmt: skip


class TestKillSwitch:
    async def test_global_engage_and_release_show_in_risk(self, stack: Stack) -> None:
        """Engage sets risk.kill_switch in /status (and in the answer); release clears it."""
        engaged = await stack.post("/kill-switch", {"action": "engage"})
        assert engaged.status == 200 and engaged.data["risk"]["kill_switch"] is True
        assert (await stack.get("/status")).data["risk"]["kill_switch"] is True
        assert stack.engine.execution.risk.is_killed("alpha")
        released = await stack.post("/kill-switch", {"action": "release"})
        assert released.status == 200
        assert (await stack.get("/status")).data["risk"]["kill_switch"] is False

    async def test_one_strategy_switch(self, stack: Stack) -> None:
        """A strategy's own switch lists it in risk.killed_strategies and stops only its orders."""
        reply = await stack.post("/kill-switch", {"action": "engage", "strategy": "alpha"})
        assert (reply.status, reply.data["strategy"]) == (200, "alpha")
        risk = (await stack.get("/status")).data["risk"]
        assert (risk["kill_switch"], risk["killed_strategies"]) == (False, ["alpha"])
        assert not stack.engine.execution.risk.is_killed("beta")
        await stack.post("/kill-switch", {"action": "release", "strategy": "alpha"})
        assert (await stack.get("/status")).data["risk"]["killed_strategies"] == []

    async def test_engaged_switch_stops_new_orders(self, stack: Stack) -> None:
        """With alpha's switch engaged its signals are rejected by risk, not sent."""
        await stack.post("/kill-switch", {"action": "engage", "strategy": "alpha"})
        execution = stack.engine.execution
        await stack.feed_until(lambda: sum(execution.stats.rejections.get("alpha", {}).values()) >= 2)
        assert (await stack.status_of("alpha"))["orders"] == 0

    @pytest.mark.asyncio(loop_scope="module")
    async def test_unknown_strategy_is_404(self, shared: Stack) -> None:
        """A kill switch for a strategy that is not configured is refused, not silently kept."""
        reply = await shared.post("/kill-switch", {"action": "engage", "strategy": "alhpa"})
        assert (reply.status, reply.data["error"]) == (404, "no strategy 'alhpa'")
        assert (await shared.get("/status")).data["risk"]["killed_strategies"] == []

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (b"", "body: expected a JSON object"),
            (b"{nope", "body: not valid JSON"),
            (b"[1, 2]", "body: expected a JSON object"),
            (b"{}", 'action: must be "engage" or "release", got nothing'),
            (b'{"action": "explode"}', 'action: must be "engage" or "release", got \'explode\''),
            (b'{"action": "release", "stratgy": "alpha"}', "stratgy: unknown field"),
            (b'{"action": "engage", "strategy": 7}', "strategy: must be a strategy id or absent"),
            (b'{"action": "engage", "strategy": ""}', "strategy: must be a strategy id or absent"),
        ],
    )
    @pytest.mark.asyncio(loop_scope="module")
    async def test_bad_body_is_400_naming_the_field(self, shared: Stack, raw: bytes, message: str) -> None:
        """A body that is not a valid kill-switch request is 400 and the answer names the field."""
        reply = await shared.post("/kill-switch", raw=raw, headers={"Content-Type": "application/json"})
        assert reply.status == 400, reply
        assert reply.data["error"].startswith(message), reply.data
        risk = (await shared.get("/status")).data["risk"]
        assert (risk["kill_switch"], risk["killed_strategies"]) == (False, [])

    @pytest.mark.asyncio(loop_scope="module")
    async def test_body_over_64_kib_is_400(self, shared: Stack) -> None:
        """A kill-switch body larger than 64 KiB is refused with 400 naming the body; nothing changes."""
        body = b" " * (64 * 1024 + 1)
        reply = await shared.post("/kill-switch", raw=body, headers={"Content-Type": "application/json"})
        assert (reply.status, reply.data["error"]) == (400, "body: larger than 65536 bytes")
        assert (await shared.get("/status")).data["risk"]["kill_switch"] is False


class TestAuth:
    async def test_no_token_configured_needs_none(self, stack: Stack) -> None:
        """With no server.authToken the controls work without an Authorization header."""
        assert (await stack.post("/strategies/beta/pause")).status == 200
        assert (await stack.status_of("beta"))["state"] == "paused"

    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x", f"Token {TOKEN}"],
        ids=["missing", "wrong", "basic-scheme", "empty", "longer", "other-scheme"],
    )
    @pytest.mark.asyncio(loop_scope="module")
    async def test_missing_or_wrong_token_is_401_and_nothing_happens(
        self, shared_guarded: Stack, authorization: str | None
    ) -> None:
        """Without the right bearer token a control is 401 with a Bearer challenge; the strategy keeps running."""
        headers = {} if authorization is None else {"Authorization": authorization}
        reply = await shared_guarded.request("POST", "/strategies/alpha/pause", headers=headers)
        assert reply.status == 401
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in reply.data["error"]
        assert (await shared_guarded.status_of("alpha"))["state"] == "running"

    async def test_right_token_pauses(self, guarded: Stack) -> None:
        """With the right token the control answers 200 and the strategy is paused."""
        reply = await guarded.post("/strategies/alpha/pause", token=TOKEN)
        assert (reply.status, reply.data["state"]) == (200, "paused")
        assert (await guarded.status_of("alpha"))["state"] == "paused"

    @pytest.mark.parametrize(
        ("encoding", "status"), [("utf-8", 200), ("latin-1", 401)], ids=["utf8-token", "latin1-bytes"]
    )
    async def test_token_bytes_are_compared_as_utf8(self, guarded: Stack, encoding: str, status: int) -> None:
        """The header's bytes are the token's UTF-8; other bytes (a Latin-1 "ø") are a wrong token, not a 500."""
        reader, writer = await asyncio.open_connection("127.0.0.1", guarded.server.port)
        try:
            authorization = b"Authorization: Bearer " + TOKEN.encode(encoding)
            writer.write(b"POST /strategies/alpha/pause HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                         + authorization + b"\r\nConnection: close\r\n\r\n")  # fmt: skip
            await writer.drain()
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n")
        finally:
            writer.close()
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
        assert (await guarded.status_of("alpha"))["state"] == ("paused" if status == 200 else "running")

    async def test_scheme_is_case_insensitive(self, guarded: Stack) -> None:
        """``bearer`` is the same scheme as ``Bearer`` (RFC 7235)."""
        reply = await guarded.request("POST", "/strategies/alpha/pause", headers={"Authorization": f"bearer {TOKEN}"})
        assert reply.status == 200

    @pytest.mark.asyncio(loop_scope="module")
    async def test_kill_switch_needs_the_token_before_its_body_is_read(self, shared_guarded: Stack) -> None:
        """Without the token even a bad kill-switch body is 401, and an unknown strategy is not revealed."""
        assert (await shared_guarded.post("/kill-switch", raw=b"{nope")).status == 401
        assert (await shared_guarded.post("/kill-switch", {"action": "engage", "strategy": "ghost"})).status == 401
        assert (await shared_guarded.post("/kill-switch", {"action": "engage"}, token="nope")).status == 401
        assert (await shared_guarded.get("/status")).data["risk"]["kill_switch"] is False

    @pytest.mark.asyncio(loop_scope="module")
    async def test_read_only_endpoints_stay_open(self, shared_guarded: Stack) -> None:
        """/, /health, /ready, /status and /metrics need no token."""
        for path in ("/", "/health", "/ready", "/status", "/metrics"):
            assert (await shared_guarded.get(path)).status == 200, path


class TestServer:
    @pytest.mark.asyncio(loop_scope="module")
    async def test_page_is_html_without_external_assets(self, shared: Stack) -> None:
        """GET / is an HTML page whose CSP allows nothing beyond its own inline code and this origin."""
        reply = await shared.get("/")
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
        assert "http://" not in reply.text and "https://" not in reply.text and "//cdn" not in reply.text
        csp = reply.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp

    @pytest.mark.asyncio(loop_scope="module")
    async def test_port_in_use_is_a_named_error(self, shared: Stack) -> None:
        """A second server on a taken port fails with the port in the message."""
        config = parse({"server": {"port": shared.server.port}}, environ={})
        other = HttpServer(config.server, None, status=dict, ready=list, controls=None,  # type: ignore[arg-type]
                           registry=shared.engine.metrics.registry, namespace="other")  # fmt: skip
        with pytest.raises(ListenError, match=rf"server.port: cannot listen on 127.0.0.1:{shared.server.port}"):
            await other.start()

    async def test_metrics_path_follows_config_and_can_be_off(self, tmp_path: Path) -> None:
        """metrics.path moves the endpoint; metrics.enabled false removes it."""
        config = engine_config(tmp_path)
        moved = parse({"server": {"port": 0}, "metrics": {"path": "/prom"}}, environ={})
        disabled = parse({"server": {"port": 0}, "metrics": {"enabled": False}}, environ={})
        async with running_stack(config, tmp_path, start=False) as stack:
            registry = stack.engine.metrics.registry
            for cfg, path, ns in ((moved, "/prom", "a"), (disabled, None, "b")):
                server = HttpServer(cfg.server, cfg.metrics.path if cfg.metrics.enabled else None, status=dict,
                                    ready=list, controls=None, registry=registry, namespace=ns)  # type: ignore[arg-type]  # fmt: skip
                port = await server.start()
                try:
                    async with aiohttp.ClientSession() as client:
                        async with client.get(f"http://127.0.0.1:{port}/prom") as prom:
                            assert prom.status == (200 if path else 404)
                        async with client.get(f"http://127.0.0.1:{port}/metrics") as default:
                            assert default.status == 404
                finally:
                    await server.stop()

    @pytest.mark.asyncio(loop_scope="module")
    async def test_slow_body_is_cut_off_at_the_read_timeout(self, shared: Stack) -> None:
        """A control whose body does not arrive within server.readTimeout (2 s here) is 400 naming the body."""
        reader, writer = await asyncio.open_connection("127.0.0.1", shared.server.port)
        try:
            writer.write(b'POST /kill-switch HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{"action"')
            await writer.drain()
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                answer = await reader.read(4096)
        finally:
            writer.close()
        assert head.startswith(b"HTTP/1.1 400"), head
        assert b"body: not received within server.readTimeout (2 s)" in answer
        assert (await shared.get("/status")).data["risk"]["kill_switch"] is False

    async def test_stop_closes_the_port(self, stack: Stack) -> None:
        """After stop() nothing listens on the port any more."""
        port = stack.server.port
        await stack.server.stop()
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{port}/health"):
                pass


class TestLiveApp:
    async def test_live_engine_serves_http_for_its_run(
        self, redis_server: RedisServer, nats_server: NatsServer, tmp_path: Path
    ) -> None:
        """A live App listens on server.port: /ready follows the brokers and runners; the port closes after."""
        config = parse(
            {
                "redis": {"port": redis_server.port, "marketDataChannels": ["market:btcusdt"]},
                "nats": {"url": nats_server.url},
                "server": {"port": 0},
                "engine": {"mode": "observation", "pluginsDir": str(RUNNERS), "hotReload": False,
                           "ledgerPath": str(tmp_path / "ledger.sqlite")},
                "strategies": {"solo": {"plugin": "scripted", "strategy": "scripted"}},
            },
            environ={},
        )  # fmt: skip
        live = live_app(config, root=tmp_path)
        stop = asyncio.Event()
        running = asyncio.create_task(live.run(stop.wait()))
        try:
            await wait_until(lambda: live.http.port is not None, 10)
            base = f"http://127.0.0.1:{live.http.port}"
            async with aiohttp.ClientSession() as client:

                async def ready() -> bool:
                    async with client.get(f"{base}/ready") as reply:
                        return reply.status == 200

                await wait_until(ready, 20)
                assert live.ready and readiness(live.engine.supervisor, {}) == []
                async with client.get(f"{base}/status") as reply:
                    status = await reply.json()
                assert status["mode"] == "observation" and status["venue"] == {"kind": "none"}
                assert status["brokers"] == [{"name": "redis", "up": True}, {"name": "nats", "up": True}]
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as client, client.get(f"{base}/health"):
                pass

"""The order-execution service failing under a live engine, the way an operator meets it.

Every test runs ``strategy-engine run --config config.yaml`` and ``strategy-engine paper-venue`` as
subprocesses against a real redis-server and nats-server on free ports (``operator_stack``), with
COUNTER strategies trading on every few ticks, then SIGKILLs the paper venue (its orders and
positions live in memory, so they are gone) and starts a new one on the same address. What the
engine made of it is read as an operator reads it: /ready, /status, /metrics, the engine's JSON log
(where each strategy logs the positions it was told) and the ledger file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

import pytest

from tests.integration.operator_stack import OperatorStack, live_stack, poll_until
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

PAIRS = (("edited", "BTCUSDT"), ("steady", "ETHUSDT"), ("steady", "SOLUSDT"))
DOWN_WITHIN_S = 15.0  # 5 failed calls at 40 orders/s, each retried once 0.2 s later: well under this
BACK_WITHIN_S = 20.0  # breakerReset 1 s, then a trial call once the channel has reconnected


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    for running in live_stack(tmp_path / "project", redis_server, nats_server):
        running.config["grpc"].update({"maxRetries": 1, "breakerReset": "1s"})
        yield running


def _ready(stack: OperatorStack) -> tuple[int, dict[str, Any]]:
    code, body = stack.get("/ready")
    return code, json.loads(body)


def _venue(stack: OperatorStack) -> dict[str, Any]:
    """/status's venue, checked to be whole and consistent every time it is read."""
    status = stack.status()
    assert status is not None
    venue: dict[str, Any] = status["venue"]
    assert (venue["kind"], venue["address"]) == ("grpc", stack.config["grpc"]["orderExecutionAddress"])
    assert venue["up"] is (venue["breaker"]["state"] == "closed" and venue["connected"] is not False), venue
    assert {"last_error", "last_success", "last_success_age_s", "stats"} <= set(venue)
    return venue


def _venue_reason(stack: OperatorStack) -> str | None:
    """The /ready reason naming the venue, once /ready is 503 for it; /status's venue is read each time."""
    _venue(stack)
    code, body = _ready(stack)
    reasons = [r for r in body.get("reasons", []) if r.startswith("venue: ")]
    return reasons[0] if code == 503 and reasons else None


def _ready_again(stack: OperatorStack) -> bool:
    venue = _venue(stack)
    return _ready(stack)[0] == 200 and venue["up"]


class TestVenueDown:
    def test_ready_follows_the_venue_down_and_back(self, stack: OperatorStack) -> None:
        """SIGKILL the venue: /ready 503 naming it within a bound; a new venue on its address: /ready 200 again.
        /status shows the venue throughout: breaker, failures, last error, last answer."""
        stack.start()
        poll_until(lambda: _ready(stack)[0] == 200, 20, "/ready 200 with the venue up")
        poll_until(lambda: _venue(stack)["last_success"], 10, "a first answered call on /status")

        killed = time.monotonic()
        stack.kill_venue()
        reason = poll_until(lambda: _venue_reason(stack), DOWN_WITHIN_S, f"/ready naming the venue ({stack.tail()})")
        down_after_s = time.monotonic() - killed
        address = stack.config["grpc"]["orderExecutionAddress"]
        # The watched connection notices first; the breaker opens as the orders going out fail.
        assert reason == f"venue: connection lost ({address})" or (
            reason.startswith("venue: circuit breaker ") and reason.endswith(f"({address})")
        ), reason
        venue = _venue(stack)
        assert venue["up"] is False and venue["connected"] is False
        breaker = poll_until(lambda: _venue(stack)["breaker"]["state"] in ("open", "half_open") and _venue(stack),
                             10, "the breaker opened by failed orders")  # fmt: skip
        assert breaker["breaker"]["consecutive_failures"] >= 5 and "UNAVAILABLE" in breaker["last_error"]
        assert breaker["stats"]["breaker_opened"] >= 1

        restarted = time.monotonic()
        stack.start_venue()
        poll_until(lambda: _ready_again(stack), BACK_WITHIN_S, f"/ready 200 after the restart ({stack.tail()})")
        back_after_s = time.monotonic() - restarted
        venue = _venue(stack)
        assert venue["breaker"] == {**venue["breaker"], "state": "closed", "consecutive_failures": 0}
        assert venue["last_success_age_s"] < back_after_s + 1.0
        print(f"\nvenue killed -> /ready 503: {down_after_s:.2f} s; restarted -> /ready 200: {back_after_s:.2f} s")


class TestPositionsAcrossAVenueRestart:
    def test_strategies_are_told_the_ledgers_positions_and_the_venues_restart_is_reported(
        self, stack: OperatorStack
    ) -> None:
        """Buy-only COUNTERs on three strategy/symbol pairs; the venue is killed and restarted from zero.

        Every position a strategy was told (its own log) is the ledger's after each of its fills,
        in order, across the restart; the restarted venue's positions, which start from zero,
        are reported as mismatches (metric, gauge, /status, log) and never reach a strategy.
        """
        strategies = stack.config["strategies"]
        strategies["edited"]["parameters"] = {"side": "buy", "every": 4, "log_positions": True}
        # steady sees ETHUSDT and SOLUSDT ticks in turn: an odd ``every`` trades both; 16 orders/s stays under
        # the strategy log's 20 records/s, so every position it is told is in the log.
        strategies["steady"].update(symbols=["ETHUSDT", "SOLUSDT"], parameters={"side": "buy", "every": 5,
                                                                                 "log_positions": True})  # fmt: skip
        stack.start()
        # The venue restarts from zero under positions of 10 fills or more: more than the ledger makes in the
        # check's window (about 3 at 10-16 fills a second), so every figure of the new venue is told apart.
        poll_until(lambda: all(_fills_of(stack, s, sym) >= 10 for s, sym in PAIRS), 20, "10 fills of every pair")
        status = stack.status()
        assert status is not None and status["venue_positions"]["disagreed"] == 0, status["venue_positions"]

        stack.kill_venue()
        poll_until(lambda: _venue_reason(stack), DOWN_WITHIN_S, "/ready naming the venue")
        restarted_ns = time.time_ns()
        stack.start_venue()
        poll_until(lambda: all(_fills_of(stack, s, sym, since_ns=restarted_ns) >= 3 for s, sym in PAIRS), 30,
                   f"3 fills of every pair from the new venue ({stack.tail()})")  # fmt: skip

        def reported() -> bool:
            return all(stack.metric("venue_position_mismatches_total", strategy=s, symbol=sym) > 0 for s, sym in PAIRS)

        poll_until(reported, 15, "a mismatch counted for every pair")
        poll_until(lambda: stack.metric("venue_positions_mismatched") == len(PAIRS), 10, "3 pairs in mismatch now")
        shown = stack.status()
        assert shown is not None
        disagreements = {(d["strategy"], d["symbol"]): d for d in shown["venue_positions"]["disagreements"]}
        assert set(disagreements) == set(PAIRS)
        for found in disagreements.values():
            assert found["current"] is True and found["count"] >= 1
            assert 0 < found["venue"] < found["ledger"], found  # the venue counts from zero again
        logged = stack.logs("venue_position_mismatch")
        assert {(r["strategy"], r["symbol"]) for r in logged} == set(PAIRS)
        assert all(r["level"] == "warning" and r["venue_quantity"] < r["ledger_quantity"] for r in logged)

        assert stack.stop() == 0  # every position told so far is in the log
        for strategy in ("edited", "steady"):
            for symbol in {sym for s, sym in PAIRS if s == strategy}:
                told = [r["fields"]["quantity"] for r in _told(stack, strategy) if r["fields"]["symbol"] == symbol]
                ledger = list(accumulate(q for sym, q, _ in stack.fills(strategy) if sym == symbol))
                assert told == pytest.approx(ledger, abs=1e-9), (strategy, symbol, told[-5:], ledger[-5:])
                assert len(told) >= 6
        assert not stack.logs("strategy_log_dropped"), "every position told was logged"


def _fills_of(stack: OperatorStack, strategy: str, symbol: str, since_ns: int = 0) -> int:
    return sum(1 for sym, _, at in stack.fills(strategy) if sym == symbol and at >= since_ns)


def _told(stack: OperatorStack, strategy: str) -> list[dict[str, Any]]:
    return [r for r in stack.logs("strategy_log") if r.get("message") == "position" and r["strategy"] == strategy]

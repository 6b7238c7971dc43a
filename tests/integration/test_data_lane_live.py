"""``strategy-engine run --config`` trades with batches on the data lane, the way an operator runs it.

The engine and the paper venue run as subprocesses against a real redis-server and nats-server
(``operator_stack``); ticks are published to Redis, and what happened is read from the log and the
ledger's orders journal. Both values of ``engine.dataLane`` are run.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.integration.operator_stack import OperatorStack, live_stack, poll_until, runner_pid_alive
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    yield from live_stack(tmp_path / "project", redis_server, nats_server)


class TestDataLaneLive:
    @pytest.mark.parametrize("lane", ["socket", "grpc"])
    def test_live_engine_trades_on_either_lane(self, stack: OperatorStack, lane: str) -> None:
        """Orders reach the ledger from both strategies; each runner came up on the configured lane."""
        stack.config["engine"]["dataLane"] = lane
        stack.start()
        for sid in ("edited", "steady"):
            poll_until(lambda sid=sid: len(stack.orders(sid)) >= 5, 15, f"five orders of {sid} in the ledger")
        ready = stack.logs("strategy_ready")
        assert {r["strategy"] for r in ready} == {"edited", "steady"}
        assert all(r["data_lane"] is (lane == "socket") for r in ready), ready
        assert stack.stop() == 0

    def test_killed_runner_is_replaced_and_trading_goes_on(self, stack: OperatorStack) -> None:
        """SIGKILL of a runner on the lane: its strategy restarts (on a new lane) and orders resume."""
        stack.config["engine"]["dataLane"] = "socket"
        stack.start()
        poll_until(lambda: stack.orders("edited"), 15, "a first order of edited")
        pid = stack.strategy("edited")["pid"]  # type: ignore[index]
        os.kill(pid, signal.SIGKILL)
        poll_until(lambda: not runner_pid_alive(pid), 5, "the killed runner gone")
        poll_until(
            lambda: (s := stack.strategy("edited")) is not None and s["state"] == "running" and s["pid"] != pid,
            15, "edited running on a new runner",
        )  # fmt: skip
        count = len(stack.orders("edited"))
        poll_until(lambda: len(stack.orders("edited")) > count + 3, 15, "orders of edited after the restart")
        assert stack.strategy("edited")["restarts"] == 1  # type: ignore[index]
        assert len([r for r in stack.logs("strategy_ready") if r["strategy"] == "edited" and r["data_lane"]]) == 2
        assert stack.stop() == 0

    @pytest.mark.parametrize("how", ["huge", "frames"])
    def test_a_runner_abusing_its_lane_is_ended_and_the_others_trade(self, stack: OperatorStack, how: str) -> None:
        """A strategy whose runner writes a 4 GB frame header, or unasked frames as fast as it can, on its lane:
        charged ``protocol`` (the metric and the log say so), its runner ended; the other strategies keep trading."""
        shutil.copytree(ROOT / "tests" / "runners" / "scripted", stack.plugins / "scripted")
        mode = {"mode": f"flood_lane:{how}"}
        stack.config["strategies"]["flooder"] = {
            "plugin": "scripted", "strategy": "scripted", "symbols": ["SOLUSDT"], "parameters": mode,
        }  # fmt: skip
        stack.start()
        poll_until(lambda: stack.metric("strategy_errors_total", strategy="flooder", kind="protocol") >= 2, 20,
                   f"two protocol charges of flooder ({stack.tail()})")  # fmt: skip
        failed = [r for r in stack.logs("strategy_failed") if r["strategy"] == "flooder"]
        assert failed and all(r["kind"] == "protocol" for r in failed), [(r["kind"], r["reason"]) for r in failed]
        assert how != "huge" or stack.logs("runner_lane_violation"), stack.tail()
        # Unasked frames: whichever bound is reached first, the lane's own or the session's stray budget.
        said = ("broke its data lane",) if how == "huge" else ("broke its data lane", "flooded its stream")
        assert all(any(text in r["reason"] for text in said) for r in failed), failed
        for sid in ("edited", "steady"):
            count = len(stack.orders(sid))
            poll_until(lambda sid=sid, count=count: len(stack.orders(sid)) > count + 3, 15, f"orders of {sid} go on")
            assert stack.strategy(sid)["restarts"] == 0  # type: ignore[index]
        assert stack.stop() == 0

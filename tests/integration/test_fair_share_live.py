"""Fair share end to end: ``strategy-engine run`` with a CPU hog and an order hog beside a normal strategy.

The engine and the paper venue run as subprocesses against a real redis-server and nats-server
(``operator_stack``); ticks of three symbols arrive at 40 a second each. Three COUNTER strategies:
``normal`` (an order every 10th BTCUSDT tick), ``orderhog`` (3 more orders on every BTCUSDT tick, at
priority 10) and ``cpuhog`` (two threads hashing without the GIL, on SOLUSDT). The operator sees, in
/status, /metrics, the log and the ledger: both hogs charged (``order_flood``, ``cpu``), restarted
and held open past the restart budget; the normal strategy's orders kept flowing at its rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.operator_stack import OperatorStack, poll_until, write_counter
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

EVERY = 10


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    stack = OperatorStack(tmp_path / "project", redis_server, nats_server)
    for name in ("normal", "orderhog", "cpuhog"):
        write_counter(stack.plugins, name, "v1")
    config = stack.config
    config["engine"].update(
        {"runnerCpuShare": 0.3, "runnerCpuWindow": "2s", "restartBudget": 2, "backoffInitial": "0.2s",
         "backoffMax": "0.5s", "hotReload": False, "watchConfig": False}
    )  # fmt: skip
    # 30/s and 1800/min over 3 strategies: a quota of 10/s and 600/min each.
    config["risk"].update({"maxOrdersPerSecond": 30, "maxOrdersPerMinute": 1800})
    config["strategies"] = {
        "normal": {"plugin": "normal", "strategy": "counter", "symbols": ["BTCUSDT"], "parameters": {"every": EVERY}},
        "orderhog": {"plugin": "orderhog", "strategy": "counter", "symbols": ["BTCUSDT"],
                     "parameters": {"every": 1000000, "hog": 3, "label": "hog"}},
        "cpuhog": {"plugin": "cpuhog", "strategy": "counter", "symbols": ["SOLUSDT"],
                   "parameters": {"every": 1000000, "spin_threads": 2}},
    }  # fmt: skip
    try:
        yield stack
    finally:
        stack.stop()


def _held_open(stack: OperatorStack, strategy_id: str) -> bool:
    status = stack.strategy(strategy_id)
    return status is not None and status["state"] == "open"


class TestFairShareLive:
    def test_hogs_are_charged_and_the_normal_strategy_keeps_its_rate(self, stack: OperatorStack) -> None:
        """Both hogs end held open, charged by kind in /status and /metrics; normal's orders match its ticks."""
        stack.start(ready=("normal",))
        poll_until(lambda: _held_open(stack, "orderhog"), 60, f"orderhog held open ({stack.tail()})", 0.2)
        poll_until(lambda: _held_open(stack, "cpuhog"), 90, f"cpuhog held open ({stack.tail()})", 0.2)
        status = stack.status()
        assert status is not None
        assert status["risk"]["strategy_quota"] == {"per_second": 10, "per_minute": 600}
        by_id = {s["id"]: s for s in status["strategies"]}
        cpuhog, orderhog, normal = by_id["cpuhog"], by_id["orderhog"], by_id["normal"]

        assert cpuhog["breaker"]["failures_by_kind"]["cpu"] == 3 and cpuhog["restarts"] == 2, cpuhog
        assert "restart budget exhausted" in cpuhog["breaker"]["last_reason"], cpuhog["breaker"]
        assert orderhog["breaker"]["failures_by_kind"]["order_flood"] == 3 and orderhog["restarts"] == 2, orderhog
        assert set(orderhog["rejections"]) == {"strategy_orders_per_second"}, orderhog["rejections"]
        assert normal["state"] == "running" and normal["restarts"] == 0 and normal["rejections"] == {}, normal
        assert all(count == 0 for count in normal["breaker"]["failures_by_kind"].values()), normal["breaker"]

        assert stack.metric("strategy_errors_total", strategy="cpuhog", kind="cpu") == 3
        assert stack.metric("strategy_errors_total", strategy="orderhog", kind="order_flood") == 3
        assert stack.metric("orders_rejected_total", reason="strategy_orders_per_second") >= 60
        shares = [record["share"] for record in stack.logs("strategy_cpu_exceeded")]
        assert len(shares) == 3 and all(share > 0.3 for share in shares), shares
        assert len(stack.logs("strategy_order_flood")) == 3

        # The normal strategy ordered on every EVERY-th tick it saw: compare the ledger to its ticks.
        orders = stack.orders("normal")
        seen = [order.seen for order in orders]
        assert seen == [EVERY * (i + 1) for i in range(len(seen))], seen[:20]
        # Each fill also reaches it as a fill and a position, and each order as at most two updates
        # (accepted, filled): what is left of its events are ticks (at least).
        ticks = normal["events"] - 2 * normal["fills"] - 2 * len(orders)
        assert len(orders) >= ticks // EVERY - 3, (len(orders), ticks, normal)
        hog_orders = len(stack.orders("orderhog"))
        print(
            f"\nnormal: {len(orders)} orders for ~{ticks} ticks (every {EVERY}); orderhog: {hog_orders} "
            f"orders, rejections {orderhog['rejections']}; cpuhog shares {shares}; normal cpu {normal['cpu_share']}"
        )

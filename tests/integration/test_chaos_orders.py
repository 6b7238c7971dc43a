"""Random SIGKILLs of the engine and the paper venue under a steady feed (10 with the orderexecution
venue, 6 with the order-service one, 5 with batches on the gRPC stream); the books hold after each.

See ``tests/integration/chaos.py`` for what is killed when and what is checked; ``bench/bench_chaos.py``
runs the same with more kills. The seed is fixed so a failure replays the same kill schedule (the
timing of processes still varies from run to run, which is the point of the test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.chaos import ChaosStack, run_chaos
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


@pytest.mark.parametrize(
    ("protocol", "kills", "lane"),
    [("orderexecution", 10, "socket"), ("order-service", 6, "socket"), ("orderexecution", 5, "grpc")],
)
def test_random_kills_of_engine_and_venue_lose_and_duplicate_nothing(
    tmp_path: Path, redis_server: RedisServer, jetstream_server: NatsServer, protocol: str, kills: int, lane: str
) -> None:
    """Against either venue protocol (order-service: fills come from the order-update stream), and with
    batches on the data lane (the default) or on the gRPC stream (``engine.dataLane: grpc``)."""
    seed = int(os.environ.get("CHAOS_SEED", "20261205"))
    stack = ChaosStack(tmp_path / "project", redis_server, jetstream_server, protocol=protocol)
    stack.config["engine"]["dataLane"] = lane
    try:
        report = run_chaos(stack, seed=seed, kills=kills, progress=print)
        ready = stack.logs("strategy_ready")
        assert ready and {line["data_lane"] for line in ready} == {lane == "socket"}  # every runner on that path
    finally:
        stack.stop()
    print(report.summary())
    assert not report.violations, "\n".join(report.violations[:20])
    assert report.checks == kills and report.fills > kills

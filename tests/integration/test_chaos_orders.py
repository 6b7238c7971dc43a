"""Twenty random SIGKILLs of the engine and the paper venue under a steady feed; the books hold after each.

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


def test_random_kills_of_engine_and_venue_lose_and_duplicate_nothing(
    tmp_path: Path, redis_server: RedisServer, jetstream_server: NatsServer
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "20261205"))
    stack = ChaosStack(tmp_path / "project", redis_server, jetstream_server)
    try:
        report = run_chaos(stack, seed=seed, kills=20, progress=print)
    finally:
        stack.stop()
    print(report.summary())
    assert not report.violations, "\n".join(report.violations[:20])
    assert report.checks == 20 and report.fills > 20

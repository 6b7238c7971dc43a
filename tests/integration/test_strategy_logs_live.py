"""Strategy logs in the engine's own log file, the way an operator reads them.

Runs ``strategy-engine run --config config.yaml`` (and the paper venue) as subprocesses against a
real redis-server and nats-server (``operator_stack``), with one COUNTER strategy that logs, and
reads the engine's JSON log file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.operator_stack import OperatorStack, live_stack, poll_until
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    yield from live_stack(tmp_path / "project", redis_server, nats_server)


class TestStrategyLogsLive:
    def test_strategy_records_are_json_lines_at_their_level_with_the_strategy_id(self, stack: OperatorStack) -> None:
        """self.log.info/warning show up as strategy_log lines with the id, level and key/values; debug is gated."""
        stack.config["strategies"]["edited"]["parameters"] = {"label": "a", "log_every": 5}
        stack.start()
        counted = poll_until(
            lambda: [r for r in stack.logs("strategy_log") if r.get("message") == "counted"], 30,
            f"a 'counted' strategy_log line ({stack.tail()})",
        )  # fmt: skip
        pid = stack.strategy("edited")["pid"]  # type: ignore[index]
        first = counted[0]
        assert (first["strategy"], first["level"], first["plugin"], first["runner_pid"]) == ("edited", "info",
                                                                                           "edited", pid)  # fmt: skip
        assert first["fields"]["seen"] == 5 and first["fields"]["symbol"] == "BTCUSDT"
        assert isinstance(first["fields"]["price"], float)
        started = [r for r in stack.logs("strategy_log") if r.get("message") == "counter_started"]
        assert [(r["strategy"], r["level"], r["fields"]) for r in started] == [
            ("edited", "warning", {"label": "a", "version": "v1"})
        ]
        assert {r["strategy"] for r in stack.logs("strategy_log")} == {"edited"}, "steady does not log"
        assert not [r for r in stack.logs("strategy_log") if r.get("message") == "counted_detail"], "level: info"
        assert not [r for r in stack.logs("runner_output") if "counted" in r.get("line", "")]

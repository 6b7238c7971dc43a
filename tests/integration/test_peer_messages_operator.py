"""Peers' messages as they are, end to end: ``strategy-engine run --config config.yaml`` as a subprocess.

The engine and the paper venue run as subprocesses against a real redis-server and nats-server
(``operator_stack``). The account monitor's fill is published on NATS for ``quiet``, a strategy that
never trades by itself, so its position is the peer's fill alone; a crossed tick is published to
Redis. What happened is read as an operator reads it: /status, /metrics, the ledger file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
import redis

from tests.integration.operator_stack import OperatorStack, poll_until, write_counter
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PEER_FILL = (
    b'{"id":"fill-test-001","symbol":"BTCUSDT","side":"BUY","quantity":"0.001","price":"50000.00",'
    b'"fee":"0.05","fee_currency":"USDT","timestamp":"2025-10-06T10:00:01Z","strategy":"quiet"}'
)
CROSSED = {
    "symbol": "BTCUSDT", "timestamp": "2025-10-06T10:00:02Z", "sequence": 1, "type": "tick",
    "bid_price": 50010.0, "ask_price": 50000.0, "bid_size": 1.0, "ask_size": 1.0,
}  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    stack = OperatorStack(tmp_path / "project", redis_server, nats_server)
    write_counter(stack.plugins, "quiet", "q1")
    stack.config["strategies"] = {
        "quiet": {"plugin": "quiet", "strategy": "counter", "symbols": ["BTCUSDT"], "parameters": {"every": 10**9}},
    }
    try:
        stack.start(ready=("quiet",))
        yield stack
    finally:
        stack.stop()


async def _publish(url: str, subject: str, payload: bytes) -> None:
    client = await nats.connect(url)
    try:
        await client.publish(subject, payload)
        await client.flush()
    finally:
        await client.close()


def _stored_fills(stack: OperatorStack) -> list[tuple[str, str, str, float, float]]:
    db = sqlite3.connect(f"file:{stack.ledger_path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT fill_id, order_id, strategy, quantity, price FROM fills ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    return [tuple(row) for row in rows]


class TestPeerMessagesLive:
    def test_account_monitor_fill_reaches_ledger_and_status(
        self, stack: OperatorStack, nats_server: NatsServer
    ) -> None:
        """The account monitor's fill is in the ledger's fills table once and in quiet's /status position."""
        for _ in range(2):  # a re-send is stored once
            asyncio.run(_publish(nats_server.url, "trading.fills", PEER_FILL))
        poll_until(lambda: _stored_fills(stack), 10, f"the peer fill in the ledger ({stack.tail()})")
        assert _stored_fills(stack) == [("fill-test-001", "", "quiet", 0.001, 50000.0)]

        def position() -> dict[str, float] | None:
            quiet = stack.strategy("quiet")
            return quiet["position"] if quiet and quiet["position"] else None

        assert poll_until(position, 10, "quiet's position in /status") == {"BTCUSDT": pytest.approx(0.001)}
        assert stack.metric("fills_received_total", strategy="quiet") == 1
        poll_until(lambda: stack.metric("fills_duplicate_total") == 1, 10, "the re-send counted as a duplicate")
        assert _stored_fills(stack) == [("fill-test-001", "", "quiet", 0.001, 50000.0)]

    def test_crossed_tick_is_counted_and_the_engine_keeps_serving(self, stack: OperatorStack) -> None:
        """bid > ask on Redis is counted in market_data_errors_total{field="bid_price"}; /status still answers."""
        client = redis.Redis(port=stack.redis_server.port)
        try:
            client.publish("market:btcusdt", json.dumps(CROSSED))
        finally:
            client.close()
        poll_until(
            lambda: stack.metric("market_data_errors_total", channel="market:btcusdt", field="bid_price") == 1,
            10, f"the crossed tick counted ({stack.tail()})",
        )  # fmt: skip
        received = stack.metric("market_data_received_total", symbol="BTCUSDT", type="tick")
        poll_until(
            lambda: stack.metric("market_data_received_total", symbol="BTCUSDT", type="tick") > received,
            10, "ticks after the crossed one still received",
        )  # fmt: skip
        assert stack.get("/health")[0] == 200
        quiet = stack.strategy("quiet")
        assert quiet is not None and quiet["state"] == "running"
        [logged] = [e for e in stack.logs("market_data_rejected") if e.get("field") == "bid_price"]
        assert "bid_price 50010.0 > ask_price 50000.0" in logged["reason"]

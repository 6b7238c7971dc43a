"""``strategy-engine run --config`` reads the seed's market data through msgspec's shortcut as it read it before.

The engine runs as a subprocess against a real redis-server and nats-server (``operator_stack``).
Besides the stack's own ticks, peers' messages are published on the same channel: numbers as
strings and upper-case types (accepted: counted by type), and messages the codec refuses (a crossed
tick, a misspelt field, a tick without its ask, not JSON). What the engine counts and logs for
them is what orjson + ``decode_market`` says of the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from sdk._codec import decode_market
from sdk.errors import ValidationError
from tests.integration.operator_stack import OperatorStack, live_stack, poll_until
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHANNEL = "market:btcusdt"
STAMP = "2026-12-05T17:00:00.123456789Z"
ACCEPTED = [
    {"symbol": "BTCUSDT", "timestamp": STAMP, "type": "TRADE", "last_price": "60000.5", "volume": "0.25",
     "side": "SELL", "sequence": "1"},
    {"symbol": "BTCUSDT", "timestamp": STAMP, "type": "Candle", "open": "60000", "high": 60010, "low": "59990",
     "close": 60005.0, "volume": 0},
    {"symbol": "BTCUSDT", "timestamp": STAMP, "type": "book", "bids": [["60000", "1"]], "asks": [[60001, 2]],
     "last_price": 0},
]  # fmt: skip
REFUSED = [
    ("bid_price", b'{"symbol":"BTCUSDT","timestamp":"%s","bid_price":60001,"ask_price":"60000"}' % STAMP.encode()),
    ("quantiy", b'{"symbol":"BTCUSDT","timestamp":"%s","bid_price":1,"ask_price":2,"quantiy":1}' % STAMP.encode()),
    ("ask_price", b'{"symbol":"BTCUSDT","timestamp":"%s","bid_price":1}' % STAMP.encode()),
    ("json", b'{"symbol":"BTCUSDT",'),
]


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    yield from live_stack(tmp_path / "project", redis_server, nats_server)


def _reason(payload: bytes) -> str:
    """What the existing path says of a refused message, as the feed logs it."""
    try:
        decode_market(orjson.loads(payload))
    except ValidationError as err:
        return str(err)
    except orjson.JSONDecodeError as err:
        return f"not JSON: {err}"
    raise AssertionError(f"accepted: {payload!r}")


class TestFastDecodeLive:
    def test_peer_messages_are_read_and_refused_as_before(self, stack: OperatorStack) -> None:
        """Peers' trade, candle and book (strings, any case, Go zeros) are counted by type; each refused message
        is counted under its field and logged with the existing decoder's words."""
        stack.start()
        client = redis.Redis(port=stack.redis_server.port)
        try:
            for message in ACCEPTED:
                client.publish(CHANNEL, json.dumps(message))
            for _, payload in REFUSED:
                client.publish(CHANNEL, payload)
        finally:
            client.close()
        for kind in ("trade", "candle", "book"):
            poll_until(lambda kind=kind: stack.metric("market_data_received_total", symbol="BTCUSDT", type=kind) == 1,
                       10, f"one {kind} counted")  # fmt: skip
        for field, _ in REFUSED:
            poll_until(lambda field=field: stack.metric("market_data_errors_total", channel=CHANNEL, field=field) == 1,
                       10, f"one message refused under {field}")  # fmt: skip
        logged = {r["field"]: r["reason"] for r in stack.logs("market_data_rejected") if r["channel"] == CHANNEL}
        assert logged == {field: _reason(payload) for field, payload in REFUSED}
        assert stack.stop() == 0

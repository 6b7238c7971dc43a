"""Scalping's time limit, live on a quiet market: its hold timer closes the position with no market data.

``strategy-engine run`` and ``strategy-engine paper-venue`` as subprocesses against a real
redis-server and nats-server, the built-in ``scalping`` package (copied from ``plugins/``). The
test publishes a few ticks, then one book with three times more size bid than offered: scalping
buys at market and the paper venue fills it. Then nothing more is published. The exit (a sell
whose metadata says ``max_hold_time``) must reach the ledger ``max_hold_time_seconds`` after the
entry fill, fired by the strategy's ``hold:BTCUSDT`` timer on the engine's clock.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from tests.helpers import ROOT
from tests.integration.operator_stack import OperatorStack, poll_until
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SYMBOL = "BTCUSDT"
HOLD_S = 1.0  # short: the test is about the timer firing on a quiet market, not the default hold


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"


def _publish(client: redis.Redis, message: dict[str, Any]) -> None:
    client.publish(f"market:{SYMBOL.lower()}", json.dumps({"symbol": SYMBOL, "timestamp": _stamp(), **message}))


def _orders(ledger: Path) -> list[tuple[str, int, dict[str, str]]]:
    """(side, created_ns, metadata) of the strategy's orders, oldest first."""
    if not ledger.exists():
        return []
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT side, created_ns, metadata FROM orders WHERE strategy = 'scalp' "
                          "ORDER BY created_ns").fetchall()  # fmt: skip
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    return [(side, created, json.loads(meta)) for side, created, meta in rows]


def _entry_fill_ns(ledger: Path) -> int | None:
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT timestamp_ns FROM fills WHERE strategy = 'scalp' ORDER BY rowid LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()
    return int(rows[0][0]) if rows else None


def test_hold_time_exit_goes_out_on_a_quiet_market(
    tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer
) -> None:
    stack = OperatorStack(tmp_path / "project", redis_server, nats_server)
    stack.publisher = SimpleNamespace(stop=lambda: None)  # type: ignore[assignment]  # the test publishes
    shutil.copytree(ROOT / "plugins" / "scalping", stack.plugins / "scalping",
                    ignore=shutil.ignore_patterns("tests", "__pycache__"))  # fmt: skip
    stack.config["redis"]["marketDataChannels"] = [f"market:{SYMBOL.lower()}"]
    stack.config["redis"]["staleAfter"] = "60s"  # the exit is sent seconds into the silence
    stack.config["risk"]["referenceStaleAfter"] = "60s"
    stack.config["strategies"] = {
        "scalp": {"plugin": "scalping", "strategy": "scalping", "symbols": [SYMBOL],
                  "parameters": {"max_hold_time_seconds": HOLD_S, "order_size": 0.01, "max_position": 0.1,
                                 "profit_target": 0.05, "stop_loss": 0.05}},
    }  # fmt: skip
    client = redis.Redis(port=redis_server.port)
    try:
        stack.write_config()
        stack.start_venue()
        stack.start_engine(ready=("scalp",))
        poll_until(lambda: "redis_connected" in (stack.folder / "venue.log").read_text(), 15, "the venue reading")
        for sequence in range(1, 6):  # prices for the venue and risk to go by
            _publish(client, {"sequence": sequence, "type": "tick", "bid_price": 99.99, "ask_price": 100.01,
                              "bid_size": 3.0, "ask_size": 1.0})  # fmt: skip
            time.sleep(0.05)
        _publish(client, {"sequence": 6, "type": "book", "bids": [[99.99, 3.0]], "asks": [[100.01, 1.0]]})
        last_data = time.time_ns()
        poll_until(lambda: _entry_fill_ns(stack.ledger_path) is not None, 20, f"the entry filled ({stack.tail()})")
        entry_ns = _entry_fill_ns(stack.ledger_path)
        assert entry_ns is not None
        exits = poll_until(lambda: [o for o in _orders(stack.ledger_path) if o[0] == "sell"], 20,
                           f"the exit order ({stack.tail()})")  # fmt: skip
        _, created_ns, metadata = exits[0]
        assert metadata["reason"] == "max_hold_time"
        assert created_ns - entry_ns >= HOLD_S * 1e9  # at the deadline, not before
        assert created_ns - entry_ns < (HOLD_S + 3) * 1e9
        assert created_ns > last_data  # with no market data since the book
        [(entry_side, _, entry_meta), _] = _orders(stack.ledger_path)
        assert (entry_side, entry_meta["reason"]) == ("buy", "imbalance")
    finally:
        client.close()
        stack.stop()

"""Orders through venue and engine faults, as an operator meets them: processes killed and restarted.

``FaultStack`` is an ``OperatorStack`` (``strategy-engine run`` and ``strategy-engine paper-venue``
as subprocesses against a real redis-server and nats-server on free ports) whose market is under the
test's control, and whose engine and venue can each be SIGKILLed and started again on the same
address, ledger and config.

The market is one symbol, BTCUSDT, published by ``Quotes`` at 20 ticks a second with the bid, ask
and displayed sizes the test sets; ``jump(n)`` makes the next tick's sequence ``n``. The test plugin
``SCRIPTED`` acts on sequences: its ``actions`` parameter is ``seq:what[:side:quantity:price:slot]``
entries separated by ``;`` (what = limit, market or cancel), each done on the tick with that
sequence, so a test places an order at a moment of its choosing (a sequence is published once, so
an action is not repeated by a restarted runner). It logs every fill, position and order update it
is told about (``told_fill``, ``told_position``, ``told_order``) so what the strategy heard can be
compared with the ledger.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.integration.operator_stack import OperatorStack, poll_until
from tests.servers import NatsServer, RedisServer

__all__ = ["SCRIPTED", "FaultStack", "Quotes"]

SYMBOL = "BTCUSDT"

SCRIPTED = '''"""Test plugin: orders placed and cancelled on the ticks whose sequence the config names."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import Cancel, Fill, Position, Signal, Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class ScriptedConfig(StrategyConfig):
    actions: str = ""  # "seq:limit|market:side:quantity:price:slot" or "seq:cancel:slot", ";"-separated


class Scripted(Strategy[ScriptedConfig]):
    name = "scripted"
    Config = ScriptedConfig

    def on_tick(self, tick: Tick) -> None:
        for action in filter(None, self.config.actions.split(";")):
            seq, what, *rest = action.split(":")
            if int(seq) != tick.sequence:
                continue
            if what == "cancel":
                self.cancel(tick.symbol, rest[0])
                continue
            side, quantity, price, slot = rest
            self.emit(Signal(symbol=tick.symbol, side=side, quantity=float(quantity), order_type=what,
                             price=float(price) if what == "limit" else None, slot=slot,
                             metadata={"seq": seq}))

    def on_fill(self, fill: Fill) -> None:
        self.log.info("told_fill", fill_id=fill.fill_id, quantity=fill.quantity, price=fill.price,
                      reconciled=getattr(fill, "reconciled", False))

    def on_position(self, position: Position) -> None:
        self.log.info("told_position", symbol=position.symbol, quantity=position.quantity)

    def on_order(self, update: object) -> None:
        self.log.info("told_order", status=str(getattr(update, "status", "")),
                      client_order_id=getattr(update, "client_order_id", ""),
                      filled=getattr(update, "filled_quantity", 0.0), reason=getattr(update, "reason", ""))


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[ScriptedConfig]]]:
    return [Scripted]
'''


class Quotes:
    """A thread publishing BTCUSDT ticks to ``market:btcusdt`` at ``rate`` a second, as the test sets them."""

    def __init__(self, port: int, rate: float = 20.0) -> None:
        self.port = port
        self.rate = rate
        self.bid, self.ask, self.bid_size, self.ask_size = 99.9, 100.0, 5.0, 5.0
        self.sequence = 0
        self.shape: Callable[[int], tuple[float, float]] | None = None  # sequence -> (bid, ask), if set
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quotes", daemon=True)

    def set(self, *, bid: float | None = None, ask: float | None = None, bid_size: float | None = None,
            ask_size: float | None = None) -> None:  # fmt: skip
        with self._lock:
            self.bid = self.bid if bid is None else bid
            self.ask = self.ask if ask is None else ask
            self.bid_size = self.bid_size if bid_size is None else bid_size
            self.ask_size = self.ask_size if ask_size is None else ask_size

    def jump(self, sequence: int) -> None:
        """The next tick published has this sequence (the ones after it count on from there)."""
        with self._lock:
            self.sequence = sequence - 1

    def once(self, sequence: int, **fields: float) -> None:
        """Publish one tick with this sequence and these prices and sizes (bid, ask, bid_size, ask_size),
        then pause until ``resume`` (so the venue matches what arrives next against that tick alone)."""
        client = redis.Redis(port=self.port)
        try:
            with self._lock:
                self.sequence = sequence
                body = self._tick() | {
                    {"bid": "bid_price", "ask": "ask_price"}.get(key, key): value for key, value in fields.items()
                }
                self._paused.set()
                client.publish(f"market:{SYMBOL.lower()}", json.dumps(body))
        finally:
            client.close()

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        client = redis.Redis(port=self.port)
        try:
            while not self._stop.wait(1.0 / self.rate):
                with self._lock:  # published under the lock: ``once``'s tick is never overtaken
                    if self._paused.is_set():
                        continue
                    self.sequence += 1
                    client.publish(f"market:{SYMBOL.lower()}", json.dumps(self._tick()))
        except redis.RedisError:
            return
        finally:
            client.close()

    def _tick(self) -> dict[str, Any]:
        if self.shape is not None:
            self.bid, self.ask = self.shape(self.sequence)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
        return {
            "symbol": SYMBOL, "timestamp": stamp, "sequence": self.sequence, "type": "tick",
            "bid_price": self.bid, "ask_price": self.ask, "bid_size": self.bid_size, "ask_size": self.ask_size,
            "last_price": round((self.bid + self.ask) / 2, 4),
        }  # fmt: skip


class FaultStack(OperatorStack):
    """An OperatorStack of one ``SCRIPTED`` strategy (id ``script``) on a market the test controls."""

    def __init__(self, folder: Path, redis_server: RedisServer, nats_server: NatsServer, *, actions: str,
                 jetstream: bool = False, protocol: str = "orderexecution") -> None:  # fmt: skip
        super().__init__(folder, redis_server, nats_server)
        self.protocol = protocol  # grpc.protocol: the engine's venue client and the paper venue's service
        package = self.plugins / "scripted"
        package.mkdir()
        (package / "__init__.py").write_text(SCRIPTED)
        self.quotes = Quotes(redis_server.port)
        self.publisher = self.quotes  # type: ignore[assignment]  # what OperatorStack.stop stops
        self.config["redis"]["marketDataChannels"] = [f"market:{SYMBOL.lower()}"]
        self.config["nats"]["jetstream"] = jetstream
        self.config["grpc"].update({"protocol": protocol, "timeout": "1s", "maxRetries": 1, "retryBackoff": "100ms",
                                    "breakerFailures": 3, "breakerReset": "30s"})  # fmt: skip
        self.config["strategies"] = {
            "script": {"plugin": "scripted", "strategy": "scripted", "symbols": [SYMBOL],
                       "parameters": {"actions": actions}},
        }  # fmt: skip

    # ------------------------------------------------------------------ processes

    def start(self, *, ready: tuple[str, ...] = ()) -> None:
        super().start(ready=ready or tuple(self.config["strategies"]))
        # The venue matches against the ticks it has seen: trade once it reads the market (and, for
        # order-service, once the engine hears the venue's order updates).
        poll_until(lambda: "redis_connected" in self._venue_log(), 15, "the venue reading the market")
        if self.protocol == "order-service":
            poll_until(lambda: "paper_order_stream_opened" in self._venue_log(), 15, "the order stream open")

    def _venue_log(self) -> str:
        try:
            return (self.folder / "venue.log").read_text(errors="replace")
        except OSError:
            return ""

    def start_engine(self, *, ready: tuple[str, ...] = ()) -> None:
        """Start the engine and wait until every configured strategy runs (or those in ``ready``) and
        the engine says it is ready (/ready: the Redis and NATS subscriptions are up).

        A running strategy is not enough: the engine subscribes to market data and fills while its
        runners start, independently of them, and both are pub/sub (core NATS at most once), so a
        tick or a fill published before its subscription is up is lost for good (a fill lost while
        both processes run is recovered by no reconcile), and a test waiting for it waits in vain.
        """
        super().start_engine(ready=ready or tuple(self.config["strategies"]))
        poll_until(self._ready, 30, f"the engine ready ({self.tail()})", interval=0.05)

    def _ready(self) -> bool:
        self._check_alive()
        try:
            code, _ = self.get("/ready")
        except OSError:
            return False
        return code == 200

    def told(self, message: str) -> list[dict[str, Any]]:
        """The fields of every ``message`` the strategy logged (``told_fill``, ``told_position``, ``told_order``)."""
        return [r["fields"] for r in self.logs("strategy_log") if r.get("message") == message]

    # ------------------------------------------------------------------ the ledger

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the ledger file."""
        db = sqlite3.connect(f"file:{self.ledger_path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []  # the schema is not there yet
        finally:
            db.close()

    def order(self, seq: int) -> dict[str, Any] | None:
        """The journaled order the strategy placed on tick ``seq`` (by its metadata)."""
        rows = self.query(
            "SELECT client_order_id, status, quantity, filled_quantity, average_price, reason FROM orders "
            "WHERE json_extract(metadata, '$.seq') = ?", str(seq),
        )  # fmt: skip
        if not rows:
            return None
        cid, status, quantity, filled, average, reason = rows[0]
        fills = self.query("SELECT quantity - covered, reconciled FROM fills WHERE client_order_id = ?", cid)
        return {
            "id": cid, "status": status, "quantity": quantity, "filled": filled, "average": average,
            "reason": reason, "fills": sum(q for q, _ in fills), "reconciled": sum(1 for _, r in fills if r == 1),
        }  # fmt: skip

    def position(self) -> float:
        rows = self.query("SELECT quantity FROM positions WHERE strategy = 'script' AND symbol = ?", SYMBOL)
        return float(rows[0][0]) if rows else 0.0

    def wait_order(self, seq: int, timeout: float, what: str, **expect: Any) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            order = self.order(seq)
            if order is None:
                return None
            for key, value in expect.items():
                got = order[key]
                same = abs(got - value) <= 1e-9 if isinstance(value, float) else got == value
                if not same:
                    return None
            return order

        return poll_until(matches, timeout, f"{what} (order {self.order(seq)}; {self.tail()})", interval=0.05)  # type: ignore[no-any-return]

"""b25's market data reaches the strategies exactly as the seed's does: ``strategy-engine run`` end to end.

One generated sequence of market states of two symbols (recorded-style: fixed 2024 times, a random
walk of a 5-level book, a trade every other state) is published twice to a real redis-server: once
in the seed's JSON on ``market:<symbol>`` (a book, a tick of its touch and mid, the trade), once the
way b25's market-data service publishes the same states (``orderbook:<SYMBOL>``,
``market_data:<SYMBOL>``, ``trades:<SYMBOL>``). Each publication is read by its own
``strategy-engine run --config config.yaml`` subprocess (simulation mode: runners, risk, ledger and
the paper venue all real), with the config's Redis keys taken from README.md's b25 example for the
b25 run. The RECORDER plugin logs every market event it is handed (``strategy_log`` lines in the
engine's JSON log) and sends a resting limit buy on every third one; the two runs must log the same
events in the same order, and journal the same orders.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import yaml

from tests.helpers import ROOT
from tests.integration.operator_stack import engine_command, environment, poll_until
from tests.servers import NatsServer, RedisServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SYMBOLS = {"BTCUSDT": 61837.63, "ETHUSDT": 2680.01}
STATES = 24  # per symbol
START = datetime(2024, 8, 8, 23, 54, 14, 87891, tzinfo=UTC)
PUBLISH_EVERY_S = 0.025  # strategy logs are limited to 20 a second after a burst of 100

RECORDER = '''"""Test plugin: logs every market event it receives and sends a resting limit buy on every third."""

from __future__ import annotations

import hashlib

from sdk import Book, Signal, Strategy, StrategyConfig, Tick, Trade, hookimpl


class Recorder(Strategy[StrategyConfig]):
    name = "recorder"
    Config = StrategyConfig

    def __init__(self, config: StrategyConfig) -> None:
        super().__init__(config)
        self.seen = 0
        self.digest = hashlib.sha256()

    def on_tick(self, tick: Tick) -> None:
        data = f"{tick.bid_price!r}/{tick.bid_size!r} {tick.ask_price!r}/{tick.ask_size!r} last={tick.last_price!r}"
        self.record("tick", tick.symbol, tick.timestamp_ns, tick.sequence, data, tick.bid_price)

    def on_book(self, book: Book) -> None:
        data = f"{book.bids!r} {book.asks!r} last={book.last_price!r}"
        self.record("book", book.symbol, book.timestamp_ns, book.sequence, data, book.bids[0][0])

    def on_trade(self, trade: Trade) -> None:
        data = f"{trade.last_price!r} x {trade.volume!r} quote={trade.volume_quote!r} side={trade.side!r}"
        self.record("trade", trade.symbol, trade.timestamp_ns, trade.sequence, data, trade.last_price)

    def record(self, kind: str, symbol: str, timestamp_ns: int, sequence: int, data: str, price: float) -> None:
        self.seen += 1
        self.digest.update(f"{kind} {symbol} {timestamp_ns} {sequence} {data}".encode())
        limit = round(price * 0.995, 2) if self.seen % 3 == 0 else None
        self.log.info("seen", n=self.seen, kind=kind, symbol=symbol, timestamp_ns=timestamp_ns, sequence=sequence,
                      data=data, digest=self.digest.hexdigest()[:16], limit=limit)
        if limit is not None:
            self.emit(Signal(symbol=symbol, side="buy", quantity=0.001, order_type="limit", price=limit,
                             metadata={"n": str(self.seen), "kind": kind}))


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[StrategyConfig]]]:
    return [Recorder]
'''


# --- the market states, and the two ways of publishing them ----------------------------------------


@dataclass(frozen=True)
class State:
    symbol: str
    at: datetime
    bids: list[tuple[float, float]]  # best first
    asks: list[tuple[float, float]]
    update_id: int  # b25's last_update_id: rises by any step
    trade: tuple[int, float, float, bool] | None  # (trade_id, price, quantity, is_buyer_maker)


def market_states(seed: int = 25) -> list[State]:
    """STATES states per symbol, interleaved, 100 ms apart: a random walk of a 5-level book; a trade every other."""
    rng = random.Random(seed)
    mids = dict(SYMBOLS)
    update_ids = {symbol: 51_234_567 for symbol in SYMBOLS}
    trade_ids = {symbol: 3_061_234_567 for symbol in SYMBOLS}
    states = []
    for i in range(STATES):
        for symbol in SYMBOLS:
            mids[symbol] = round(mids[symbol] + rng.choice((-0.02, -0.01, 0.0, 0.01, 0.02)), 2)
            bid = mids[symbol]
            bids = [(round(bid - 0.01 * k, 2), round(rng.uniform(0.001, 3.0), 5)) for k in range(5)]
            asks = [(round(bid + 0.01 * (k + 1), 2), round(rng.uniform(0.001, 3.0), 5)) for k in range(5)]
            update_ids[symbol] += rng.randint(1, 20)
            trade = None
            if i % 2:
                trade_ids[symbol] += 1
                maker = rng.random() < 0.5
                trade = (trade_ids[symbol], bids[0][0] if maker else asks[0][0], round(rng.uniform(0.001, 0.5), 5),
                         maker)  # fmt: skip
            at = START + timedelta(milliseconds=100 * i, microseconds=37 * len(states))
            states.append(State(symbol, at, bids, asks, update_ids[symbol], trade))
    return states


def _rfc3339(at: datetime, *, zone: str) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + zone


def _us(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def seed_messages(state: State) -> list[tuple[str, dict[str, Any]]]:
    """The state in the seed's JSON: a book, a tick (touch and mid, no sizes), the trade."""
    channel, stamp = f"market:{state.symbol.lower()}", _rfc3339(state.at, zone="Z")
    bid, ask = state.bids[0][0], state.asks[0][0]
    out = [
        (channel, {"symbol": state.symbol, "timestamp": stamp, "sequence": state.update_id, "type": "book",
                   "bids": [list(level) for level in state.bids], "asks": [list(level) for level in state.asks]}),
        (channel, {"symbol": state.symbol, "timestamp": stamp, "sequence": 0, "type": "tick", "bid_price": bid,
                   "ask_price": ask, "last_price": (bid + ask) / 2}),
    ]  # fmt: skip
    if state.trade is not None:
        trade_id, price, quantity, maker = state.trade
        millis = _rfc3339(state.at.replace(microsecond=state.at.microsecond // 1000 * 1000), zone="Z")
        out.append((channel, {"symbol": state.symbol, "timestamp": millis, "sequence": trade_id, "type": "trade",
                              "last_price": price, "volume": quantity,
                              "side": "sell" if maker else "buy"}))  # fmt: skip
    return out


def b25_messages(state: State) -> list[tuple[str, dict[str, Any]]]:
    """The state as b25's market-data service publishes it (compat/messages.md), in the same order."""
    bid, ask = state.bids[0][0], state.asks[0][0]
    # serde writes a BTreeMap keyed by price: ascending on both sides.
    out = [
        (f"orderbook:{state.symbol}", {"symbol": state.symbol, "bids": {repr(p): s for p, s in sorted(state.bids)},
         "asks": {repr(p): s for p, s in sorted(state.asks)}, "last_update_id": state.update_id,
         "timestamp": _us(state.at), "initialized": True}),
        (f"market_data:{state.symbol}", {"symbol": state.symbol, "last_price": (bid + ask) / 2, "bid_price": bid,
         "ask_price": ask, "volume_24h": 0.0, "high_24h": 0.0, "low_24h": 0.0,
         "updated_at": _rfc3339(state.at, zone="+00:00")}),
    ]  # fmt: skip
    if state.trade is not None:
        trade_id, price, quantity, maker = state.trade
        out.append((f"trades:{state.symbol}", {"symbol": state.symbol, "trade_id": trade_id, "price": price,
                    "quantity": quantity, "timestamp": _us(state.at) // 1000, "is_buyer_maker": maker}))  # fmt: skip
    return out


# --- one engine run --------------------------------------------------------------------------------


def readme_b25_redis() -> dict[str, Any]:
    """The redis section of README.md's b25 config (the yaml block starting ``# b25.yaml``)."""
    blocks = re.findall(r"```yaml\n(# b25\.yaml.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1, "README.md has one yaml block starting with '# b25.yaml'"
    redis_section: dict[str, Any] = yaml.safe_load(blocks[0])["redis"]
    return redis_section


class EngineRun:
    """``strategy-engine run --config config.yaml`` in a folder of its own, with RECORDER enabled."""

    def __init__(self, folder: Path, redis_server: RedisServer, nats_server: NatsServer, section: dict[str, Any]):
        self.folder = folder
        (folder / "plugins" / "recorder").mkdir(parents=True)
        (folder / "plugins" / "recorder" / "__init__.py").write_text(RECORDER)
        self.http_port = free_port()
        self.log_path = folder / "engine.log"
        self.config = {
            "server": {"port": self.http_port},
            "redis": {**section, "host": "127.0.0.1", "port": redis_server.port},
            "nats": {"url": nats_server.url},
            "engine": {"mode": "simulation", "pluginsDir": "plugins", "ledgerPath": "ledger.sqlite",
                       "handshakeTimeout": "5s", "stopGrace": "1s", "runnerMemoryMb": 768, "hotReload": False,
                       "watchConfig": False},
            "risk": {"maxOrdersPerSecond": 1000, "maxOrdersPerMinute": 100000, "maxOrderValue": 1_000_000,
                     "maxPortfolioNotional": 1e9, "maxPositionSize": 10, "referenceStaleAfter": "87600h"},
            "logging": {"level": "info", "format": "json"},
            "strategies": {"recorder": {"plugin": "recorder", "strategy": "recorder",
                                        "symbols": list(SYMBOLS)}},
        }  # fmt: skip
        (folder / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the engine; ``wait_serving`` waits until it serves."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*engine_command(), "run", "--config", "config.yaml"], cwd=self.folder, env=environment(),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_serving(self) -> None:
        poll_until(self._serving, 30, f"the recorder running and Redis subscribed ({self.tail()})")

    def _serving(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"the engine exited: {self.tail()}"
        try:
            status = self.get("/status")
        except OSError:
            return False
        redis_up = any(b["name"] == "redis" and b["up"] for b in status["brokers"])
        return redis_up and [s["state"] for s in status["strategies"]] == ["running"]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as reply:
            body = reply.read().decode()
        return json.loads(body) if path != "/metrics" else body

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def seen(self) -> list[dict[str, Any]]:
        """The fields of each ``seen`` line the recorder logged, in order."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"strategy_log"' in line and '"seen"' in line:
                record = json.loads(line)
                if record.get("event") == "strategy_log" and record.get("message") == "seen":
                    records.append(record["fields"])
        return records

    def orders(self) -> list[tuple[Any, ...]]:
        """The journaled orders, by the recorder's count: what was asked for and what became of it."""
        db = sqlite3.connect(f"file:{self.folder / 'ledger.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT symbol, side, order_type, quantity, price, metadata, status FROM orders")
            orders = [(*row[:5], json.loads(row[5]), row[6]) for row in rows.fetchall()]
        finally:
            db.close()
        return sorted(orders, key=lambda order: int(order[5]["n"]))

    def metric(self, name: str, **labels: str) -> float:
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.get("/metrics").splitlines():
            key, _, value = line.rpartition(" ")
            metric, _, label_text = key.partition("{")
            if metric == f"strategy_engine_{name}" and ",".join(sorted(label_text.rstrip("}").split(","))) == wanted:
                return float(value)
        return 0.0

    def health(self) -> dict[str, Any]:
        """What the run's metrics say of its market data: rejections, and gaps and late updates per symbol."""
        prefix = "strategy_engine_market_data_errors_total{"
        return {
            "rejected": [line for line in self.get("/metrics").splitlines() if line.startswith(prefix)],
            "gaps": {s: self.metric("market_data_sequence_gaps_total", symbol=s) for s in SYMBOLS},
            "out_of_order": {s: self.metric("market_data_out_of_order_total", symbol=s) for s in SYMBOLS},
        }


def publish(port: int, *streams: list[tuple[str, dict[str, Any]]]) -> None:
    """Each stream's messages in order, one every ``PUBLISH_EVERY_S``; the streams side by side."""
    client = redis.Redis(port=port)
    try:
        for messages in itertools.zip_longest(*streams):
            for channel, message in filter(None, messages):
                client.publish(channel, orjson.dumps(message))
            time.sleep(PUBLISH_EVERY_S)
    finally:
        client.close()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[EngineRun]]:
    started: list[EngineRun] = []
    yield started
    for run in started:
        run.stop()


class TestB25MarketDataLive:
    def test_b25_channels_reach_the_strategy_exactly_as_the_seed_format_does(
        self, tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer, runs: list[EngineRun]
    ) -> None:
        """The same market states, in the seed's format and in b25's three: the same events reach the
        strategy, in the same order, and the same orders are journaled; b25's run rejects nothing and
        counts no sequence gap (book ids jump, trade ids follow on)."""
        states = market_states()
        published = {"seed": [m for s in states for m in seed_messages(s)],
                     "b25": [m for s in states for m in b25_messages(s)]}  # fmt: skip
        redis_sections = {"seed": {"marketDataChannels": ["market:*"]}, "b25": readme_b25_redis()}
        assert set(redis_sections["b25"]["marketDataFormats"].values()) == {"b25-ticker", "b25-book", "b25-trade"}
        # The two runs side by side: their channels do not overlap (the seed's "market:*" matches none
        # of b25's), so each engine reads only its own stream.
        named = {name: EngineRun(tmp_path / name, redis_server, nats_server, redis_sections[name])
                 for name in ("seed", "b25")}  # fmt: skip
        runs.extend(named.values())
        for run in named.values():
            run.start()
        for run in named.values():
            run.wait_serving()
        publish(redis_server.port, published["seed"], published["b25"])
        for name, run in named.items():
            poll_until(lambda: len(run.seen()) == len(published[name]), 30,  # noqa: B023 (called within the loop)
                       f"{len(published[name])} events seen in the {name} run ({run.tail()})")  # fmt: skip
        time.sleep(0.5)  # nothing more arrives, and the last signals reach the ledger
        results = {name: (run.seen(), run.orders(), run.health()) for name, run in named.items()}
        for run in named.values():
            assert run.stop() == 0, run.tail()
        seed_seen, seed_orders, _ = results["seed"]
        b25_seen, b25_orders, b25_health = results["b25"]
        assert len(b25_seen) == len(published["b25"]) == len(published["seed"])
        assert [s["kind"] for s in b25_seen].count("trade") == STATES  # half the states of each of 2 symbols
        assert b25_seen == seed_seen
        assert len(b25_orders) == len(b25_seen) // 3 and {o[-1] for o in b25_orders} == {"accepted"}
        assert b25_orders == seed_orders
        no_symbol = dict.fromkeys(SYMBOLS, 0.0)
        assert b25_health == {"rejected": [], "gaps": no_symbol, "out_of_order": no_symbol}

    def test_the_readme_config_checks_clean(self, tmp_path: Path) -> None:
        """README.md's b25.yaml loads: its format keys are used as they are and no b25 channel is left seed."""
        block = re.search(r"```yaml\n(# b25\.yaml.*?)```", (ROOT / "README.md").read_text(), re.S)
        assert block is not None
        (tmp_path / "b25.yaml").write_text(block.group(1))
        done = subprocess.run([*engine_command(), "check-config", "b25.yaml"], cwd=tmp_path, env=environment(),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "redis.marketDataFormats" in done.stdout and "looks like a b25 channel" not in done.stdout

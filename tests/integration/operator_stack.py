"""The product as an operator runs it: ``strategy-engine`` subprocesses against real servers.

``OperatorStack`` lays out a project folder (``config.yaml``, ``plugins/``), starts
``strategy-engine paper-venue --config config.yaml`` and ``strategy-engine run --config config.yaml``
as subprocesses against a real redis-server and nats-server on free ports, and publishes ticks of
three symbols to Redis at a steady rate from a thread, with the wall clock's timestamps, for as long
as it runs. The engine's JSON log goes to a file; its HTTP port is a free port of its own.

What the engine did is read the way an operator reads it: /status and /metrics over HTTP, the log
lines, and the ledger file (opened read-only). The test plugin ``COUNTER`` sends a market order on
every ``every``-th tick, alternating buy and sell of ``size``, and names in the order's metadata
which code sent it (``version``), with which parameters (``label``) and how many ticks that
strategy has seen (``seen``, carried across a reload through on_save/on_load). The ledger's orders
journal therefore shows, order by order, which code and which parameters served. With ``log_every``
it also logs ``counter_started`` (warning) in ``on_start`` and ``counted`` (info) then
``counted_detail`` (debug) every so many ticks. ``spin_threads`` makes it a CPU hog (threads that
hash without the GIL from ``on_start``), ``hog`` an order hog (that many more orders, at priority 10,
on every tick). With ``log_positions`` it logs ``position`` (info, symbol and quantity) on every
position event it is given: the positions a strategy was told, in the engine's log.

``kill_venue`` SIGKILLs the paper venue (its in-memory orders and positions are gone, as in a crash)
and ``start_venue`` starts a new one on the same address.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import yaml

from tests.helpers import ROOT
from tests.servers import NatsServer, RedisServer, free_port

__all__ = ["COUNTER", "Order", "OperatorStack", "counter_source", "engine_command", "poll_until", "write_counter"]

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 2_600.0, "SOLUSDT": 150.0}

COUNTER = '''"""Test plugin: a market order every few ticks, saying which code and parameters sent it."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass

from sdk import Position, Signal, Strategy, StrategyConfig, Tick, hookimpl

VERSION = "@VERSION@"


@dataclass(frozen=True)
class CounterConfig(StrategyConfig):
    label: str = "a"
    every: int = 1
    size: float = 0.001
    rest: bool = False  # also keep one limit buy working, 3 % under the bid
    delay_ms: float = 0.0  # compute time spent on each tick (a replay is paced by its slowest strategy)
    side: str = "alternate"  # or "buy": never nets out against itself in one aggregation batch
    log_every: int = 0  # log "counted" (info, then "counted_detail" at debug) every so many ticks, and
    # "counter_started" (warning) at start
    spin_threads: int = 0  # background threads started in on_start that hash without the GIL forever (CPU hog)
    hog: int = 0  # this many more orders on every tick, at priority 10 (order hog)
    log_positions: bool = False  # log "position" (info) with symbol and quantity on every position event


class Counter(Strategy[CounterConfig]):
    name = "counter"
    Config = CounterConfig

    def __init__(self, config: CounterConfig) -> None:
        super().__init__(config)
        self.seen = 0

    def on_start(self) -> None:
        if self.config.log_every:
            self.log.warning("counter_started", label=self.config.label, version=VERSION)
        for _ in range(self.config.spin_threads):
            threading.Thread(target=_spin, daemon=True).start()

    def on_tick(self, tick: Tick) -> None:
        self.seen += 1
        if self.config.log_every and self.seen % self.config.log_every == 0:
            self.log.info("counted", seen=self.seen, symbol=tick.symbol, price=tick.bid_price)
            self.log.debug("counted_detail", seen=self.seen)
        if self.config.delay_ms:
            time.sleep(self.config.delay_ms / 1000)
        if self.config.rest and self.seen == 1:
            price = round(tick.bid_price * 0.97, 2)
            self.emit(Signal(symbol=tick.symbol, side="buy", quantity=self.config.size, order_type="limit", price=price,
                             slot="rest", metadata={"version": VERSION, "label": "rest", "seen": "0"}))
        for _ in range(self.config.hog):
            self.emit(Signal(symbol=tick.symbol, side="buy", quantity=self.config.size, priority=10,
                             metadata={"version": VERSION, "label": "hog", "seen": str(self.seen)}))
        if self.seen % self.config.every:
            return
        side = "buy" if self.config.side == "buy" or (self.seen // self.config.every) % 2 else "sell"
        metadata = {"version": VERSION, "label": self.config.label, "seen": str(self.seen), "seq": str(tick.sequence)}
        self.emit(Signal(symbol=tick.symbol, side=side, quantity=self.config.size, metadata=metadata))

    def on_position(self, position: Position) -> None:
        if self.config.log_positions:
            self.log.info("position", symbol=position.symbol, quantity=position.quantity)

    def on_save(self) -> bytes:
        return json.dumps({"seen": self.seen}).encode()

    def on_load(self, state: bytes) -> None:
        self.seen = json.loads(state)["seen"]


def _spin() -> None:
    block = bytes(1 << 20)
    while True:
        hashlib.sha256(block).digest()


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[CounterConfig]]]:
    return [Counter]
'''


def counter_source(version: str) -> str:
    return COUNTER.replace("@VERSION@", version)


def write_counter(plugins: Path, name: str, version: str) -> Path:
    """Write (or rewrite) the package ``name`` in one write of its only file."""
    package = plugins / name
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(counter_source(version))
    return package


def engine_command() -> list[str]:
    """``strategy-engine`` as installed (pip install -e .), else the same entry point through python -m."""
    script = shutil.which("strategy-engine")
    return [script] if script else [sys.executable, "-m", "host.cli"]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTEST_ADDOPTS", None)
    return env


def poll_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Call ``predicate`` until it returns something true; return it, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class Order:
    """One order of the ledger's journal, with what its metadata says."""

    strategy: str
    symbol: str
    created_ns: int
    version: str
    label: str
    seen: int
    status: str


class Publisher:
    """A thread publishing ticks of every symbol to ``market:<symbol>`` at ``rate`` a second each."""

    def __init__(self, port: int, rate: float = 40.0) -> None:
        self.port = port
        self.rate = rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tick-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        client = redis.Redis(port=self.port)
        try:
            while not self._stop.wait(1.0 / self.rate):
                self.sent += 1
                for symbol in SYMBOLS:
                    client.publish(f"market:{symbol.lower()}", json.dumps(self._tick(symbol)))
        except redis.RedisError:
            return  # the server went away: the test that stopped it knows
        finally:
            client.close()

    def _tick(self, symbol: str) -> dict[str, Any]:
        mid = PRICES[symbol] * (1 + 0.0001 * (self.sent % 10))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
        return {
            "symbol": symbol, "timestamp": stamp, "sequence": self.sent, "type": "tick",
            "bid_price": round(mid - 0.01, 2), "ask_price": round(mid + 0.01, 2), "bid_size": 5.0, "ask_size": 5.0,
            "last_price": round(mid, 2),
        }  # fmt: skip


def base_config(redis_server: RedisServer, nats_server: NatsServer, http_port: int) -> dict[str, Any]:
    """A live engine of two COUNTER strategies on separate symbols, with roomy risk limits."""
    return {
        "server": {"port": http_port},
        "redis": {"port": redis_server.port, "marketDataChannels": [f"market:{s.lower()}" for s in SYMBOLS]},
        "nats": {"url": nats_server.url},
        "grpc": {"orderExecutionAddress": f"127.0.0.1:{free_port()}", "timeout": "2s"},
        "engine": {
            "mode": "live", "pluginsDir": "plugins", "ledgerPath": "ledger.sqlite", "handshakeTimeout": "5s",
            "stopGrace": "1s", "runnerMemoryMb": 768,
        },
        "risk": {
            "maxOrdersPerSecond": 1000, "maxOrdersPerMinute": 100000, "maxPositionSize": 10, "maxOrderQuantity": 1,
            "maxOrderValue": 1_000_000, "maxPortfolioNotional": 1e9,
        },
        "logging": {"level": "info", "format": "json"},
        "strategies": {
            "edited": {"plugin": "edited", "strategy": "counter", "symbols": ["BTCUSDT"], "parameters": {"label": "a"}},
            "steady": {"plugin": "steady", "strategy": "counter", "symbols": ["ETHUSDT"]},
        },
    }  # fmt: skip


class OperatorStack:
    """A project folder, the paper venue and the engine as subprocesses, and a tick publisher."""

    def __init__(self, folder: Path, redis_server: RedisServer, nats_server: NatsServer) -> None:
        self.folder = folder
        self.plugins = folder / "plugins"
        self.plugins.mkdir(parents=True)
        self.config_path = folder / "config.yaml"
        self.http_port = free_port()
        self.config = base_config(redis_server, nats_server, self.http_port)
        self.redis_server = redis_server
        self.log_path = folder / "engine.log"
        self.ledger_path = folder / "ledger.sqlite"
        self.engine: subprocess.Popen[bytes] | None = None
        self.venue: subprocess.Popen[bytes] | None = None
        # Config keys the paper venue runs with beside the engine's (e.g. its own NATS reconnect
        # wait): written to venue.yaml at start_venue when set.
        self.venue_overrides: dict[str, dict[str, Any]] = {}
        self.publisher = Publisher(redis_server.port)

    # ------------------------------------------------------------------ files

    def write_config(self, config: Mapping[str, Any] | None = None) -> float:
        """Write config.yaml in one go; returns the wall time of the write."""
        if config is not None:
            self.config = dict(config)
        text = yaml.safe_dump(self.config, sort_keys=False)
        return self.write(self.config_path, text)

    @staticmethod
    def write(path: Path, text: str) -> float:
        saved = time.time()
        path.write_text(text)
        return saved

    # ------------------------------------------------------------------ processes

    def start(self, *, ready: tuple[str, ...] = ("edited", "steady")) -> None:
        self.write_config()
        self.start_venue()
        self.start_engine()
        self.publisher.start()
        poll_until(lambda: self._running(ready), 30, f"strategies {ready} running ({self.tail()})")

    def start_engine(self, *, ready: tuple[str, ...] = ()) -> None:
        """``strategy-engine run --config config.yaml`` (its output appended to the engine's log); with
        ``ready``, wait until those strategies run."""
        with open(self.log_path, "ab") as log:
            self.engine = subprocess.Popen(
                [*engine_command(), "run", "--config", str(self.config_path)], cwd=self.folder, env=environment(),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        if ready:
            poll_until(lambda: self._running(ready), 30, f"strategies {ready} running ({self.tail()})")

    def kill_engine(self) -> None:
        """SIGKILL the engine's process group (its runners die with it), as a crash would, and reap it."""
        assert self.engine is not None and self.engine.poll() is None, "the engine is not running"
        os.killpg(self.engine.pid, signal.SIGKILL)
        self.engine.wait(10)

    def start_venue(self) -> None:
        """``strategy-engine paper-venue`` on ``grpc.orderExecutionAddress`` (its output appended to venue.log)."""
        config_path = self.config_path
        if self.venue_overrides:
            config = {key: dict(value) if isinstance(value, dict) else value for key, value in self.config.items()}
            for section, values in self.venue_overrides.items():
                config[section].update(values)
            config_path = self.folder / "venue.yaml"
            self.write(config_path, yaml.safe_dump(config, sort_keys=False))
        with open(self.folder / "venue.log", "ab") as venue_log:
            self.venue = subprocess.Popen(
                [*engine_command(), "paper-venue", "--config", str(config_path)], cwd=self.folder,
                env=environment(), stdout=venue_log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def kill_venue(self) -> None:
        """SIGKILL the paper venue's process group, as a crash would, and reap it."""
        assert self.venue is not None and self.venue.poll() is None, "the venue is not running"
        os.killpg(self.venue.pid, signal.SIGKILL)
        self.venue.wait(10)

    def _running(self, ids: tuple[str, ...]) -> bool:
        self._check_alive()
        status = self.status(quiet=True)
        if status is None:
            return False
        states = {s["id"]: s["state"] for s in status["strategies"]}
        return all(states.get(sid) == "running" for sid in ids)

    def _check_alive(self) -> None:
        if self.engine is not None and self.engine.poll() is not None:
            raise AssertionError(f"the engine exited with {self.engine.returncode}: {self.tail()}")

    def stop(self) -> int | None:
        """SIGTERM the engine and the venue, wait for both; the engine's exit code."""
        self.publisher.stop()
        code = None
        for proc in (self.engine, self.venue):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if self.engine is not None:
            code = self.engine.returncode
        return code

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ------------------------------------------------------------------ what an operator reads

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def status(self, *, quiet: bool = False) -> dict[str, Any] | None:
        try:
            code, body = self.get("/status")
        except OSError:
            if quiet:
                return None
            raise
        assert code == 200, body
        data: dict[str, Any] = json.loads(body)
        return data

    def strategy(self, strategy_id: str) -> dict[str, Any] | None:
        status = self.status()
        assert status is not None
        return next((s for s in status["strategies"] if s["id"] == strategy_id), None)

    def metric(self, name: str, **labels: str) -> float:
        """The sample of ``strategy_engine_<name>`` with exactly these labels (0 when absent)."""
        _, text = self.get("/metrics")
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            key, value = line.rsplit(" ", 1)
            metric, _, label_text = key.partition("{")
            found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
            if metric == f"strategy_engine_{name}" and found == wanted:
                return float(value)
        return 0.0

    def logs(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if f'"{event}"' in line:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("event") == event:
                    found.append(record)
        return found

    def orders(self, strategy: str | None = None) -> list[Order]:
        """The ledger's orders, oldest first, read through a read-only connection."""
        if not self.ledger_path.exists():
            return []
        db = sqlite3.connect(f"file:{self.ledger_path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute(
                "SELECT strategy, symbol, created_ns, metadata, status FROM orders ORDER BY created_ns"
            ).fetchall()
        except sqlite3.OperationalError:
            return []  # the schema is not there yet
        finally:
            db.close()
        orders = []
        for sid, symbol, created_ns, metadata, status in rows:
            meta = json.loads(metadata)
            orders.append(Order(sid, symbol, created_ns, meta.get("version", ""), meta.get("label", ""),
                                int(meta.get("seen", 0)), status))  # fmt: skip
        return [o for o in orders if strategy is None or o.strategy == strategy]

    def fills(self, strategy: str) -> list[tuple[str, float, int]]:
        """The ledger's fills of ``strategy`` in recorded order: (symbol, signed quantity, recorded_ns)."""
        if not self.ledger_path.exists():
            return []
        db = sqlite3.connect(f"file:{self.ledger_path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute(
                "SELECT symbol, side, quantity, recorded_ns FROM fills WHERE strategy = ? ORDER BY rowid", (strategy,)
            ).fetchall()
        except sqlite3.OperationalError:
            return []  # the schema is not there yet
        finally:
            db.close()
        return [(symbol, quantity if side.lower() == "buy" else -quantity, at) for symbol, side, quantity, at in rows]

    def first_order_after(self, strategy: str, since: float, **match: str) -> Order | None:
        """The first order of ``strategy`` created after wall time ``since`` with these metadata values."""
        for order in self.orders(strategy):
            if order.created_ns / 1e9 >= since and all(getattr(order, k) == v for k, v in match.items()):
                return order
        return None


def runner_pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def live_stack(folder: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    """An OperatorStack with ``edited`` (v1) and ``steady`` packages in place; stopped afterwards."""
    stack = OperatorStack(folder, redis_server, nats_server)
    write_counter(stack.plugins, "edited", "v1")
    write_counter(stack.plugins, "steady", "s1")
    try:
        yield stack
    finally:
        stack.stop()

"""Random SIGKILLs of the engine and the venue under a steady feed, with the books checked after each.

``run_chaos`` drives a ``FaultStack`` whose strategy (``CHAOS``) trades on every fourth tick: market
orders, limit orders at the touch in three slots (a new one replaces the slot's working order) and
cancels, sides alternating, against a market that waves around 100 and shows 0.3 a side (so limits
fill, often partly). Fills travel over JetStream. A seeded ``random.Random`` picks when to kill,
whom (the engine, the venue, or both) and for how long it stays down. After each recovery the feed
is paused and, once everything in flight has settled (bounded wait), the invariants are checked:

- every fill the venue published (read back from the JetStream stream) is in the ledger once, and
  no order's fills (published ones, and the ledger's counted ones) exceed its quantity: no order
  id was ever sent for more than its quantity and no fill is stored twice;
- the ledger's positions equal the net of the fills the venue published (the venue's truth: a
  paper venue restarts empty, so its published fills are what it ever did; with order-service, plus
  executions the ledger has only from the update stream, when the venue died before publishing them);
- an order one venue acknowledged is never placed again at another (its audit trail names one venue
  order id at most): a venue restart does not revive it;
- every journaled order is accounted for: none left pending, sent or cancel-pending, and every one
  the ledger holds as working is known to the venue now running.

Used by ``test_chaos_orders.py`` (20 kills) and ``bench/bench_chaos.py`` (as many as asked).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import nats

from engine_proto import order_execution_pb2 as pb
from engine_proto import order_service_pb2 as os_pb
from engine_proto.order_execution_pb2_grpc import OrderExecutionStub
from engine_proto.order_service_pb2_grpc import OrderServiceStub
from tests.integration.fault_stack import SYMBOL, FaultStack
from tests.servers import NatsServer, RedisServer

__all__ = ["CHAOS", "ChaosReport", "ChaosStack", "run_chaos", "wave"]

CHAOS = '''"""Test plugin: market and limit orders, slot replacements and cancels, decided by the tick's sequence."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import Signal, Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class ChaosConfig(StrategyConfig):
    every: int = 4


class Chaos(Strategy[ChaosConfig]):
    name = "chaos"
    Config = ChaosConfig

    def on_tick(self, tick: Tick) -> None:
        seq = tick.sequence
        if seq % self.config.every:
            return
        pick = (seq * 2654435761) % 1000
        side = "buy" if (seq // self.config.every) % 2 else "sell"
        quantity = round(0.1 * (1 + pick % 5), 1)
        slot = f"s{pick % 3}"
        if pick < 250:
            self.emit(Signal(symbol=tick.symbol, side=side, quantity=quantity, metadata={"seq": str(seq)}))
        elif pick < 850:
            price = tick.bid_price if side == "buy" else tick.ask_price
            self.emit(Signal(symbol=tick.symbol, side=side, quantity=quantity, order_type="limit", price=price,
                             slot=slot, metadata={"seq": str(seq)}))
        else:
            self.cancel(tick.symbol, slot)


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[ChaosConfig]]]:
    return [Chaos]
'''

_IN_FLIGHT = ("pending_new", "sent", "cancel_pending")
_EPS = 1e-9


@dataclass
class ChaosReport:
    seed: int
    kills: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    checks: int = 0
    settle_s: list[float] = field(default_factory=list)
    orders: int = 0
    fills: int = 0
    reconciled_fills: int = 0
    covered_fills: int = 0
    orders_lost: int = 0
    resent: int = 0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        settle = sorted(self.settle_s)
        worst = settle[-1] if settle else 0.0
        median = settle[len(settle) // 2] if settle else 0.0
        return (
            f"seed {self.seed}: {sum(self.kills.values())} kills ({dict(self.kills)}), {self.checks} checks, "
            f"{self.orders} orders, {self.fills} fills ({self.reconciled_fills} reconciled, {self.covered_fills} "
            f"covered), {self.orders_lost} orders closed as lost by the venue, {self.resent} re-sent under their id; "
            f"settle median {median:.2f} s, worst {worst:.2f} s; violations: {len(self.violations)}"
        )


class ChaosStack(FaultStack):
    """A FaultStack trading ``CHAOS`` over JetStream on a waving market."""

    def __init__(self, folder: Path, redis_server: RedisServer, nats_server: NatsServer,
                 protocol: str = "orderexecution") -> None:  # fmt: skip
        super().__init__(folder, redis_server, nats_server, actions="", jetstream=True, protocol=protocol)
        package = self.plugins / "chaos"
        package.mkdir()
        (package / "__init__.py").write_text(CHAOS)
        self.config["strategies"] = {"script": {"plugin": "chaos", "strategy": "chaos", "symbols": [SYMBOL]}}
        self.config["risk"].update({"maxPositionSize": 50, "maxOrderQuantity": 1})
        self.quotes.shape = wave
        self.quotes.set(bid_size=0.3, ask_size=0.3)
        self.nats_url = nats_server.url


def wave(sequence: int) -> tuple[float, float]:
    """Bid and ask for a tick: a triangle wave of ±0.4 around 100 over 40 ticks, spread 0.02."""
    phase = sequence % 40
    mid = 100.0 + 0.02 * (phase if phase < 20 else 40 - phase) - 0.2
    return round(mid - 0.01, 2), round(mid + 0.01, 2)


async def _published(url: str, stream: str, subject: str) -> list[dict[str, Any]]:
    client = await nats.connect(url, name="chaos-check")
    try:
        js = client.jetstream()
        try:
            info = await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return []
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                message = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                continue
            if message.subject == subject and message.data:
                found.append(json.loads(message.data))
        return found
    finally:
        await client.close()


def _venue_knows(address: str, protocol: str, client_order_ids: list[str]) -> dict[str, str]:
    """The status the running venue gives each id ("unknown" when it never saw it)."""
    if protocol == "order-service":
        with grpc.insecure_channel(address) as channel:
            orders = (
                OrderServiceStub(channel)
                .GetOrders(  # type: ignore[no-untyped-call]
                    os_pb.GetOrdersRequest(), timeout=10, wait_for_ready=True
                )
                .orders
            )
        known = {order.client_order_id: os_pb.OrderState.Name(order.state) for order in orders}
        return {cid: known.get(cid, "unknown") for cid in client_order_ids}
    with grpc.insecure_channel(address) as channel:
        stub = OrderExecutionStub(channel)  # type: ignore[no-untyped-call]
        return {
            cid: stub.GetOrderStatus(pb.OrderStatusRequest(signal_id=cid), timeout=10, wait_for_ready=True).status
            for cid in client_order_ids
        }


def check(stack: ChaosStack) -> list[str]:
    """What is wrong with the books now (empty when every invariant holds)."""
    problems: list[str] = []
    in_flight = stack.query(f"SELECT client_order_id, status FROM orders WHERE status IN {_IN_FLIGHT}")
    if in_flight:
        problems.append(f"orders still in flight: {in_flight[:5]}")
    published = asyncio.run(_published(stack.nats_url, "TRADING", "trading.fills"))
    stored = {
        fill_id: (cid, quantity, covered, reconciled)
        for fill_id, cid, quantity, covered, reconciled in stack.query(
            "SELECT fill_id, client_order_id, quantity, covered, reconciled FROM fills"
        )
    }
    quantities = dict(stack.query("SELECT client_order_id, quantity FROM orders"))
    sent: dict[str, float] = defaultdict(float)
    streamed_only = 0.0
    if stack.protocol == "order-service":
        # Its fills reach the engine as cumulative order updates, under ids of their own: compared
        # per venue order, the quantity the venue published against the quantity the ledger counts.
        # An execution may also be known only from the update stream: the venue died after streaming
        # it and before publishing its report. So per venue order the ledger may hold more than was
        # published, by fills derived from updates (kind 2) alone, never less.
        rows = stack.query("SELECT order_id, client_order_id, quantity - covered, reconciled FROM fills")
        owner = {order_id: cid for order_id, cid, _, _ in rows if cid is not None}
        held: dict[str, float] = defaultdict(float)
        derived: dict[str, float] = defaultdict(float)
        for order_id, _, quantity, kind in rows:
            held[order_id] += quantity
            derived[order_id] += quantity if kind == 2 else 0.0
        venue: dict[str, float] = defaultdict(float)
        for fill in published:
            venue[fill["order_id"]] += float(fill["quantity"])
            if fill["order_id"] in owner:
                sent[owner[fill["order_id"]]] += float(fill["quantity"])
        streamed_only = 0.0
        for order_id in set(venue) | set(held):
            extra = held[order_id] - venue[order_id]
            if extra < -1e-9 or extra > derived[order_id] + 1e-9:
                problems.append(f"venue order {order_id}: published {venue[order_id]:g}, ledger {held[order_id]:g}")
            elif extra > 1e-9:
                streamed_only += extra * (1 if _side(stack, order_id) == "buy" else -1)
    else:
        missing = [f["fill_id"] for f in published if f["fill_id"] not in stored]
        if missing:
            problems.append(f"{len(missing)} published fills not in the ledger: {missing[:5]}")
        for fill in published:
            cid = stored.get(fill["fill_id"], (None,))[0]
            if cid is not None:
                sent[cid] += float(fill["quantity"])
    counted: dict[str, float] = defaultdict(float)
    for cid, quantity, covered, _ in stored.values():
        if cid is not None:
            counted[cid] += quantity - covered
    for cid, total in [*sent.items(), *counted.items()]:
        if total > quantities.get(cid, 0.0) + _EPS:
            problems.append(f"order {cid} filled {total:g} > its quantity {quantities.get(cid)}")
    venue_net = sum(float(f["quantity"]) * (1 if f["side"] == "buy" else -1) for f in published)
    if stack.protocol == "order-service":
        venue_net += streamed_only
    ledger_net = stack.position()
    if abs(venue_net - ledger_net) > 1e-6:
        problems.append(f"ledger position {ledger_net:g} != the venue's published fills' net {venue_net:g}")
    placed = stack.query(
        "SELECT client_order_id, count(DISTINCT venue_order_id) FROM order_events WHERE venue_order_id != '' "
        "GROUP BY client_order_id HAVING count(DISTINCT venue_order_id) > 1"
    )
    if placed:
        problems.append(f"orders placed at more than one venue (revived after a venue restart): {placed[:5]}")
    working = [cid for (cid,) in stack.query("SELECT client_order_id FROM orders WHERE status IN "
                                             "('accepted', 'partially_filled')")]  # fmt: skip
    if working:
        address = stack.config["grpc"]["orderExecutionAddress"]
        known = _venue_knows(address, stack.protocol, working)
        forgotten = [cid for cid, status in known.items() if status == "unknown"]
        if forgotten:
            problems.append(f"{len(forgotten)} orders working in the ledger the venue does not know: {forgotten[:5]}")
    return problems


def _side(stack: ChaosStack, venue_order_id: str) -> str:
    rows = stack.query("SELECT side FROM fills WHERE order_id = ? LIMIT 1", venue_order_id)
    return str(rows[0][0]) if rows else "buy"


def settle(stack: ChaosStack, timeout: float) -> tuple[float, list[str]]:
    """Pause the feed and wait until the invariants hold (or ``timeout``); the wait and what is still wrong."""
    stack.quotes.pause()
    started = time.monotonic()
    problems = check(stack)
    while problems and time.monotonic() - started < timeout:
        time.sleep(0.25)
        problems = check(stack)
    return time.monotonic() - started, problems


def run_chaos(stack: ChaosStack, *, seed: int, kills: int, progress: Callable[[str], None] = lambda _: None,
              settle_timeout: float = 20.0) -> ChaosReport:  # fmt: skip
    """Start the stack, kill and restart ``kills`` times, check after each recovery; the report."""
    rnd = random.Random(seed)
    report = ChaosReport(seed)
    stack.start()
    for number in range(1, kills + 1):
        time.sleep(rnd.uniform(0.5, 2.0))
        victim = rnd.choices(["engine", "venue", "both"], weights=[5, 3, 2])[0]
        if victim in ("engine", "both"):
            stack.kill_engine()
        if victim in ("venue", "both"):
            stack.kill_venue()
        report.kills[victim] += 1
        time.sleep(rnd.uniform(0.0, 1.5))  # down: the market moves on, the venue (if up) fills what rests
        if victim in ("venue", "both"):
            stack.start_venue()
        if victim in ("engine", "both"):
            stack.start_engine()
        waited, problems = settle(stack, settle_timeout)
        report.checks += 1
        report.settle_s.append(waited)
        if problems:
            report.violations.extend(f"after kill {number} ({victim}): {p}" for p in problems)
        progress(f"kill {number}/{kills} ({victim}): settled in {waited:.2f} s, {len(problems)} problem(s)")
        stack.quotes.resume()
    stack.quotes.pause()
    report.orders = stack.query("SELECT count(*) FROM orders")[0][0]
    report.fills = stack.query("SELECT count(*) FROM fills")[0][0]
    report.reconciled_fills = stack.query("SELECT count(*) FROM fills WHERE reconciled = 1")[0][0]
    report.covered_fills = stack.query("SELECT count(*) FROM fills WHERE covered > 0")[0][0]
    report.orders_lost = len(stack.logs("order_lost_by_venue"))
    report.resent = len(stack.logs("order_resent_same_id"))
    return report

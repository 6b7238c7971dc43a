"""The execution engine assembled the way the app does it, for the execution tests and their crash child.

``assemble`` builds the order path with the app's own ``host.assembly.order_path`` (book, risk,
aggregation, execution, durable counters, persister) over a real ``Ledger`` and a real venue;
``paper_host`` adds an in-process ``PaperVenue`` whose fill sink is the engine. ``journaled`` reads
every order from the ledger file through a second, read-only connection (what is on disk, whoever
holds the ledger open).

Run as ``python -m tests.execution_harness CASE LEDGER ADDRESS [CLIENT_ORDER_ID]``, this module is
the crash tests' child host: the engine over a ``GrpcVenue`` to ``ADDRESS`` and the ledger file,
killed mid-order (see ``_child``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from host.assembly import order_path
from host.clock import Clocks, SystemClock
from host.config import Config, EngineConfig, GrpcConfig, RiskConfig
from host.execution.book import Book
from host.execution.engine import ExecutionEngine
from host.execution.grpc_venue import GrpcVenue
from host.execution.matching import MatchingEngine
from host.execution.paper import PaperVenue, paper_id_prefix
from host.execution.venue import Venue
from host.ledger import Ledger
from host.ledger import _rows as rows
from host.metrics import EngineMetrics
from host.orders import OrderIntent, OrderState
from host.risk import RiskManager
from sdk.events import Fill, OrderUpdate, Position, Side, Signal, Tick
from tests.helpers import ManualClocks, wait_until

SYM = "BTCUSDT"


def risk_config(**changes: object) -> RiskConfig:
    """Roomy limits (10 coins, 1M a order), so a test only meets the rule it sets tight."""
    values: dict[str, object] = {
        "max_order_value": 1_000_000.0, "max_position_size": 10.0, "max_order_quantity": 10.0,
        "max_portfolio_notional": 10_000_000.0, "max_orders_per_second": 1000, "max_orders_per_minute": 10_000,
        "price_collar": 0.05, "reference_stale_after": 5.0,
    }  # fmt: skip
    values.update(changes)
    return RiskConfig(**values)  # type: ignore[arg-type]


def grpc_config(address: str, timeout: float = 0.5) -> GrpcConfig:
    """Fast settings: short deadline, 2 quick retries, a breaker that resets in 0.3 s."""
    return GrpcConfig(
        order_execution_address=address, timeout=timeout, max_retries=2, retry_backoff=0.05,
        breaker_failures=5, breaker_reset=0.3,
    )  # fmt: skip


class Delivered:
    """The engine's ``deliver``: records what each strategy was handed, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Fill | Position | OrderUpdate]] = []

    def __call__(self, strategy: str, event: Fill | Position | OrderUpdate) -> None:
        self.events.append((strategy, event))

    def of(self, strategy: str) -> list[Fill | Position | OrderUpdate]:
        return [event for sid, event in self.events if sid == strategy]

    def fills(self, strategy: str) -> list[Fill]:
        return [event for event in self.of(strategy) if isinstance(event, Fill)]

    def updates(self, strategy: str) -> list[OrderUpdate]:
        return [event for event in self.of(strategy) if isinstance(event, OrderUpdate)]


class FillFeed:
    """A ``PaperVenueServer``'s fill sink standing in for NATS ``trading.fills``: keeps every fill
    the venue published and hands it on to ``target`` (an engine's ``record_fill``) when one is set."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.target: Callable[[Fill], object] | None = None

    def __call__(self, fill: Fill, position: Position) -> None:
        self.fills.append(fill)
        if self.target is not None:
            self.target(fill)


@dataclass
class Host:
    """One engine with its parts; ``paper`` is set when the venue is an in-process ``PaperVenue``."""

    ledger: Ledger
    book: Book
    risk: RiskManager
    engine: ExecutionEngine
    metrics: EngineMetrics
    delivered: Delivered
    clock: Clocks
    paper: PaperVenue | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def tick(self, bid: float, ask: float, bid_size: float = 10.0, ask_size: float = 10.0, symbol: str = SYM) -> Tick:
        """A quote stamped now, to the books first and then to the paper venue (the app's order)."""
        event = Tick(
            symbol=symbol,
            timestamp_ns=self.clock.now_ns(),
            bid_price=bid,
            bid_size=bid_size,
            ask_price=ask,
            ask_size=ask_size,
        )
        self.engine.on_market(event)
        if self.paper is not None:
            self.paper.on_market(event)
        return event

    def signal(self, strategy: str, *signals: Signal) -> None:
        self.engine.signals(strategy, list(signals), [])

    def start(self) -> None:
        task = asyncio.ensure_future(self.engine.run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def barrier(self) -> None:
        """Return once every signal handed in before it has been placed or refused.

        A signal on a symbol without market data is refused (no_reference_price, or kill_switch
        while one is engaged) by the run loop, which takes batches in arrival order; at priority 1
        it is also the last of its own batch. It is sent as strategy "barrier", so no count of the
        test's strategies moves.
        """
        stats = self.engine.stats.rejections
        before = sum(stats.get("barrier", {}).values())
        self.engine.signals("barrier", [Signal(symbol="NODATA", side=Side.BUY, quantity=1.0, priority=1)], [])

        def passed() -> bool:
            return sum(stats.get("barrier", {}).values()) > before

        await wait_until(passed, timeout=5)

    def metric(self, name: str, **labels: str) -> float:
        return metric(self.metrics, name, **labels)

    def venue_orders(self) -> list[OrderState]:
        assert self.paper is not None
        return self.paper.engine.orders()


def metric(metrics: EngineMetrics, name: str, **labels: str) -> float:
    """A sample of ``strategy_engine_<name>`` from the registry's exposition text (0 when absent)."""
    text = generate_latest(metrics.registry).decode()
    wanted = f"{metrics.namespace}_{name}"
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == wanted and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def assemble(
    ledger: Ledger,
    venue: Venue | None,
    *,
    clock: Clocks,
    mode: str = "simulation",
    risk: RiskConfig | None = None,
    aggregation: str = "priority",
    initial_balance: float = 100_000.0,
    resolve_interval_s: float = 0.05,
) -> Host:
    """The app's order path (``host.assembly.order_path``) over ``ledger`` and ``venue`` (the venue's
    fill sink is the caller's business), delivering to a recorder instead of a supervisor."""
    config = Config(
        engine=EngineConfig(mode=mode, aggregation_mode=aggregation, signal_buffer_size=256),
        risk=replace(risk or risk_config(), initial_balance=initial_balance),
    )
    metrics = EngineMetrics()
    # What the supervisor does with its configuration: these strategies' labels are their own.
    metrics.allow_strategies(("alpha", "beta", "gamma"), ("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    delivered = Delivered()
    path = order_path(config, ledger, venue, clock=clock, deliver=delivered, metrics=metrics,
                      resolve_interval_s=resolve_interval_s)  # fmt: skip
    return Host(ledger, path.book, path.risk, path.execution, metrics, delivered, clock)


@contextlib.asynccontextmanager
async def running_paper_host(path: Path, clock: ManualClocks) -> AsyncIterator[Host]:
    """``paper_host`` started, with BTCUSDT quoted 99 / 101 (10 a side); stopped and closed after."""
    built = paper_host(path, clock)
    built.tick(99.0, 101.0)
    built.start()
    try:
        yield built
    finally:
        await built.stop()
        built.ledger.close()


def paper_host(
    path: Path,
    clock: ManualClocks,
    *,
    mode: str = "simulation",
    fee_rate: float = 0.0,
    risk: RiskConfig | None = None,
    aggregation: str = "priority",
) -> Host:
    """An engine over a fresh ledger at ``path`` and an in-process ``PaperVenue`` feeding it fills."""
    matching = MatchingEngine(fee_rate=fee_rate, clock=clock, id_prefix=paper_id_prefix())
    sink: list[Callable[[Fill], None]] = []
    paper = PaperVenue(matching, lambda fill: sink[0](fill))
    host = assemble(Ledger.open(path), paper, clock=clock, mode=mode, risk=risk, aggregation=aggregation)
    sink.append(host.engine.on_fill)
    host.paper = paper
    return host


def journaled(path: Path) -> list[OrderState]:
    """Every order in the ledger file, in journal order, read through a read-only connection."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        found = db.execute(f"SELECT {rows.ORDER_COLUMNS} FROM orders ORDER BY rowid").fetchall()
    finally:
        db.close()
    return [rows.order_from_row(row) for row in found]


# --- the crash tests' child host ----------------------------------------------------------------


class _DieAfterJournal(Ledger):
    """A ledger whose process is SIGKILLed the moment an order's journal entry has committed."""

    def journal(self, intent: OrderIntent, now_ns: int) -> OrderState:
        state = super().journal(intent, now_ns)
        os.kill(os.getpid(), signal.SIGKILL)
        return state


async def _child(case: str, path: Path, address: str, client_order_id: str) -> None:
    """``journal``: a signal takes the real order path and the host dies right after journaling it.

    ``send``: the host journals an order under ``client_order_id`` and sends it; the venue holds
    the reply, and the test SIGKILLs this process while the call waits (its deadline is 30 s).
    """
    clock = SystemClock()
    ledger = (_DieAfterJournal if case == "journal" else Ledger).open(path)
    venue = GrpcVenue(grpc_config(address, timeout=30.0), clock)
    host = assemble(ledger, venue, clock=clock, mode="live")
    host.tick(99.0, 101.0)
    if case == "journal":
        host.start()
        host.signal("alpha", Signal(symbol=SYM, side=Side.BUY, quantity=1.0))
    else:
        signal_ = Signal(symbol=SYM, side=Side.BUY, quantity=1.0)
        state = ledger.journal(
            OrderIntent.from_signal("alpha", signal_, clock.now_ns(), client_order_id), clock.now_ns()
        )
        host.book.order_changed(state)
        await host.engine._send(state)
    await asyncio.sleep(30)
    raise SystemExit("the child host was not killed")


if __name__ == "__main__":
    _case, _path, _address, *_rest = sys.argv[1:]
    asyncio.run(_child(_case, Path(_path), _address, _rest[0] if _rest else ""))

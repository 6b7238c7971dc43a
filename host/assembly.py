"""Putting the engine together: supervisor, books, risk, aggregation, execution, ledger, venue.

``build`` wires one ``Engine`` from a Config for either kind of run; only the clock and the venue
differ (ARCHITECTURE rule 6). A replay uses a ``ReplayClock`` that reads time off the events (so
reference prices are fresh, UTC days and rate windows follow the recording) and a ``PaperVenue``
matching against the same events; a live run uses the system clocks and, in live mode, the gRPC
order-execution service. ``observation`` runs everything up to risk and sends nothing.

Positions. In every mode a strategy is told the ledger's position after each of its fills (the
execution engine delivers it with the fill), and only that: a position the venue publishes (live,
on NATS) goes to ``Engine.venue_position``, which compares it with the ledger's
(``host.execution.position_check``) and reports a disagreement, but never hands it on. The
ledger's position after each fill is also what that check compares against.

Wiring order matters only at one point: the supervisor reports to the execution engine (it is the
supervisor's listener) and the execution engine delivers fills and positions back through the
supervisor, so the engine gets a ``deliver`` that looks the supervisor up once it exists (and so
do ``over_quota``, an order refused by its strategy's quota, and risk's ``strategy_count``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from host.clock import Clocks
from host.config import Config, RiskConfig
from host.execution.book import Book
from host.execution.engine import Deliver, ExecutionEngine
from host.execution.grpc_venue import GrpcVenue
from host.execution.matching import Arrival, MatchingEngine
from host.execution.order_service import OrderServiceVenue
from host.execution.paper import PaperVenue, paper_id_prefix
from host.execution.persist import DurableCounters, Persister
from host.execution.position_check import PositionCheck
from host.execution.venue import Venue
from host.execution.venue_positions import VenuePositions
from host.ledger import Ledger, LedgerError
from host.metrics import EngineMetrics
from host.risk import Aggregator, RiskManager, SignalQueue
from host.risk.seams import FeedView
from host.supervisor.managed import StrategyDefinition, SupervisionSettings
from host.supervisor.policy import BreakerPolicy
from host.supervisor.supervisor import Supervisor, UnknownStrategy
from sdk.events import Fill, MarketEvent, OrderUpdate, Position

__all__ = ["Engine", "OrderPath", "build", "order_path"]

log = structlog.get_logger("host.assembly")


@dataclass
class Engine:
    config: Config
    supervisor: Supervisor
    execution: ExecutionEngine
    ledger: Ledger
    book: Book
    venue: Venue | None
    paper: PaperVenue | None
    metrics: EngineMetrics
    positions: VenuePositions

    def on_market(self, event: MarketEvent) -> None:
        """One market event: books and paper matching first, then the strategies."""
        self.match(event)
        self.supervisor.publish(event)

    def match(self, event: MarketEvent) -> None:
        """The host's part of one market event: books marked, the paper venue's orders matched
        (a backtest's driver hands the event to the strategies itself, in lockstep)."""
        self.execution.on_market(event)
        if self.paper is not None:
            self.paper.on_market(event)

    def venue_position(self, strategy: str, position: Position) -> None:
        """A position the venue published: checked against the ledger's, never handed to the strategy."""
        if not self.supervisor.knows(strategy):
            log.warning("position_for_unknown_strategy", strategy=strategy, symbol=position.symbol)
            return
        self.positions.venue(strategy, position, self.book.positions(strategy).get(position.symbol, 0.0))

    def set_risk(self, risk: RiskConfig) -> None:
        """New risk limits from a changed config file; its allowedSymbols are metric label values too."""
        self.execution.risk.reconfigure(risk)
        self.metrics.labels.allow_symbols(risk.allowed_symbols)

    async def close(self) -> None:
        self.execution.rejection_log.flush()
        if self.venue is not None:
            await self.venue.close()
        self.ledger.close()


class LedgerStateStore:
    """Strategy state kept in the ledger's snapshots table across host restarts."""

    def __init__(self, ledger: Ledger, clock: Clocks) -> None:
        self._ledger = ledger
        self._clock = clock

    def load_state(self, strategy_id: str) -> bytes | None:
        return self._ledger.load_snapshot(strategy_id)

    def save_state(self, strategy_id: str, state: bytes) -> None:
        try:
            self._ledger.save_snapshot(strategy_id, state, self._clock.now_ns())
        except LedgerError as err:
            log.error("strategy_state_not_saved", strategy=strategy_id, reason=str(err))


def _over_quota(holder: list[Supervisor]) -> Callable[[str, str], None]:
    def over_quota(strategy: str, message: str) -> None:
        holder[0].over_quota(strategy, message)

    return over_quota


def _strategy_count(holder: list[Supervisor]) -> Callable[[], int]:
    return lambda: len(holder[0].definitions())


def _deliverer(holder: list[Supervisor], positions: VenuePositions) -> Deliver:
    def deliver(strategy: str, event: Fill | Position | OrderUpdate) -> None:
        if isinstance(event, Position):
            positions.ledger(event)  # the ledger's position after a fill: what venue positions are checked against
        try:
            holder[0].deliver(strategy, event)
        except UnknownStrategy:
            # A fill (or its order's update) for a strategy no longer configured: on the books, nobody to tell.
            log.warning("event_for_unknown_strategy", strategy=strategy, kind=event.kind)

    return deliver


@dataclass
class OrderPath:
    """Book, risk, aggregation and execution over one ledger and one venue: the order half of an Engine."""

    ledger: Ledger
    book: Book
    risk: RiskManager
    execution: ExecutionEngine
    venue: Venue | None
    paper: PaperVenue | None


def order_path(
    config: Config,
    ledger: Ledger,
    venue: Venue | str | None,
    *,
    clock: Clocks,
    deliver: Deliver,
    metrics: EngineMetrics,
    feed: FeedView | None = None,
    resolve_interval_s: float = 0.5,
    strategy_count: Callable[[], int] | None = None,
    over_quota: Callable[[str, str], None] | None = None,
    arrival: Arrival | None = None,
) -> OrderPath:
    """The order path as every run wires it: ``venue`` is one already made, or "paper", "grpc" or None.

    ``deliver`` hands fills and positions to the strategies (the supervisor's, in an Engine);
    ``strategy_count`` is how many strategies share the order rate (default: the configured ones)
    and ``over_quota`` hears of each order refused by its strategy's own quota. ``arrival`` (a
    backtest) makes the paper venue's orders arrive with a later event, under a fixed id prefix.
    """
    today = datetime.fromtimestamp(clock.now_ns() / 1e9, tz=UTC).date()
    book = Book.load(ledger, config.risk.initial_balance, today)
    counters = DurableCounters(ledger)
    configured = len(config.enabled_strategies())
    risk = RiskManager(
        config.risk, clock, market=book, book=book, counters=counters, feed=feed,
        strategy_count=strategy_count or (lambda: configured),
    )  # fmt: skip
    weights = {spec.id: spec.weight for spec in config.enabled_strategies()}
    engines: list[ExecutionEngine] = []
    paper: PaperVenue | None = None
    if venue == "paper":
        matching = MatchingEngine(
            config.engine.paper_fee_rate, config.engine.paper_slippage_bps, clock=clock,
            id_prefix="BT-" if arrival is not None else paper_id_prefix(), arrival=arrival,
        )  # fmt: skip
        venue = paper = PaperVenue(matching, lambda fill: engines[0].on_fill(fill))
    elif venue == "grpc" and config.grpc.protocol == "order-service":
        venue = OrderServiceVenue(config.grpc, clock, lambda update: engines[0].on_order_update(update))
    elif venue == "grpc":
        venue = GrpcVenue(config.grpc, clock)
    elif isinstance(venue, str):
        raise ValueError(f"venue: 'paper', 'grpc' or None, got {venue!r}")
    execution = ExecutionEngine(
        mode=config.engine.mode if venue is not None else "observation", ledger=ledger, book=book, risk=risk,
        aggregator=Aggregator(config.engine.aggregation_mode, weights),
        queue=SignalQueue(config.engine.signal_buffer_size), venue=venue, deliver=deliver, clock=clock,
        metrics=metrics.execution, resolve_interval_s=resolve_interval_s,
        persister=Persister(ledger, counters, book),
        disconnect_action=config.engine.disconnect_action, over_quota=over_quota,
    )  # fmt: skip
    engines.append(execution)
    metrics.watch_positions(book.all_strategy_positions)
    metrics.watch_ledger(ledger.path)
    return OrderPath(ledger, book, risk, execution, venue, paper)


def build(
    config: Config,
    definitions: list[StrategyDefinition],
    supervision: SupervisionSettings,
    policy: BreakerPolicy,
    *,
    ledger_path: Path,
    clock: Clocks,
    venue_kind: str | None,
    feed: FeedView | None = None,
    arrival: Arrival | None = None,
) -> Engine:
    """An Engine ready to run: ``venue_kind`` is "paper", "grpc" or None (observation)."""
    metrics = EngineMetrics(config.metrics.namespace)
    metrics.labels.allow_symbols(config.risk.allowed_symbols)
    positions = VenuePositions(PositionCheck(clock), mismatches=metrics.position_mismatches,
                               mismatched=metrics.positions_mismatched, labels=metrics.labels)  # fmt: skip
    holder: list[Supervisor] = []
    ledger = Ledger.open(ledger_path, durable=arrival is None)  # a backtest's ledger is scratch: no fsyncs
    path = order_path(config, ledger, venue_kind, clock=clock, deliver=_deliverer(holder, positions),
                      metrics=metrics, feed=feed, strategy_count=_strategy_count(holder),
                      over_quota=_over_quota(holder), arrival=arrival)  # fmt: skip
    supervisor = Supervisor(
        supervision, definitions, path.execution, breaker_policy=policy, metrics=metrics,
        state_store=LedgerStateStore(path.ledger, clock),
        clock=clock if arrival is not None else None,  # a backtest's breakers count simulated time
    )  # fmt: skip
    holder.append(supervisor)
    return Engine(
        config, supervisor, path.execution, path.ledger, path.book, path.venue, path.paper, metrics, positions
    )

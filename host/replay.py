"""A replay: recorded (or generated) market data through the engine as a live feed would bring it.

Model. ``ReplaySource`` is the replay's ``host.app.Source``: it waits until every strategy has
settled (Ready, or held open by a boot error), then hands each event to the engine in file order,
advancing the ``ReplayClock`` to the event's time first, so reference prices, UTC days and rate
windows follow the recording. Market data goes through ``Engine.on_market`` (books and the paper
venue's matching, then the strategies); recorded fills, positions, order updates and timers go to
the strategy they name. Before each event, every timer strategies scheduled that is due by its
time fires (``Supervisor.fire_timers``), in due order, the clock advanced to each one's time; a
timer due after the last event never fires. Timer requests reach the host with batch results,
which lag the feed (see below), so a timer due within that lag fires at the next event handed out,
stamped with its due time. The replay is paced by backpressure, never by a clock and never by conflation: every
32 events it waits while a running strategy has more than ``max_lag_events`` queued, so every
strategy sees every event it subscribed to. At the end it waits until every strategy has answered
everything queued for it and the order path is drained, then takes the ``RunReport``. Fills come
as the order path places orders, so two replays of one file may differ in what filled when: for
results to compare, ``host.backtest`` runs the same engine in lockstep, causal and deterministic.

``run_replay`` composes the engine for a replay (``host.app.compose``: same supervisor, watchers,
risk, execution and ledger as a live run; the paper venue, or none in observation mode; the HTTP
port only when asked; no CPU budget, as a backtest runs every runner as fast as it can) and
returns the report. The ledger is ``ledger_path`` when given (the
``--ledger`` option, or ``engine.ledgerPath`` when the config sets it), else a temporary file, so
two replays of the same inputs into fresh ledgers give the same results.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import structlog

from host.app import compose, default_shutdown
from host.assembly import Engine
from host.clock import ReplayClock
from host.config import Config
from host.risk.seams import FeedView
from host.supervisor.capture import CaptureRecord
from host.supervisor.managed import StrategyState, StrategyStatus
from host.supervisor.supervisor import Supervisor
from sdk.events import Event, Fill, OrderUpdate, Position, Timer

__all__ = ["REPRODUCE_HINT", "TEMP_CAPTURES", "ReplaySource", "RunReport", "StrategyReport", "run_replay", "summary"]

log = structlog.get_logger("host.replay")

_DRAIN_S = 30.0
# In the system's temporary folder: the crash captures of a run whose ledger is a temporary file.
TEMP_CAPTURES = "strategy-engine-captures"
REPRODUCE_HINT = "(strategy-engine reproduce CAPTURE runs a capture into its strategy in this process)"


@dataclass(frozen=True)
class StrategyReport:
    status: StrategyStatus
    orders: int
    fills: int
    rejections: dict[str, int]
    position: dict[str, float]
    realized: float
    unrealized: float


@dataclass(frozen=True)
class RunReport:
    events: int
    seconds: float
    mode: str
    strategies: list[StrategyReport]
    equity: float
    initial_balance: float
    captures: list[CaptureRecord] = field(default_factory=list)  # crash captures written during the run

    def strategy(self, strategy_id: str) -> StrategyReport:
        return next(r for r in self.strategies if r.status.id == strategy_id)


class ReplaySource:
    """Events from a file or a generator, in order, paced by the slowest strategy."""

    def __init__(
        self,
        events: Iterable[Event],
        clock: ReplayClock,
        *,
        max_lag_events: int = 128,
        progress: TextIO | None = None,
        total: int | None = None,
    ) -> None:
        self.events = events
        self.clock = clock
        self.max_lag_events = max_lag_events
        self.progress = progress
        self.total = total
        self.report: RunReport | None = None
        self._closed = False
        self._supervisor: Supervisor | None = None

    @property
    def feed(self) -> FeedView | None:
        return None  # event time decides staleness in a replay

    def bind(self, engine: Engine) -> None:
        self._supervisor = engine.supervisor  # the replay hands events to the engine itself

    def brokers(self) -> Mapping[str, bool]:
        return {}

    async def close(self) -> None:
        self._closed = True
        if self._supervisor is not None:
            self._supervisor.notify()  # every wait of ``run`` also ends on close

    async def run(self, engine: Engine) -> None:
        started = time.monotonic()
        supervisor = engine.supervisor
        count = 0
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(supervisor.settings.handshake_timeout_s):
                    await self._settled(supervisor)
            count = await self._replay(engine)
            if not self._closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_DRAIN_S):
                        await supervisor.until(lambda: self._closed or supervisor.quiescent())
                await engine.execution.drain()
        finally:
            self.report = report(engine, count, time.monotonic() - started)

    async def _replay(self, engine: Engine) -> int:
        supervisor, clock = engine.supervisor, self.clock
        count = 0
        last_report = time.monotonic()
        for event in self.events:
            if self._closed:
                break
            supervisor.fire_timers(event.timestamp_ns, clock.advance)  # timers due by now first, each at its time
            clock.advance(event.timestamp_ns)
            if isinstance(event, (Fill, Position, Timer, OrderUpdate)):
                for strategy_id in _owners(supervisor, event):
                    supervisor.deliver(strategy_id, event)
            else:
                engine.on_market(event)
            count += 1
            if count % 32 == 0:
                await supervisor.until(lambda: self._closed or supervisor.backlog() <= self.max_lag_events)
                await asyncio.sleep(0)  # let the runners' loops and the order path take what was queued
                if time.monotonic() - last_report >= (1.0 if self.progress is not None else 5.0):
                    last_report = time.monotonic()
                    self._report_progress(count)
        return count

    def _report_progress(self, count: int) -> None:
        """To the terminal when there is one (``progress``), else as a log event every 5 s."""
        if self.progress is not None:
            _progress(self.progress, count, self.total)
        else:
            log.info("replay_progress", events=count, total=self.total)

    async def _settled(self, supervisor: Supervisor) -> None:
        """Until every strategy is Ready, or has settled into a state where it will not be soon."""
        await supervisor.until(lambda: self._closed or supervisor.started.is_set())
        await supervisor.until(
            lambda: self._closed or all(s.state is not StrategyState.STARTING for s in supervisor.status())
        )
        # and has answered what it was sent so far (its on_start outputs: timers asked for there are
        # in the schedule before the first event)
        await supervisor.until(lambda: self._closed or supervisor.quiescent())


def _owners(supervisor: Supervisor, event: Fill | Position | Timer | OrderUpdate) -> list[str]:
    ids = [d.id for d in supervisor.definitions()]
    strategy = getattr(event, "strategy", "")
    return [strategy] if strategy in ids else ids if isinstance(event, Timer) else []


def report(engine: Engine, events: int, seconds: float) -> RunReport:
    """What the run did, per strategy, from the supervisor, the execution stats and the book."""
    stats = engine.execution.stats
    book = engine.book
    strategies = [
        StrategyReport(
            status=status,
            orders=stats.orders_by_strategy.get(status.id, 0),
            fills=stats.fills_by_strategy.get(status.id, 0),
            rejections=dict(stats.rejections.get(status.id, {})),
            position=dict(book.positions(status.id)),
            realized=book.realized(status.id),
            unrealized=book.unrealized(status.id),
        )
        for status in engine.supervisor.status()
    ]
    supervisor = engine.supervisor
    written = [r for r in supervisor.capture_records() if r.time >= supervisor.captures.opened]
    return RunReport(
        events, seconds, engine.execution.mode, strategies, book.equity(), book.initial_balance, written[::-1]
    )


async def run_replay(
    config: Config,
    events: Iterable[Event],
    *,
    shutdown: Awaitable[object] | None = None,
    progress: TextIO | None = None,
    total: int | None = None,
    root: Path | None = None,
    config_path: Path | None = None,
    ledger_path: Path | None = None,
    http: bool = False,
    max_lag_events: int = 128,
) -> RunReport:
    """Replay ``events`` through the configured strategies, risk and a paper venue; report what happened."""
    stop: Awaitable[object] = shutdown if shutdown is not None else default_shutdown()
    clock = ReplayClock()
    source = ReplaySource(events, clock, max_lag_events=max_lag_events, progress=progress, total=total)
    with tempfile.TemporaryDirectory(prefix="se-replay-") as scratch:
        app = compose(
            config, source, clock=clock, venue_kind=None if config.engine.mode == "observation" else "paper",
            ledger_path=ledger_path or Path(scratch) / "ledger.sqlite", root=root, config_path=config_path, http=http,
            real_time=False, capture_dir=None if ledger_path else Path(tempfile.gettempdir()) / TEMP_CAPTURES,
        )  # fmt: skip
        await app.run(stop)
    assert source.report is not None, "the replay source reports when it ends"
    return source.report


def _progress(out: TextIO, count: int, total: int | None) -> None:
    """One progress line for a terminal: written from column 0 and the cursor put back there, so the
    next log line (also from column 0) overwrites it instead of being glued to its end."""
    share = f" / {total:,} ({100 * count / total:.0f} %)" if total else ""
    out.write(f"\r  replayed {count:,}{share} events\x1b[K\r")
    out.flush()


def summary(report: RunReport, out: TextIO = sys.stdout) -> None:
    """The per-strategy table printed at the end of a replay."""
    rate = report.events / report.seconds if report.seconds > 0 else 0.0
    out.write(f"\nreplayed {report.events:,} events in {report.seconds:.1f} s ({rate:,.0f} events/s), "
              f"{report.mode} mode\n\n")  # fmt: skip
    header = ("strategy", "state", "breaker", "restarts", "events", "signals", "orders", "fills", "rejected",
              "position", "realized", "unrealized", "p50 ms", "p99 ms")  # fmt: skip
    rows = [header]
    for r in report.strategies:
        s = r.status
        position = ",".join(f"{sym}:{qty:+g}" for sym, qty in sorted(r.position.items())) or "flat"
        rows.append((
            s.id, s.state.value, s.breaker.state.value, str(s.restarts), f"{s.events_sent:,}", f"{s.signals:,}",
            f"{r.orders:,}", f"{r.fills:,}", f"{sum(r.rejections.values()):,}", position, f"{r.realized:,.2f}",
            f"{r.unrealized:,.2f}", _ms(s.latency_p50_us), _ms(s.latency_p99_us),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    for r in report.strategies:
        if r.rejections:
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(r.rejections.items(), key=lambda x: -x[1]))
            out.write(f"\n{r.status.id}: rejected by {reasons}")
        if r.status.last_error:
            out.write(f"\n{r.status.id}: last error: {r.status.last_error}")
    for capture in report.captures:
        out.write(f"\ncapture ({capture.kind}) of {capture.strategy}: {capture.path}")
    if report.captures:
        out.write(f"\n{REPRODUCE_HINT}")
    pnl = report.equity - report.initial_balance
    out.write(f"\n\nequity {report.equity:,.2f} (P&L {pnl:+,.2f} on {report.initial_balance:,.2f})\n")


def _ms(micros: float | None) -> str:
    return "-" if micros is None else f"{micros / 1000:.2f}"

"""What a backtest did, per strategy and overall: equity, round-trip trades, statistics. Pure and deterministic.

Model. The driver feeds an ``EquityRecorder`` in event order: ``mark`` for each market event's
price (candle close, tick or book mid, trade price), ``fill`` for each fill, ``rejection`` and
``breaker_event`` as they happen, and ``finish`` once at the end. Nothing here reads a clock: every
time is an event's.

Accounting, per strategy (each starts with ``initial_cash``; overall is their sum): a fill moves
``side * quantity * price + fee`` of cash and changes the position; equity is cash plus each
position valued at its symbol's last mark (the fill's own price until the symbol has a mark), so
equity = initial cash + realized + unrealized - fees.

Trades are round trips matched FIFO per strategy and symbol: a closing fill consumes the oldest open
lots first, and each lot (or part of one) it closes is one trade, so partial closes split; a fill
larger than the position closes it and opens the rest the other way (a flip). A trade's fees are
its share, by quantity, of its entry fill's fee and of its exit fill's. ``finish`` closes what is
still open at the last mark, at ``end_ns``, with exit reason ``end_of_data`` and a fee of
``end_fee_rate`` times the notional (that close is no venue fill: it counts in fees, not turnover).

Sampling. Time is cut into buckets of ``interval_ns`` aligned to the epoch; each bucket that any
event touched, and every one between, is sampled once, after its last event, labelled with the
bucket's end. Drawdown, Sharpe and Sortino are computed on these samples (``host.backtest.metrics``
states the formulas). Exposure is the share of the time from the first event to ``end_ns`` during
which the strategy held a position in any symbol (overall: any strategy did). Turnover is the traded
notional of fills over the initial cash.
"""

from __future__ import annotations

import json
import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from host.backtest import metrics
from host.errors import EngineError
from sdk._codec import format_timestamp
from sdk.events import Fill

__all__ = ["OVERALL", "BacktestReport", "EquityRecorder", "ResultsError", "Summary", "Trade", "round_floats"]

OVERALL = "overall"
END_OF_DATA = "end_of_data"
_FLAT = 1e-9  # a lot whose quantity falls below this share of its fill's quantity is closed


class ResultsError(EngineError):
    """The recorder was set up or fed something it cannot account for (a bad setting, a fill with no strategy)."""


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip: ``quantity`` opened at ``entry_price`` and closed at ``exit_price``."""

    strategy: str
    symbol: str
    side: str  # "long" or "short"
    quantity: float
    entry_ns: int
    entry_price: float
    exit_ns: int
    exit_price: float
    gross_pnl: float
    fees: float
    net_pnl: float
    exit_reason: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["entry_time"] = format_timestamp(self.entry_ns)
        out["exit_time"] = format_timestamp(self.exit_ns)
        return out


@dataclass(frozen=True)
class Summary:
    """The statistics of one strategy, or of all together (``OVERALL``)."""

    initial_cash: float
    final_equity: float
    pnl: float
    return_pct: float | None
    gross_pnl: float
    fees: float
    trades: int
    wins: int
    win_rate: float | None
    max_drawdown: float
    max_drawdown_pct: float | None
    sharpe: float | None
    sortino: float | None
    exposure: float | None
    turnover: float | None
    traded_notional: float
    rejections: dict[str, int]
    breaker_events: list[dict[str, Any]]


@dataclass(frozen=True)
class BacktestReport:
    """Summaries, trades and equity samples of one run; ``sections`` holds what the driver adds (``run``, ``data``).

    ``equity`` maps each strategy and ``OVERALL`` to one value per time in ``sample_times_ns``.
    """

    interval_ns: int
    start_ns: int | None
    end_ns: int
    strategies: dict[str, Summary]
    overall: Summary
    trades: tuple[Trade, ...]
    sample_times_ns: tuple[int, ...]
    equity: dict[str, tuple[float, ...]]
    sections: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the equity samples (equity.csv has those), as plain data."""
        body: dict[str, Any] = {
            "period": {
                "start": None if self.start_ns is None else format_timestamp(self.start_ns),
                "end": format_timestamp(self.end_ns),
                "sample_interval_s": self.interval_ns / 1e9,
                "samples": len(self.sample_times_ns),
            },
            "strategies": {name: asdict(summary) for name, summary in self.strategies.items()},
            OVERALL: asdict(self.overall),
            "trades": [trade.to_dict() for trade in self.trades],
        }
        body.update(self.sections)
        return body

    def to_json(self) -> str:
        """One JSON document, byte-stable: sorted keys, floats to 10 significant digits, no wall-clock times."""
        return json.dumps(round_floats(self.to_dict()), sort_keys=True, indent=2, allow_nan=False) + "\n"


def round_floats(value: Any) -> Any:
    """``value`` with every float rounded to 10 significant digits (NaN and infinities become None)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = float(f"{value:.10g}")
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, Mapping):
        return {str(key): round_floats(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(item) for item in value]
    return value


class _Lot:
    __slots__ = ("fee", "price", "quantity", "timestamp_ns")

    def __init__(self, timestamp_ns: int, price: float, quantity: float, fee: float) -> None:
        self.timestamp_ns = timestamp_ns
        self.price = price
        self.quantity = quantity  # open quantity left, > 0
        self.fee = fee  # the part of the entry fee not yet charged to a trade


class _Account:
    """One strategy's cash, FIFO lots per symbol, trades and counters."""

    def __init__(self, name: str, cash: float) -> None:
        self.name = name
        self.initial = cash
        self.cash = cash
        self.lots: dict[str, deque[_Lot]] = {}
        self.signs: dict[str, int] = {}  # symbol -> +1 long, -1 short (only while lots are open)
        self.positions: dict[str, float] = {}  # symbol -> signed open quantity (the lots' sum, kept)
        self.trades: list[Trade] = []
        self.fees = 0.0
        self.notional = 0.0
        self.rejections: Counter[str] = Counter()
        self.breakers: list[dict[str, Any]] = []
        self.exposed_ns = 0
        self.exposed_since: int | None = None
        self.samples: list[float] = []

    def position(self, symbol: str) -> float:
        return self.positions.get(symbol, 0.0)

    def equity(self, marks: Mapping[str, float]) -> float:
        """Cash plus the open positions at ``marks``; sampled every interval, so kept cheap."""
        if not self.positions:
            return self.cash
        return self.cash + math.fsum([quantity * marks[symbol] for symbol, quantity in self.positions.items()])

    def trade(self, symbol: str, sign: int, quantity: float, price: float, fee: float, ts: int, reason: str) -> None:
        """Book one execution: cash, then close lots FIFO (one trade each), then open what is left."""
        self.cash -= sign * quantity * price + fee
        self.fees += fee
        lots = self.lots.setdefault(symbol, deque())
        left = quantity
        if lots and self.signs[symbol] != sign:
            left = self._close(symbol, lots, quantity, price, fee, ts, reason)
        if left > _FLAT * quantity:
            lots.append(_Lot(ts, price, left, fee * left / quantity))
            self.signs[symbol] = sign
        if lots:
            self.positions[symbol] = self.signs[symbol] * math.fsum(lot.quantity for lot in lots)
        else:
            del self.lots[symbol]
            self.signs.pop(symbol, None)
            self.positions.pop(symbol, None)

    def _close(
        self, symbol: str, lots: deque[_Lot], quantity: float, price: float, fee: float, ts: int, reason: str
    ) -> float:
        left = quantity
        direction = self.signs[symbol]
        while lots and left > _FLAT * quantity:
            lot = lots[0]
            size = min(lot.quantity, left)
            entry_fee = lot.fee * size / lot.quantity
            fees = entry_fee + fee * size / quantity
            gross = direction * (price - lot.price) * size
            self.trades.append(
                Trade(
                    strategy=self.name, symbol=symbol, side="long" if direction > 0 else "short", quantity=size,
                    entry_ns=lot.timestamp_ns, entry_price=lot.price, exit_ns=ts, exit_price=price,
                    gross_pnl=gross, fees=fees, net_pnl=gross - fees, exit_reason=reason,
                )
            )  # fmt: skip
            lot.quantity -= size
            lot.fee -= entry_fee
            left -= size
            if lot.quantity <= _FLAT * size:
                lots.popleft()
        return left


class EquityRecorder:
    """Accounts the fills of a backtest's strategies against its market prices; ``finish`` gives the report."""

    def __init__(
        self,
        *,
        initial_cash: float,
        interval_ns: int,
        strategies: Iterable[str] = (),
        end_fee_rate: float = 0.0,
    ) -> None:
        if not (math.isfinite(initial_cash) and initial_cash > 0):
            raise ResultsError(f"initial_cash: must be > 0, got {initial_cash}")
        if interval_ns <= 0:
            raise ResultsError(f"interval_ns: must be > 0, got {interval_ns}")
        if not (math.isfinite(end_fee_rate) and end_fee_rate >= 0):
            raise ResultsError(f"end_fee_rate: must be >= 0, got {end_fee_rate}")
        self.initial_cash = initial_cash
        self.interval_ns = interval_ns
        self.end_fee_rate = end_fee_rate
        self._accounts: dict[str, _Account] = {}
        self._marks: dict[str, float] = {}
        self._times: list[int] = []
        self._start: int | None = None
        self._last = 0
        self._bucket_end = 0
        self._exposed = 0  # strategies holding a position now
        self._exposed_since = 0
        self._exposed_ns = 0
        self._finished = False
        for name in strategies:
            self._account(name)

    # ------------------------------------------------------------ what the driver feeds

    def mark(self, timestamp_ns: int, symbol: str, price: float) -> None:
        """The latest market price of ``symbol`` (candle close, tick or book mid, trade price).

        Called for every market event, so it only compares and stores; an event stamped before the
        last one (the driver feeds them in order) counts as happening at the last one's time.
        """
        if timestamp_ns >= self._bucket_end:
            self._advance(timestamp_ns)
        self._marks[symbol] = price

    def fill(self, fill: Fill, *, exit_reason: str = "signal") -> None:
        """One fill of ``fill.strategy``; what it closes becomes trades with ``exit_reason``."""
        if not fill.strategy:
            raise ResultsError(f"fill {fill.fill_id}: no strategy (every backtest fill names its strategy)")
        ts = max(fill.timestamp_ns, self._last)
        if ts >= self._bucket_end:
            self._advance(ts)
        account = self._account(fill.strategy)
        self._marks.setdefault(fill.symbol, fill.price)
        was_exposed = bool(account.lots)
        quantity, price = float(fill.quantity), float(fill.price)
        account.trade(fill.symbol, fill.side.sign, quantity, price, float(fill.fee), ts, exit_reason)
        account.notional += quantity * price
        self._exposure(account, was_exposed, ts)

    def rejection(self, strategy: str, rule: str) -> None:
        """A signal of ``strategy`` that risk (or aggregation) turned down, by the rule that did."""
        self._account(strategy).rejections[rule or "unknown"] += 1

    def breaker_event(self, strategy: str, timestamp_ns: int, kind: str, detail: str) -> None:
        """A circuit breaker event of ``strategy`` (opened, restarted, ...), in simulated time."""
        event = {"time": format_timestamp(timestamp_ns), "kind": kind, "detail": detail}
        self._account(strategy).breakers.append(event)

    def finish(self, end_ns: int) -> BacktestReport:
        """Close what is open at the last marks (exit reason ``end_of_data``), sample the last bucket, report."""
        if self._finished:
            raise ResultsError("finish: already called (a recorder reports once)")
        if end_ns < self._last:
            raise ResultsError(f"finish: end {format_timestamp(end_ns)} is before the last event "
                               f"{format_timestamp(self._last)}")  # fmt: skip
        self._finished = True
        for account in self._accounts.values():
            for symbol in sorted(account.lots):
                quantity = account.position(symbol)
                price = self._marks[symbol]
                fee = abs(quantity) * price * self.end_fee_rate
                account.trade(symbol, -1 if quantity > 0 else 1, abs(quantity), price, fee, end_ns, END_OF_DATA)
            self._exposure(account, True, end_ns)
        if self._start is not None:
            self._sample()
        return self._report(end_ns)

    # ------------------------------------------------------------ internals

    def _account(self, name: str) -> _Account:
        account = self._accounts.get(name)
        if account is None:
            account = self._accounts[name] = _Account(name, self.initial_cash)
            account.samples = [self.initial_cash] * len(self._times)
        return account

    def _advance(self, ts: int) -> None:
        """Sample every bucket that ends at or before ``ts`` and open the bucket holding ``ts``."""
        if self._start is None:
            self._start = ts
        else:
            while self._bucket_end <= ts:
                self._sample()
                self._bucket_end += self.interval_ns
        self._last = ts
        self._bucket_end = ts - ts % self.interval_ns + self.interval_ns

    def _sample(self) -> None:
        self._times.append(self._bucket_end)
        for account in self._accounts.values():
            account.samples.append(account.equity(self._marks))

    def _exposure(self, account: _Account, was_exposed: bool, ts: int) -> None:
        exposed = bool(account.lots) and not self._finished
        if exposed and not was_exposed:
            account.exposed_since = ts
            if self._exposed == 0:
                self._exposed_since = ts
            self._exposed += 1
        elif was_exposed and not exposed and account.exposed_since is not None:
            account.exposed_ns += ts - account.exposed_since
            account.exposed_since = None
            self._exposed -= 1
            if self._exposed == 0:
                self._exposed_ns += ts - self._exposed_since

    def _report(self, end_ns: int) -> BacktestReport:
        span = None if self._start is None else end_ns - self._start
        summaries = {name: self._summary([account], account.exposed_ns, span) for name, account in
                     sorted(self._accounts.items())}  # fmt: skip
        accounts = [self._accounts[name] for name in sorted(self._accounts)]
        equity = {name: tuple(self._accounts[name].samples) for name in summaries}
        equity[OVERALL] = tuple(math.fsum(values) for values in zip(*equity.values(), strict=True)) if equity else ()
        if not accounts:
            equity[OVERALL] = (0.0,) * len(self._times)
        return BacktestReport(
            interval_ns=self.interval_ns, start_ns=self._start, end_ns=end_ns, strategies=summaries,
            overall=self._summary(accounts, self._exposed_ns, span),
            trades=tuple(t for a in accounts for t in a.trades), sample_times_ns=tuple(self._times), equity=equity,
        )  # fmt: skip

    def _summary(self, accounts: list[_Account], exposed_ns: int, span: int | None) -> Summary:
        initial = math.fsum(a.initial for a in accounts)
        samples = [math.fsum(values) for values in zip(*(a.samples for a in accounts), strict=True)]
        final = math.fsum(a.cash for a in accounts)  # every position is closed by now
        trades = [t for a in accounts for t in a.trades]
        wins = sum(1 for t in trades if t.net_pnl > 0)
        down, down_pct = metrics.max_drawdown(initial, samples)
        period_returns = metrics.returns(initial, samples)
        notional = math.fsum(a.notional for a in accounts)
        rejections: Counter[str] = Counter()
        for a in accounts:
            rejections.update(a.rejections)
        breakers = [{"strategy": a.name, **event} for a in accounts for event in a.breakers]
        return Summary(
            initial_cash=initial, final_equity=final, pnl=final - initial,
            return_pct=(final - initial) / initial * 100 if initial > 0 else None,
            gross_pnl=math.fsum(t.gross_pnl for t in trades), fees=math.fsum(a.fees for a in accounts),
            trades=len(trades), wins=wins, win_rate=wins / len(trades) if trades else None,
            max_drawdown=down, max_drawdown_pct=None if down_pct is None else down_pct * 100,
            sharpe=metrics.sharpe(period_returns, self.interval_ns),
            sortino=metrics.sortino(period_returns, self.interval_ns),
            exposure=exposed_ns / span if span else None,
            turnover=notional / initial if initial > 0 else None, traded_notional=notional,
            rejections=dict(sorted(rejections.items())), breaker_events=breakers,
        )  # fmt: skip

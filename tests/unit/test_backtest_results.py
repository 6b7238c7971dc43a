"""The backtest's results: hand-computed equity, trades (FIFO, partial closes, flips), statistics, JSON."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from host.backtest import metrics
from host.backtest.results import OVERALL, BacktestReport, EquityRecorder, ResultsError, Trade, round_floats
from sdk.events import Fill, Side

S = 1_000_000_000
MINUTE = 60 * S
DAY = 86_400 * S
T = 1_700_000_040 * S  # a whole minute
_ids = itertools.count(1)


def fill(side: str, quantity: float, price: float, ts: int, fee: float = 0.0, strategy: str = "mom",
         symbol: str = "X") -> Fill:  # fmt: skip
    return Fill(fill_id=f"f{next(_ids)}", order_id="", symbol=symbol, side=Side(side), price=price,
                quantity=quantity, timestamp_ns=ts, fee=fee, strategy=strategy)  # fmt: skip


def trade_tuple(t: Trade) -> tuple[object, ...]:
    return (t.side, t.quantity, t.entry_price, t.exit_price, round(t.gross_pnl, 9), round(t.fees, 9),
            round(t.net_pnl, 9), t.exit_reason)  # fmt: skip


def scenario() -> BacktestReport:
    """One long round trip over five minutes, one bucket without events (numbers worked out in the tests)."""
    rec = EquityRecorder(initial_cash=1000.0, interval_ns=MINUTE, strategies=["mom"])
    rec.mark(T, "X", 10.0)
    rec.fill(fill("buy", 10, 10.0, T + 10 * S, fee=1.0))
    rec.mark(T + 30 * S, "X", 11.0)
    rec.mark(T + 70 * S, "X", 12.0)
    rec.mark(T + 200 * S, "X", 9.0)
    rec.fill(fill("sell", 10, 9.0, T + 210 * S, fee=0.9))
    rec.mark(T + 230 * S, "X", 9.5)
    return rec.finish(T + 240 * S)


class TestEquity:
    def test_samples_once_per_bucket_at_its_end_gaps_included(self) -> None:
        """Equity is sampled at each bucket's end after its last event; an empty bucket repeats the last value."""
        report = scenario()
        assert report.sample_times_ns == (T + MINUTE, T + 2 * MINUTE, T + 3 * MINUTE, T + 4 * MINUTE)
        # cash 1000 - 100 - 1 = 899, + 10 x mark; then 899 + 90 - 0.9 = 988.1 flat
        assert report.equity["mom"] == pytest.approx((1009.0, 1019.0, 1019.0, 988.1))
        assert report.equity[OVERALL] == report.equity["mom"]

    def test_summary_numbers(self) -> None:
        """P&L, return, fees, drawdown (abs and %), exposure and turnover of the scenario, by hand."""
        s = scenario().strategies["mom"]
        assert s.pnl == pytest.approx(-11.9)
        assert s.return_pct == pytest.approx(-1.19)
        assert s.fees == pytest.approx(1.9)
        assert s.max_drawdown == pytest.approx(1019.0 - 988.1)
        assert s.max_drawdown_pct == pytest.approx((1019.0 - 988.1) / 1019.0 * 100)
        assert s.exposure == pytest.approx(200 / 240)  # long from +10 s to +210 s of 240 s
        assert s.turnover == pytest.approx((100 + 90) / 1000)
        assert (s.trades, s.wins, s.win_rate) == (1, 0, 0.0)

    def test_sharpe_and_sortino_from_the_samples(self) -> None:
        """Sharpe and Sortino use the per-bucket returns, annualised by minutes in a 365-day year."""
        s = scenario().strategies["mom"]
        r = [1009 / 1000 - 1, 1019 / 1009 - 1, 0.0, 988.1 / 1019 - 1]
        mean = sum(r) / 4
        std = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
        downside = math.sqrt((988.1 / 1019 - 1) ** 2 / 4)
        per_year = math.sqrt(365 * 24 * 60)
        assert s.sharpe == pytest.approx(mean / std * per_year)
        assert s.sortino == pytest.approx(mean / downside * per_year)

    def test_fill_before_any_mark_values_the_position_at_its_price(self) -> None:
        """Until a symbol has a mark, its position is valued at the fill's price."""
        rec = EquityRecorder(initial_cash=100.0, interval_ns=MINUTE)
        rec.fill(fill("buy", 1, 50.0, T))
        report = rec.finish(T + S)
        assert report.equity["mom"] == (100.0,)

    def test_strategy_seen_late_has_initial_cash_before(self) -> None:
        """A strategy first seen after some samples gets its initial cash for them; overall is the sum."""
        rec = EquityRecorder(initial_cash=100.0, interval_ns=MINUTE, strategies=["a"])
        rec.mark(T, "X", 10.0)
        rec.mark(T + 2 * MINUTE, "X", 10.0)
        rec.fill(fill("buy", 1, 10.0, T + 2 * MINUTE, fee=0.5, strategy="b"))
        report = rec.finish(T + 2 * MINUTE)
        assert report.equity["b"] == (100.0, 100.0, 99.5)
        assert report.equity[OVERALL] == (200.0, 200.0, 199.5)
        assert report.overall.initial_cash == 200.0


class TestTrades:
    def test_fifo_with_partial_close_and_end_of_data(self) -> None:
        """A close consumes the oldest lots first, splitting a lot it closes in part; fees go by quantity."""
        rec = EquityRecorder(initial_cash=10_000.0, interval_ns=MINUTE)
        rec.fill(fill("buy", 1, 100.0, T, fee=1.0))
        rec.fill(fill("buy", 1, 110.0, T + S, fee=1.1))
        rec.fill(fill("sell", 1.5, 120.0, T + 2 * S, fee=1.8))
        rec.mark(T + 3 * S, "X", 130.0)
        report = rec.finish(T + 4 * S)
        assert [trade_tuple(t) for t in report.trades] == [
            ("long", 1.0, 100.0, 120.0, 20.0, 2.2, 17.8, "signal"),  # fees 1.0 + 1.8 x 1/1.5
            ("long", 0.5, 110.0, 120.0, 5.0, 1.15, 3.85, "signal"),  # 1.1 x 0.5 + 1.8 x 0.5/1.5
            ("long", 0.5, 110.0, 130.0, 10.0, 0.55, 9.45, "end_of_data"),  # the rest of lot 2, its fee left
        ]
        assert [(t.entry_ns - T, t.exit_ns - T) for t in report.trades] == [(0, 2 * S), (S, 2 * S), (S, 4 * S)]
        summary = report.strategies["mom"]
        assert summary.pnl == pytest.approx(31.1)
        assert summary.pnl == pytest.approx(sum(t.net_pnl for t in report.trades))
        assert summary.fees == pytest.approx(3.9)
        assert summary.gross_pnl == pytest.approx(35.0)

    def test_flip_long_to_short_in_one_fill(self) -> None:
        """A sell larger than the long closes it and opens the rest short, the fee split by quantity."""
        rec = EquityRecorder(initial_cash=1000.0, interval_ns=MINUTE)
        rec.fill(fill("buy", 1, 100.0, T, fee=0.5))
        rec.fill(fill("sell", 3, 90.0, T + S, fee=1.5))
        rec.fill(fill("buy", 2, 80.0, T + 2 * S, fee=0.8))
        report = rec.finish(T + 3 * S)
        assert [trade_tuple(t) for t in report.trades] == [
            ("long", 1.0, 100.0, 90.0, -10.0, 1.0, -11.0, "signal"),
            ("short", 2.0, 90.0, 80.0, 20.0, 1.8, 18.2, "signal"),
        ]
        summary = report.strategies["mom"]
        assert (summary.trades, summary.wins, summary.win_rate) == (2, 1, 0.5)
        assert summary.pnl == pytest.approx(7.2)

    def test_end_of_data_close_charges_the_end_fee_rate_not_turnover(self) -> None:
        """finish closes a short at the last mark with end_fee_rate x notional; turnover counts venue fills only."""
        rec = EquityRecorder(initial_cash=1000.0, interval_ns=MINUTE, end_fee_rate=0.001)
        rec.fill(fill("sell", 2, 50.0, T))
        rec.mark(T + S, "X", 40.0)
        report = rec.finish(T + 10 * S)
        (trade,) = report.trades
        assert trade_tuple(trade) == ("short", 2.0, 50.0, 40.0, 20.0, 0.08, 19.92, "end_of_data")
        assert trade.exit_ns == T + 10 * S
        summary = report.strategies["mom"]
        assert summary.turnover == pytest.approx(0.1)
        assert summary.exposure == 1.0
        assert report.equity["mom"] == pytest.approx((1019.92,))

    def test_symbols_and_strategies_are_matched_apart(self) -> None:
        """Lots are per strategy and symbol: a sell of another symbol or strategy closes nothing."""
        rec = EquityRecorder(initial_cash=1000.0, interval_ns=MINUTE)
        rec.fill(fill("buy", 1, 10.0, T, strategy="a", symbol="X"))
        rec.fill(fill("sell", 1, 20.0, T + S, strategy="a", symbol="Y"))
        rec.fill(fill("sell", 1, 30.0, T + 2 * S, strategy="b", symbol="X"))
        report = rec.finish(T + 3 * S)
        assert [(t.strategy, t.symbol, t.side, t.exit_reason) for t in report.trades] == [
            ("a", "X", "long", "end_of_data"),
            ("a", "Y", "short", "end_of_data"),
            ("b", "X", "short", "end_of_data"),
        ]


class TestOverall:
    def test_two_strategies_sum_and_exposure_is_the_union(self) -> None:
        """Overall equity and P&L are the sum; overall exposure is the time any strategy held a position."""
        rec = EquityRecorder(initial_cash=500.0, interval_ns=MINUTE, strategies=["a", "b"])
        rec.mark(T, "X", 10.0)
        rec.fill(fill("buy", 1, 10.0, T, strategy="a"))
        rec.fill(fill("buy", 1, 10.0, T + 30 * S, strategy="b"))
        rec.fill(fill("sell", 1, 12.0, T + 60 * S, strategy="a"))
        rec.fill(fill("sell", 1, 9.0, T + 90 * S, strategy="b"))
        report = rec.finish(T + 120 * S)
        assert report.strategies["a"].exposure == 0.5
        assert report.strategies["b"].exposure == 0.5
        assert report.overall.exposure == 0.75
        assert report.overall.pnl == pytest.approx(1.0)
        assert report.overall.initial_cash == 1000.0
        assert report.overall.trades == 2
        assert report.overall.win_rate == 0.5

    def test_rejections_by_rule_and_breaker_events(self) -> None:
        """Rejections are counted per rule and strategy, summed overall; breaker events are listed in order."""
        rec = EquityRecorder(initial_cash=100.0, interval_ns=MINUTE, strategies=["a"])
        rec.rejection("a", "max_position_size")
        rec.rejection("a", "max_position_size")
        rec.rejection("b", "max_order_notional")
        rec.breaker_event("b", T, "opened", "5 errors in 60 s")
        report = rec.finish(T)
        assert report.strategies["a"].rejections == {"max_position_size": 2}
        assert report.overall.rejections == {"max_order_notional": 1, "max_position_size": 2}
        assert report.overall.breaker_events == [
            {"strategy": "b", "time": "2023-11-14T22:14:00.000000000Z", "kind": "opened", "detail": "5 errors in 60 s"}
        ]

    def test_no_events_at_all(self) -> None:
        """A run with no events reports its strategies with no samples and undefined statistics."""
        report = EquityRecorder(initial_cash=100.0, interval_ns=MINUTE, strategies=["a"]).finish(T)
        summary = report.strategies["a"]
        assert (summary.pnl, summary.trades, summary.sharpe, summary.exposure, summary.win_rate) == (
            0.0, 0, None, None, None)  # fmt: skip
        assert report.sample_times_ns == ()
        json.loads(report.to_json())


class TestMetrics:
    def test_drawdown_abs_and_pct_may_come_from_different_troughs(self) -> None:
        """100 -> 50 is -50 (50 %); 200 -> 120 is -80 (40 %): max abs 80, max % 50."""
        assert metrics.max_drawdown(100.0, [50.0, 200.0, 120.0]) == (80.0, 0.5)

    def test_sharpe_and_sortino_by_hand(self) -> None:
        """Returns +10 %, -10 %, +10 %, +20 % a day: mean 0.075, sample std sqrt(0.0475/3), downside 0.05."""
        equity = [110.0, 99.0, 108.9, 130.68]
        r = metrics.returns(100.0, equity)
        assert r == pytest.approx([0.1, -0.1, 0.1, 0.2])
        assert metrics.sharpe(r, DAY) == pytest.approx(0.075 / math.sqrt(0.0475 / 3) * math.sqrt(365))
        assert metrics.sortino(r, DAY) == pytest.approx(0.075 / 0.05 * math.sqrt(365))

    @pytest.mark.parametrize("r", [None, [], [0.1], [0.01, 0.01, 0.01]])
    def test_sharpe_undefined(self, r: list[float] | None) -> None:
        """Fewer than two returns, or no variation, leave Sharpe undefined (None)."""
        assert metrics.sharpe(r, DAY) is None

    def test_sortino_without_a_losing_period_is_undefined(self) -> None:
        """No period below 0 means no downside deviation: Sortino is None."""
        assert metrics.sortino([0.1, 0.2, 0.0], DAY) is None

    def test_returns_undefined_after_equity_at_or_below_zero(self) -> None:
        """A base at or below zero makes the return series (and so Sharpe) undefined."""
        assert metrics.returns(100.0, [0.0, 10.0]) is None
        assert metrics.max_drawdown(100.0, [-10.0, 5.0]) == (110.0, 1.1)


class TestJson:
    def test_same_input_gives_the_same_bytes(self) -> None:
        """Two recorders fed the same events give byte-identical JSON."""
        assert scenario().to_json() == scenario().to_json()

    def test_document_shape(self) -> None:
        """One document: period, strategies, overall, trades (with ISO times) and the driver's sections."""
        report = scenario()
        report.sections["run"] = {"strategies": ["mom"], "fees_bps": 10.0}
        doc = json.loads(report.to_json())
        assert sorted(doc) == ["overall", "period", "run", "strategies", "trades"]
        assert doc["period"] == {"start": "2023-11-14T22:14:00.000000000Z", "end": "2023-11-14T22:18:00.000000000Z",
                                 "sample_interval_s": 60.0, "samples": 4}  # fmt: skip
        assert doc["trades"][0]["entry_time"] == "2023-11-14T22:14:10.000000000Z"
        assert doc["strategies"]["mom"]["pnl"] == -11.9  # rounded to 10 significant digits
        assert doc["run"]["fees_bps"] == 10.0

    def test_keys_are_sorted(self) -> None:
        """Keys come sorted at every level, so a dict's insertion order never changes the bytes."""
        text = scenario().to_json()
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"

    def test_round_floats(self) -> None:
        """Floats keep 10 significant digits; -0.0 is 0.0; NaN and infinities become null."""
        assert round_floats({"a": [0.1 + 0.2, -0.0, math.nan, math.inf, 1 / 3, 7, True]}) == {
            "a": [0.3, 0.0, None, None, 0.3333333333, 7, True]}  # fmt: skip


class TestBadUse:
    def test_fill_without_strategy(self) -> None:
        """A fill that names no strategy cannot be accounted and is refused, naming the fill."""
        rec = EquityRecorder(initial_cash=100.0, interval_ns=MINUTE)
        with pytest.raises(ResultsError, match=r"fill f\d+: no strategy"):
            rec.fill(fill("buy", 1, 1.0, T, strategy=""))

    def test_end_before_the_last_event(self) -> None:
        """finish with an end before the last event is refused, naming both times."""
        rec = EquityRecorder(initial_cash=100.0, interval_ns=MINUTE)
        rec.mark(T + 2 * MINUTE, "X", 1.0)
        rec.mark(T + 3 * MINUTE, "X", 1.0)
        with pytest.raises(ResultsError, match=r"finish: end 2023-11-14T22:14:00\.0+Z is before the last event 20"):
            rec.finish(T)

    def test_finish_once(self) -> None:
        """A recorder reports once."""
        rec = EquityRecorder(initial_cash=100.0, interval_ns=MINUTE)
        rec.finish(T)
        with pytest.raises(ResultsError, match="already called"):
            rec.finish(T)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"initial_cash": 0.0}, "initial_cash: must be > 0, got 0.0"),
            ({"initial_cash": math.nan}, "initial_cash: must be > 0"),
            ({"interval_ns": 0}, "interval_ns: must be > 0, got 0"),
            ({"end_fee_rate": -0.1}, "end_fee_rate: must be >= 0, got -0.1"),
        ],
    )
    def test_bad_settings_named(self, kwargs: dict[str, float], message: str) -> None:
        """Bad settings are refused, naming the setting and the value."""
        settings = {"initial_cash": 100.0, "interval_ns": MINUTE, **kwargs}
        with pytest.raises(ResultsError, match=message):
            EquityRecorder(**settings)  # type: ignore[arg-type]

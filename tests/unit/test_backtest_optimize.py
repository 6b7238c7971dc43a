"""Parameter sweeps: grid parsing and expansion, windows, ranking, stitching, and the spawned process pool.

The backtests here come from ``fake_backtest``, a module-level runner (spawned workers import it by
name) that turns a job's parameters and bounds into a real ``EquityRecorder`` report: one unit
bought at 100, marked each hour on a price path set by the parameter ``drift`` and the day
(rising on even days, falling on odd ones), so which drift is best depends on the window.
"""

from __future__ import annotations

import json
import math
import os
import pickle

import pytest

from host.backtest.data import DataError
from host.backtest.optimize import (
    GridAxis,
    Job,
    JobResult,
    OptimizeError,
    expand_grid,
    parse_duration,
    parse_grid,
    parse_walk_forward,
    rank,
    roll_windows,
    run_jobs,
    stitch,
    sweep,
    to_json,
    walk_forward,
)
from host.backtest.results import BacktestReport, EquityRecorder
from sdk.events import Fill, Side

HOUR = 3600 * 10**9
DAY = 24 * HOUR
T0 = 19_700 * DAY  # a whole day (2023-12-09)


def curve_report(prices: list[float], start_ns: int = T0, interval_ns: int = HOUR) -> BacktestReport:
    """A report whose overall equity samples are ``prices`` (one unit bought at 100 with 100 of cash)."""
    recorder = EquityRecorder(initial_cash=100.0, interval_ns=interval_ns, strategies=["s"])
    recorder.fill(Fill(fill_id="f", order_id="o", symbol="X", side=Side.BUY, price=100.0, quantity=1.0,
                       timestamp_ns=start_ns, strategy="s"))  # fmt: skip
    for i, price in enumerate(prices):
        recorder.mark(start_ns + i * interval_ns, "X", price)
    return recorder.finish(start_ns + (len(prices) - 1) * interval_ns)


def fake_backtest(job: Job) -> BacktestReport:
    drift = job.params["drift"]
    if drift == "boom":
        raise RuntimeError("the strategy blew up")
    if drift == "die":
        os._exit(3)  # the worker process dies as a segfaulting backtest's would
    start = T0 if job.start_ns is None else job.start_ns
    end = T0 + 10 * DAY if job.end_ns is None else job.end_ns
    prices, price = [], 100.0
    for ts in range(start, end, HOUR):
        price += drift * (1 if (ts // DAY) % 2 == 0 else -1)
        prices.append(max(price, 1.0))
    return curve_report(prices, start)


class TestGrid:
    def test_values_are_typed(self) -> None:
        """Values read as YAML scalars: ints, floats, bools, and text for anything else."""
        axes = parse_grid(["lookback=10,20,40", "threshold=0.001,2e-3", "fast=True,false", "mode=ema,sma"])
        assert axes == [
            GridAxis("lookback", (10, 20, 40)), GridAxis("threshold", (0.001, 0.002)),
            GridAxis("fast", (True, False)), GridAxis("mode", ("ema", "sma")),
        ]  # fmt: skip
        assert [type(v) for v in axes[0].values + axes[1].values] == [int, int, int, float, float]

    def test_expansion_first_axis_slowest(self) -> None:
        """Combinations come with the first --grid varying slowest, values in the order written."""
        combos = expand_grid(parse_grid(["a=1,2", "b=x,y,z"]))
        assert combos == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                          {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]  # fmt: skip

    @pytest.mark.parametrize(
        ("texts", "message"),
        [
            (["lookback"], "--grid: expected NAME=V1,V2,... (e.g. lookback=10,20,40), got 'lookback'"),
            (["=1,2"], "--grid: expected NAME=V1,V2,..."),
            (["x y=1"], "--grid: expected NAME=V1,V2,..."),
            (["a=1,,2"], "--grid a: an empty value in '1,,2'"),
            (["a="], "--grid a: an empty value in ''"),
            (["a=1", "a=2"], "--grid a: given twice: put all its values in one --grid"),
            (["a=1,1.0"], "--grid a: a value is given twice in '1,1.0'"),
            (["a=1,nan"], "--grid a: expected a finite number, got 'nan'"),
            (["a=x,X,x"], "--grid a: a value is given twice in 'x,X,x'"),
            ([], "--grid: no grid given"),
        ],
    )
    def test_bad_grid_is_named(self, texts: list[str], message: str) -> None:
        """A malformed --grid is refused naming the option, the parameter and what was wrong."""
        with pytest.raises(OptimizeError) as caught:
            parse_grid(texts)
        assert str(caught.value).startswith(message)


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "ns"),
        [("30s", 30 * 10**9), ("90m", 90 * 60 * 10**9), ("90min", 90 * 60 * 10**9), ("12h", 12 * HOUR),
         ("7d", 7 * DAY), ("2w", 14 * DAY), ("1.5d", 36 * HOUR)],
    )  # fmt: skip
    def test_units(self, text: str, ns: int) -> None:
        """Seconds, minutes, hours, days and weeks, fractions allowed."""
        assert parse_duration(text) == ns

    @pytest.mark.parametrize("text", ["7", "d", "0d", "-1d", "7 days", "1y"])
    def test_bad_duration(self, text: str) -> None:
        """Anything else is refused naming the option and the value."""
        with pytest.raises(OptimizeError, match=r"^--walk-forward: expected a duration like 7d"):
            parse_duration(text)

    def test_walk_forward_pair(self) -> None:
        """TRAIN,TEST gives both; one value or three are refused."""
        assert parse_walk_forward("7d,1d") == (7 * DAY, DAY)
        with pytest.raises(OptimizeError, match=r"expected TRAIN,TEST \(e\.g\. 7d,1d\), got '7d'"):
            parse_walk_forward("7d")


class TestWindows:
    def test_roll_by_the_test_length(self) -> None:
        """10 days, train 7, test 1: three windows, each stepping one day."""
        windows = roll_windows(T0, T0 + 10 * DAY, 7 * DAY, DAY)
        assert [((w.train_start - T0) // DAY, (w.train_end - T0) // DAY, (w.test_end - T0) // DAY)
                for w in windows] == [(0, 7, 8), (1, 8, 9), (2, 9, 10)]  # fmt: skip

    def test_last_test_window_is_cut_at_the_end(self) -> None:
        """A span that ends inside a test window gives a short last test."""
        windows = roll_windows(T0, T0 + 9 * DAY + 12 * HOUR, 7 * DAY, DAY)
        assert windows[-1].test_end - windows[-1].train_end == 12 * HOUR

    def test_span_too_short(self) -> None:
        """A span no longer than one train window is refused, saying both lengths."""
        with pytest.raises(OptimizeError, match="the data spans 7 days: too short for one train window of 7 days"):
            roll_windows(T0, T0 + 7 * DAY, 7 * DAY, DAY)

    def test_describe(self) -> None:
        """A window describes its train and test spans in ISO times."""
        (window,) = roll_windows(T0, T0 + 2 * DAY, DAY, DAY)
        assert window.describe() == {"index": 0, "train": ["2023-12-09T00:00:00.000000000Z",
                                     "2023-12-10T00:00:00.000000000Z"], "test": ["2023-12-10T00:00:00.000000000Z",
                                     "2023-12-11T00:00:00.000000000Z"]}  # fmt: skip


def result(index: int, prices: list[float] | None) -> JobResult:
    job = Job(index, {"i": index})
    return JobResult(job, curve_report(prices)) if prices is not None else JobResult(job, error="boom")


class TestRank:
    def test_higher_is_better_ties_by_grid_index(self) -> None:
        """By P&L: the best first, equal P&L in grid order, errors last."""
        ranked = rank([result(0, None), result(1, [100, 105]), result(2, [100, 110]), result(3, [100, 105])], "pnl")
        assert [r.job.index for r in ranked] == [2, 1, 3, 0]

    def test_drawdown_smaller_is_better(self) -> None:
        """By max_drawdown the smallest drawdown comes first."""
        ranked = rank([result(0, [100, 50, 100]), result(1, [100, 90, 100]), result(2, [100, 101])], "max_drawdown")
        assert [r.job.index for r in ranked] == [2, 1, 0]

    def test_undefined_score_ranks_last(self) -> None:
        """A result whose objective is undefined (a flat curve has no Sharpe) comes after those with one."""
        ranked = rank([result(0, [100, 100, 100]), result(1, [101, 99, 103])], "sharpe")
        assert [r.job.index for r in ranked] == [1, 0]

    def test_unknown_objective(self) -> None:
        """An objective that is not known is refused, listing those that are."""
        with pytest.raises(OptimizeError, match="--objective: expected one of sharpe, sortino, pnl, return"):
            rank([], "profit")


class TestStitch:
    def test_windows_chain_and_compound(self) -> None:
        """+20 % then +5 %: the second curve scaled by 1.2; return 26 %, P&L 25, drawdown 120 -> 108."""
        stitched = stitch([curve_report([110, 120]), curve_report([90, 105])])
        assert stitched["return_pct"] == pytest.approx(26.0)
        assert stitched["pnl"] == pytest.approx(25.0)
        assert stitched["max_drawdown"] == pytest.approx(12.0)
        assert stitched["max_drawdown_pct"] == pytest.approx(10.0)
        assert stitched["trades"] == 2
        assert stitched["windows"] == 2
        returns = [0.1, 120 / 110 - 1, 108 / 120 - 1, 126 / 108 - 1]
        mean = sum(returns) / 4
        std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
        assert stitched["sharpe"] == pytest.approx(mean / std * math.sqrt(365 * 24))

    def test_nothing_to_stitch(self) -> None:
        """No test window gives no figures."""
        assert stitch([]) == {"windows": 0}


GRID = [{"drift": d} for d in (0.5, -0.5, 1.0, 0.0)]


class TestRunning:
    def test_pool_results_in_job_order_equal_in_process_results(self) -> None:
        """Spawned workers give the same results, in job order, as running here; a raising job keeps its error."""
        jobs = [Job(i, params, T0, T0 + 2 * DAY) for i, params in enumerate([*GRID, {"drift": "boom"}])]
        pooled = run_jobs(jobs, fake_backtest, workers=2)
        here = run_jobs(jobs, fake_backtest, workers=1)
        assert [r.job for r in pooled] == jobs
        assert [r.report.to_json() if r.report else r.error for r in pooled] == [
            r.report.to_json() if r.report else r.error for r in here
        ]
        assert pooled[-1].error == "RuntimeError: the strategy blew up"

    def test_worker_that_dies_fails_its_jobs_not_the_sweep(self) -> None:
        """A worker process that dies leaves errors for the jobs it took down; run_jobs still returns them all."""
        jobs = [Job(0, {"drift": "die"}, T0, T0 + DAY), Job(1, {"drift": 1.0}, T0, T0 + DAY)]
        results = run_jobs(jobs, fake_backtest, workers=2)
        assert [r.job for r in results] == jobs
        assert results[0].report is None
        assert results[0].error.startswith("BrokenProcessPool")

    def test_errors_survive_a_trip_between_processes(self) -> None:
        """The sweep's and the reader's errors pickle with their fields (a worker may send them back)."""
        error = pickle.loads(pickle.dumps(OptimizeError("--grid a", "bad")))
        assert (error.option, error.reason, str(error)) == ("--grid a", "bad", "--grid a: bad")
        data_error = pickle.loads(pickle.dumps(DataError("f.csv", "bad row", 3)))
        assert (data_error.where, data_error.line, str(data_error)) == ("f.csv", 3, "f.csv:3: bad row")

    def test_bad_worker_count(self) -> None:
        """--jobs below 1 is refused."""
        with pytest.raises(OptimizeError, match="--jobs: must be >= 1, got 0"):
            run_jobs([], fake_backtest, workers=0)

    def test_sweep_ranks_the_grid(self) -> None:
        """On one rising day the largest drift makes the most; the table names rank, params and figures."""
        found = sweep(GRID, fake_backtest, objective="pnl", workers=1, start_ns=T0, end_ns=T0 + DAY)
        table = found.table()
        assert [row["params"]["drift"] for row in table] == [1.0, 0.5, 0.0, -0.5]
        assert table[0]["rank"] == 1 and table[0]["grid_index"] == 2
        assert table[0]["score"] == table[0]["pnl"] == pytest.approx(24.0)

    def test_walk_forward_chooses_on_train_and_scores_on_test(self) -> None:
        """Each window's choice is the best of its train part; out-of-sample is its test parts stitched."""
        windows = roll_windows(T0, T0 + 5 * DAY, 2 * DAY, DAY)
        document = walk_forward(GRID, fake_backtest, objective="return", workers=1, windows=windows)
        tests = []
        for window, row in zip(windows, document["windows"], strict=True):
            train = [fake_backtest(Job(i, p, window.train_start, window.train_end)) for i, p in enumerate(GRID)]
            best = max(range(len(GRID)), key=lambda i: (train[i].overall.return_pct, -i))
            assert row["params"] == GRID[best]
            tests.append(fake_backtest(Job(best, GRID[best], window.train_end, window.test_end)))
            assert row["out_of_sample"]["return_pct"] == pytest.approx(tests[-1].overall.return_pct)
        expected = math.prod(1 + t.overall.return_pct / 100 for t in tests) - 1
        assert document["out_of_sample"]["return_pct"] == pytest.approx(expected * 100)
        assert document["out_of_sample"]["score"] == document["out_of_sample"]["return_pct"]
        assert document["in_sample"]["windows"] == 3

    def test_walk_forward_is_the_same_in_a_pool(self) -> None:
        """Two workers give the same walk-forward document, byte for byte."""
        windows = roll_windows(T0, T0 + 4 * DAY, 2 * DAY, DAY)
        documents = [to_json(walk_forward(GRID, fake_backtest, objective="sharpe", workers=n, windows=windows))
                     for n in (1, 2)]  # fmt: skip
        assert documents[0] == documents[1]
        json.loads(documents[0])

    def test_window_where_nothing_ran(self) -> None:
        """A window whose every train backtest failed says so and is left out of the stitched result."""
        windows = roll_windows(T0, T0 + 3 * DAY, 2 * DAY, DAY)
        document = walk_forward([{"drift": "boom"}], fake_backtest, objective="pnl", workers=1, windows=windows)
        assert document["windows"][0]["error"] == "no combination gave a result on the train window"
        assert document["out_of_sample"] == {"windows": 0, "score": None}

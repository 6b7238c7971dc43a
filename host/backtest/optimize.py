"""Parameter sweeps over backtests: a grid run in parallel processes, ranked; walk-forward windows.

Model. ``parse_grid`` reads ``--grid NAME=V1,V2,...`` options (each value an int if it reads as one,
else a float, else ``true``/``false``, else text: ``10``, ``2e-3``, ``true``, ``ema``) and
``expand_grid`` gives every combination, the first option's values varying slowest, each in the
order written: that order is a combination's *grid index*. ``run_jobs`` runs one backtest per
``Job`` through a ``runner`` (a module-level function, so a spawned process can import it) in a
``ProcessPoolExecutor`` with the spawn start method, and returns the results in job order whatever
order they finish in; a job that raises is kept as its error text. ``rank`` orders results by an
objective (higher is better, except ``max_drawdown``, where smaller is), results without a value
last, ties by grid index, so the same results always rank the same.

Walk-forward (``--walk-forward TRAIN,TEST``, e.g. ``7d,1d``): ``roll_windows`` cuts the data's span
into windows that each train on TRAIN and test on the TEST right after it, then step forward by
TEST (the last test window may be cut short by the end of the data). In each window every
combination is backtested on the train part and the best one, by the objective, is backtested on
the test part. *In-sample* means the train part: the figures of the parameters that were chosen
because they did best there, which flatters them by construction. *Out-of-sample* means the test
parts, which the choice never saw: ``stitch`` chains their equity curves (each window's curve
scaled to start where the last one ended) into one curve and reports its return, drawdown, Sharpe
and trades. That stitched result is the honest estimate; it is reported beside the in-sample one.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from host.backtest import metrics
from host.backtest.results import BacktestReport, Summary, round_floats
from host.errors import EngineError
from sdk._codec import format_timestamp

__all__ = [
    "OBJECTIVES",
    "GridAxis",
    "Job",
    "JobResult",
    "OptimizeError",
    "Sweep",
    "Window",
    "expand_grid",
    "figures",
    "parse_duration",
    "parse_grid",
    "parse_walk_forward",
    "rank",
    "roll_windows",
    "run_jobs",
    "score",
    "stitch",
    "sweep",
    "to_json",
    "walk_forward",
]

# objective -> (Summary field, +1 when higher is better / -1 when lower is)
OBJECTIVES: dict[str, tuple[str, int]] = {
    "sharpe": ("sharpe", 1),
    "sortino": ("sortino", 1),
    "pnl": ("pnl", 1),
    "return": ("return_pct", 1),
    "max_drawdown": ("max_drawdown_pct", -1),
    "win_rate": ("win_rate", 1),
}
_UNITS_NS = {"s": 10**9, "m": 60 * 10**9, "min": 60 * 10**9, "h": 3600 * 10**9, "d": 86_400 * 10**9,
             "w": 7 * 86_400 * 10**9}  # fmt: skip
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|min|m|h|d|w)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class OptimizeError(EngineError):
    """A sweep's options cannot be used: ``option`` names the one at fault."""

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        self.reason = reason
        super().__init__(f"{option}: {reason}")

    def __reduce__(self) -> tuple[type[OptimizeError], tuple[str, str]]:
        return OptimizeError, (self.option, self.reason)


@dataclass(frozen=True)
class GridAxis:
    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Window:
    """One walk-forward step: train on [train_start, train_end), test on [train_end, test_end)."""

    index: int
    train_start: int
    train_end: int
    test_end: int

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "train": [format_timestamp(self.train_start), format_timestamp(self.train_end)],
            "test": [format_timestamp(self.train_end), format_timestamp(self.test_end)],
        }


@dataclass(frozen=True)
class Job:
    """One backtest of a sweep: the parameters, and the bounds (None: the data's own)."""

    index: int
    params: Mapping[str, Any]
    start_ns: int | None = None
    end_ns: int | None = None


@dataclass(frozen=True)
class JobResult:
    job: Job
    report: BacktestReport | None = None
    error: str = ""


# ---------------------------------------------------------------- options


def parse_grid(texts: Sequence[str]) -> list[GridAxis]:
    """``NAME=V1,V2,...`` options as axes; each name once, each axis at least one value, no value twice."""
    axes: list[GridAxis] = []
    for text in texts:
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise OptimizeError("--grid", f"expected NAME=V1,V2,... (e.g. lookback=10,20,40), got {text!r}")
        if any(axis.name == name for axis in axes):
            raise OptimizeError(f"--grid {name}", "given twice: put all its values in one --grid")
        cells = [cell.strip() for cell in raw.split(",")]
        if not all(cells):
            raise OptimizeError(f"--grid {name}", f"an empty value in {raw!r}")
        values = tuple(_scalar(name, cell) for cell in cells)
        if len({(isinstance(v, bool), v) for v in values}) < len(values):
            raise OptimizeError(f"--grid {name}", f"a value is given twice in {raw!r}")
        axes.append(GridAxis(name, values))
    if not axes:
        raise OptimizeError("--grid", "no grid given (e.g. --grid lookback=10,20,40)")
    return axes


def _scalar(name: str, text: str) -> Any:
    """An int, else a float, else true/false (any case), else the text itself."""
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise OptimizeError(f"--grid {name}", f"expected a finite number, got {text!r}")
        return value
    return {"true": True, "false": False}.get(text.lower(), text)


def expand_grid(axes: Sequence[GridAxis]) -> list[dict[str, Any]]:
    """Every combination, the first axis varying slowest; its position is its grid index."""
    names = [axis.name for axis in axes]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(axis.values for axis in axes))]


def parse_duration(text: str, option: str = "--walk-forward") -> int:
    """``30s``, ``90m``/``90min``, ``12h``, ``7d``, ``2w`` (fractions allowed: ``1.5d``) in ns."""
    found = _DURATION.fullmatch(text.strip())
    if found is None or float(found.group(1)) <= 0:
        raise OptimizeError(option, f"expected a duration like 7d, 12h, 90m or 30s, got {text!r}")
    return round(float(found.group(1)) * _UNITS_NS[found.group(2)])


def parse_walk_forward(text: str) -> tuple[int, int]:
    """``TRAIN,TEST`` (``7d,1d``) as (train ns, test ns)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise OptimizeError("--walk-forward", f"expected TRAIN,TEST (e.g. 7d,1d), got {text!r}")
    return parse_duration(parts[0]), parse_duration(parts[1])


# ---------------------------------------------------------------- windows, ranking, stitching


def roll_windows(start_ns: int, end_ns: int, train_ns: int, test_ns: int) -> list[Window]:
    """Windows over [start_ns, end_ns): train TRAIN, test the next TEST, step TEST; the last test may be short.

    Raises ``OptimizeError`` when the span cannot hold one train window and some test after it.
    """
    windows: list[Window] = []
    train_start = start_ns
    while train_start + train_ns < end_ns:
        train_end = train_start + train_ns
        windows.append(Window(len(windows), train_start, train_end, min(train_end + test_ns, end_ns)))
        train_start += test_ns
    if not windows:
        reason = (f"the data spans {_length(end_ns - start_ns)}: too short for one train window of "
                  f"{_length(train_ns)} and a test after it")  # fmt: skip
        raise OptimizeError("--walk-forward", reason)
    return windows


def _length(ns: int) -> str:
    """A span in the unit that reads best: days from 2 days up, hours from 2 hours, else minutes."""
    day, hour = _UNITS_NS["d"], _UNITS_NS["h"]
    if ns >= 2 * day:
        return f"{ns / day:.3g} days"
    if ns >= 2 * hour:
        return f"{ns / hour:.3g} hours"
    return f"{ns / _UNITS_NS['m']:.3g} minutes"


def score(summary: Summary, objective: str) -> float | None:
    """The objective's value for ``summary`` (None when the backtest could not define it)."""
    value = getattr(summary, OBJECTIVES[objective][0])
    return None if value is None or not math.isfinite(value) else float(value)


def rank(results: Sequence[JobResult], objective: str) -> list[JobResult]:
    """Best first by ``objective``; no value (or an error) last; ties by grid index."""
    if objective not in OBJECTIVES:
        raise OptimizeError("--objective", f"expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
    direction = OBJECTIVES[objective][1]

    def key(result: JobResult) -> tuple[int, float, int]:
        value = None if result.report is None else score(result.report.overall, objective)
        return (1, 0.0, result.job.index) if value is None else (0, -direction * value, result.job.index)

    return sorted(results, key=key)


def figures(summary: Summary) -> dict[str, Any]:
    """The figures a sweep shows of one backtest."""
    keys = ("pnl", "return_pct", "sharpe", "sortino", "max_drawdown", "max_drawdown_pct", "win_rate", "trades",
            "fees", "exposure")  # fmt: skip
    return {key: getattr(summary, key) for key in keys}


def stitch(reports: Sequence[BacktestReport]) -> dict[str, Any]:
    """The test windows' overall results chained into one out-of-sample curve, and its figures.

    Each window starts from the initial cash; its curve is scaled by where the chained curve stands,
    so returns compound. P&L is the windows' P&L added up (not compounded).
    """
    if not reports:
        return {"windows": 0}
    initial = reports[0].overall.initial_cash
    level, curve = initial, list[float]()
    for report in reports:
        scale = level / report.overall.initial_cash
        curve.extend(value * scale for value in report.equity["overall"])
        level = report.overall.final_equity * scale
    interval = reports[0].interval_ns
    period_returns = metrics.returns(initial, curve)
    down, down_pct = metrics.max_drawdown(initial, curve)
    trades = sum(r.overall.trades for r in reports)
    wins = sum(r.overall.wins for r in reports)
    return {
        "windows": len(reports),
        "pnl": math.fsum(r.overall.pnl for r in reports),
        "return_pct": (level / initial - 1) * 100,
        "max_drawdown": down,
        "max_drawdown_pct": None if down_pct is None else down_pct * 100,
        "sharpe": metrics.sharpe(period_returns, interval),
        "sortino": metrics.sortino(period_returns, interval),
        "trades": trades,
        "win_rate": wins / trades if trades else None,
        "fees": math.fsum(r.overall.fees for r in reports),
    }


def to_json(document: Mapping[str, Any]) -> str:
    """Byte-stable JSON, as the backtest report's: sorted keys, floats to 10 significant digits."""
    return json.dumps(round_floats(document), sort_keys=True, indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------- running


def run_jobs(jobs: Sequence[Job], runner: Callable[[Job], BacktestReport], *, workers: int) -> list[JobResult]:
    """Every job through ``runner`` in up to ``workers`` spawned processes; results in job order.

    ``runner`` must be a module-level function (a spawned process imports it by name). With one
    worker the jobs run here, one after another. A job that raises is kept with its error text; a
    worker process that dies fails the jobs it had and those still waiting.
    """
    if workers < 1:
        raise OptimizeError("--jobs", f"must be >= 1, got {workers}")
    if workers == 1 or len(jobs) <= 1:
        return [_guarded(runner, job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_guarded, runner, job) for job in jobs]
        return [_collect(job, future) for job, future in zip(jobs, futures, strict=True)]


def _guarded(runner: Callable[[Job], BacktestReport], job: Job) -> JobResult:
    """``runner(job)`` with what it raises turned into text here, so no exception has to cross processes."""
    try:
        return JobResult(job, runner(job))
    except Exception as err:  # one combination failing must not lose the others
        return JobResult(job, error=f"{type(err).__name__}: {err}")


def _collect(job: Job, future: Future[JobResult]) -> JobResult:
    try:
        return future.result()
    except Exception as err:  # the worker process died (BrokenProcessPool) or the result could not come back
        return JobResult(job, error=f"{type(err).__name__}: {err}")


@dataclass
class Sweep:
    """A grid's backtests over one span: ranked results and the document a sweep prints."""

    objective: str
    ranked: list[JobResult] = field(default_factory=list)

    @property
    def best(self) -> JobResult | None:
        top = self.ranked[0] if self.ranked else None
        return top if top is not None and top.report is not None else None

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for place, result in enumerate(self.ranked, 1):
            row: dict[str, Any] = {"rank": place, "grid_index": result.job.index, "params": dict(result.job.params)}
            if result.report is None:
                row["error"] = result.error
            else:
                row["score"] = score(result.report.overall, self.objective)
                row.update(figures(result.report.overall))
            rows.append(row)
        return rows


def sweep(
    combos: Sequence[Mapping[str, Any]],
    runner: Callable[[Job], BacktestReport],
    *,
    objective: str,
    workers: int,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> Sweep:
    """Every combination backtested over the same span, ranked by ``objective``."""
    jobs = [Job(index, params, start_ns, end_ns) for index, params in enumerate(combos)]
    return Sweep(objective, rank(run_jobs(jobs, runner, workers=workers), objective))


def walk_forward(
    combos: Sequence[Mapping[str, Any]],
    runner: Callable[[Job], BacktestReport],
    *,
    objective: str,
    workers: int,
    windows: Sequence[Window],
) -> dict[str, Any]:
    """Optimise on each train window, test the best on the window after it; the document of it all.

    Every train backtest of every window runs in one parallel batch, then every test backtest in
    another. Each test window starts flat with the initial cash and no history, so a strategy's
    warm-up (its lookback) comes out of the test window.
    """
    if objective not in OBJECTIVES:
        raise OptimizeError("--objective", f"expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
    count = len(combos)
    train_jobs = [Job(i, params, w.train_start, w.train_end) for w in windows for i, params in enumerate(combos)]
    trained = run_jobs(train_jobs, runner, workers=workers)
    sweeps = [Sweep(objective, rank(trained[k * count : (k + 1) * count], objective)) for k in range(len(windows))]
    chosen = [(window, found.best) for window, found in zip(windows, sweeps, strict=True)]
    test_jobs = [Job(best.job.index, best.job.params, w.train_end, w.test_end) for w, best in chosen if best]
    tested = iter(run_jobs(test_jobs, runner, workers=workers))
    rows, in_sample, out_of_sample = [], [], []
    for window, best in chosen:
        row = window.describe()
        if best is None or best.report is None:
            row["error"] = "no combination gave a result on the train window"
            rows.append(row)
            continue
        test = next(tested)
        in_sample.append(best.report)
        row.update(params=dict(best.job.params), in_sample=_scored(best.report, objective))
        if test.report is None:
            row["out_of_sample"] = {"error": test.error}
        else:
            out_of_sample.append(test.report)
            row["out_of_sample"] = _scored(test.report, objective)
        rows.append(row)
    return {
        "objective": objective,
        "windows": rows,
        "in_sample": _means(in_sample, objective),
        "out_of_sample": {**stitch(out_of_sample), "score": _stitched_score(out_of_sample, objective)},
    }


def _scored(report: BacktestReport, objective: str) -> dict[str, Any]:
    return {"score": score(report.overall, objective), **figures(report.overall)}


def _means(reports: Sequence[BacktestReport], objective: str) -> dict[str, Any]:
    """The in-sample figures averaged over the windows (each the chosen combination's on its train part)."""
    out: dict[str, Any] = {"windows": len(reports)}
    rows = [_scored(report, objective) for report in reports]
    for key in ("score", "pnl", "return_pct", "sharpe", "max_drawdown_pct", "win_rate"):
        values = [row[key] for row in rows if row[key] is not None]
        out[f"mean_{key}"] = math.fsum(values) / len(values) if values else None
    return out


def _stitched_score(reports: Sequence[BacktestReport], objective: str) -> float | None:
    stitched = stitch(reports)
    value = stitched.get(OBJECTIVES[objective][0])
    return None if value is None else float(value)

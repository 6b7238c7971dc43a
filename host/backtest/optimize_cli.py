"""``strategy-engine optimize``: a parameter grid of backtests of one strategy, ranked; or walk-forward.

    strategy-engine optimize --data FILE [--data FILE ...] --strategy ID --grid NAME=V1,V2,... [--grid ...]
        [--objective sharpe|sortino|pnl|return|max_drawdown|win_rate] [--jobs N] [--walk-forward TRAIN,TEST]
        [--config C] [--set ID.PARAM=VALUE ...] [--from T] [--to T] [--fill ...] [--fees-bps X] ... [--json]

Every combination is one backtest exactly as ``strategy-engine backtest`` runs it (the same inputs
and options; the grid's values override ``--set``), in its own spawned process, ``--jobs`` at a
time (default: the machine's cores; each backtest also runs its strategy's runner process). The
ranking goes to stdout as a table, or with ``--json`` as one byte-stable JSON document. What
in-sample and out-of-sample mean with ``--walk-forward`` is in ``host.backtest.optimize``.
Exit codes: 0 done; 1 no combination gave a result; 2 a usage, config or data error, said before
anything runs.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import functools
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from host.backtest.cli import add_inputs, load_inputs
from host.backtest.data import DataError
from host.backtest.optimize import (
    OBJECTIVES,
    Job,
    OptimizeError,
    Sweep,
    expand_grid,
    parse_grid,
    parse_walk_forward,
    roll_windows,
    sweep,
    to_json,
    walk_forward,
)
from host.backtest.results import BacktestReport
from host.backtest.run import run_backtest
from host.config import LOG_LEVELS, ConfigError
from host.logs import configure_logging
from host.supervisor.sandbox import make_host_undumpable
from host.supervisor.status import StrategyState
from sdk._codec import format_timestamp

__all__ = ["add_optimize", "add_optimize_arguments", "backtest_job", "main", "optimize_command"]

EXIT_USAGE = 2
_SHOWN = 20  # ranking rows in the table (the JSON has all)


def add_optimize(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "optimize", help="backtest a grid of one strategy's parameters in parallel and rank it (or walk forward)",
        description="Backtest every combination of --grid values for one strategy, in parallel processes, and "
        "rank them by --objective. With --walk-forward TRAIN,TEST: choose on each train window, score the choice "
        "on the test window after it, and report the stitched out-of-sample result beside the in-sample one. "
        "In-sample means the train windows the parameters were chosen on: their figures flatter the choice by "
        "construction. Out-of-sample means the test windows, which the choice never saw: the honest estimate.",
    )  # fmt: skip
    add_optimize_arguments(parser)


def add_optimize_arguments(parser: argparse.ArgumentParser) -> None:
    add_inputs(parser)
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="a parameter and its values; repeat for more (every combination runs)")  # fmt: skip
    parser.add_argument("--objective", choices=list(OBJECTIVES), default="sharpe", help="what ranks (sharpe)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="backtests at a time (cores)")
    parser.add_argument("--walk-forward", metavar="TRAIN,TEST", help="roll windows, e.g. 7d,1d (s, m, h, d, w)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="warning", help="engine log level (warning)")


def backtest_job(args: argparse.Namespace, job: Job) -> BacktestReport:
    """One combination's backtest, as ``strategy-engine backtest`` would run it (in a spawned worker)."""
    config, data, options, root = load_inputs(_job_args(args, job))
    configure_logging(dataclasses.replace(config.logging, level=args.log_level, output="stderr", file=""))
    make_host_undumpable()
    outcome = asyncio.run(run_backtest(config, data, options, root=root))
    strategy = args.strategy[0]
    if outcome.states.get(strategy) == StrategyState.OPEN.value:
        reason = (f"strategy {strategy} ended with its breaker open (it failed to boot or kept failing), so its "
                  "result is not comparable; `strategy-engine backtest` with these --set values says why")  # fmt: skip
        raise OptimizeError("--grid " + " ".join(f"{k}={v}" for k, v in job.params.items()), reason)
    return outcome.report


def _job_args(args: argparse.Namespace, job: Job) -> argparse.Namespace:
    """The command line of one backtest: the grid's values as the last ``--set``s, the job's bounds."""
    out = copy.copy(args)
    strategy = args.strategy[0]
    out.set = [*args.set, *(f"{strategy}.{name}={json.dumps(value)}" for name, value in job.params.items())]
    if job.start_ns is not None:
        out.start = format_timestamp(job.start_ns)
    if job.end_ns is not None:
        out.end = format_timestamp(job.end_ns)
    return out


def optimize_command(args: argparse.Namespace) -> int:
    try:
        combos, windows = _plan(args)
    except (ConfigError, DataError, OptimizeError) as err:
        print(f"strategy-engine: {err}", file=sys.stderr)
        return EXIT_USAGE
    runner = functools.partial(backtest_job, args)
    strategy = args.strategy[0]
    runs = len(combos) * (len(windows) + 1 if windows else 1)
    print(f"strategy-engine: optimizing {strategy}: {len(combos)} combinations, about {runs} backtests, "
          f"{args.jobs} at a time", file=sys.stderr)  # fmt: skip
    document: dict[str, Any] = {"strategy": strategy, "objective": args.objective,
                                "grid": {axis.name: list(axis.values) for axis in parse_grid(args.grid)}}  # fmt: skip
    if windows:
        result = walk_forward(combos, runner, objective=args.objective, workers=args.jobs, windows=windows)
        document["walk_forward"] = {"train_test": args.walk_forward, **result}
        ok = result["out_of_sample"]["windows"] > 0
        show = functools.partial(_walk_table, document["walk_forward"])
    else:
        found = sweep(combos, runner, objective=args.objective, workers=args.jobs)
        document["ranking"] = found.table()
        ok = found.best is not None
        show = functools.partial(_ranking_table, found)
    if args.json:
        sys.stdout.write(to_json(document))
    else:
        show(sys.stdout)
    if not ok:
        print("strategy-engine: no combination gave a result (see the errors above)", file=sys.stderr)
    return 0 if ok else 1


def _plan(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any]]:
    """The combinations and walk-forward windows, every input checked before anything runs."""
    if len(args.strategy) != 1:
        raise OptimizeError("--strategy", f"name exactly one strategy to optimize, got {len(args.strategy)}")
    if args.jobs < 1:
        raise OptimizeError("--jobs", f"must be >= 1, got {args.jobs}")
    combos = expand_grid(parse_grid(args.grid))
    _, data, _, _ = load_inputs(_job_args(args, Job(0, combos[0])))  # a bad name or value fails here, once
    if not args.walk_forward:
        return combos, []
    train, test = parse_walk_forward(args.walk_forward)
    span = data.span()
    if span is None:
        raise OptimizeError("--data", "no market events within the bounds: nothing to walk forward over")
    end = span[1] + (data.bar_interval_ns() or 1)  # the last bar runs to its close; a tick is one instant
    return combos, roll_windows(span[0], end, train, test)


def _ranking_table(found: Sweep, out: TextIO) -> None:
    rows = [("rank", "params", "score", "trades", "P&L", "return %", "max DD %", "sharpe")]
    errors = []
    for row in found.table()[:_SHOWN]:
        params = " ".join(f"{k}={v}" for k, v in row["params"].items())
        if "error" in row:
            rows.append((str(row["rank"]), params, "error", "", "", "", "", ""))
            errors.append(f"rank {row['rank']} ({params}): {row['error']}\n")
            continue
        rows.append((str(row["rank"]), params, _num(row["score"]), str(row["trades"]), _num(row["pnl"]),
                     _num(row["return_pct"]), _num(row["max_drawdown_pct"]), _num(row["sharpe"])))  # fmt: skip
    _write(rows, out)
    more = len(found.ranked) - _SHOWN
    if more > 0:
        out.write(f"... and {more} more (--json has them all)\n")
    if errors:
        out.write("\n" + "".join(errors))


def _walk_table(result: dict[str, Any], out: TextIO) -> None:
    rows = [("window", "test from", "params", "in-sample score", "out-of-sample score", "oos return %")]
    for row in result["windows"]:
        test_from = row["test"][0][:16].replace("T", " ")
        if "error" in row:
            rows.append((str(row["index"]), test_from, row["error"], "", "", ""))
            continue
        params = " ".join(f"{k}={v}" for k, v in row["params"].items())
        oos = row["out_of_sample"]
        rows.append((str(row["index"]), test_from, params, _num(row["in_sample"]["score"]),
                     _num(oos.get("score")), _num(oos.get("return_pct"))))  # fmt: skip
    _write(rows, out)
    inside, outside = result["in_sample"], result["out_of_sample"]
    out.write(f"\nin-sample (train windows, where the parameters were chosen): mean score "
              f"{_num(inside['mean_score'])}, mean return {_num(inside['mean_return_pct'])} %\n")  # fmt: skip
    out.write(f"out-of-sample (test windows stitched): score {_num(outside.get('score'))}, return "
              f"{_num(outside.get('return_pct'))} %, max DD {_num(outside.get('max_drawdown_pct'))} %, "
              f"trades {outside.get('trades', 0)}\n")  # fmt: skip


def _write(rows: Sequence[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.2f}"


def main(argv: list[str] | None = None) -> int:
    """``python -m host.backtest.optimize_cli ARGS``: the same as ``strategy-engine optimize ARGS``."""
    parser = argparse.ArgumentParser(prog="strategy-engine optimize", description=__doc__.split("\n")[0])
    add_optimize_arguments(parser)
    return optimize_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

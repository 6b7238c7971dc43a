"""``strategy-engine backtest``: the command line of a backtest (``host.cli`` registers it).

    strategy-engine backtest --data FILE [--data FILE ...] [--config C] [--strategy ID ...]
        [--set ID.PARAM=VALUE ...] [--from T] [--to T] [--fill next-open|close|touch] [--latency MS]
        [--fees-bps X] [--slippage-bps X] [--initial-cash X] [--report DIR] [--json] [--strict]

Without ``--config`` the built-in strategies run with their default parameters. The summary goes
to stdout (with ``--json``: the report as one JSON document instead); ``--report DIR`` also writes
report.json, trades.csv, equity.csv and report.html there. Exit codes: 0 done; 1 the data had a bad
row under ``--strict``; 2 a usage or config error, said before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

from host.app import default_root
from host.backtest.data import DataError, DataSet, open_data, parse_time
from host.backtest.report import write_report
from host.backtest.results import OVERALL
from host.backtest.run import FILLS, BacktestOptions, BacktestOutcome, backtest_config, parse_sets, run_backtest
from host.config import LOG_LEVELS, Config, ConfigError, load
from host.errors import EngineError, leaves
from host.logs import configure_logging
from host.replay import REPRODUCE_HINT
from host.supervisor.sandbox import make_host_undumpable

__all__ = ["add_backtest", "backtest_command", "failures", "load_inputs"]

EXIT_USAGE = 2


def add_backtest(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "backtest", help="backtest strategies on recorded market data: causal, deterministic, with a report",
        description="Run strategies over recorded market data on the live code path (runners, aggregation, risk, "
        "paper matching, ledger) on a simulated clock. An order decided on one event fills no earlier than the "
        "next event of its symbol; the same inputs give the same report, byte for byte.",
    )  # fmt: skip
    add_inputs(parser)
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="write report.json, trades.csv, equity.csv, report.html"
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON document")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="warning", help="engine log level (warning)")


def add_inputs(parser: argparse.ArgumentParser) -> None:
    """The options a backtest and an optimisation share."""
    parser.add_argument("--data", type=Path, action="append", required=True, metavar="FILE",
                        help="market data: JSON lines (the engine's format) or CSV OHLCV; repeat to merge")  # fmt: skip
    parser.add_argument("--config", type=Path, help="the engine's config (default: the built-in strategies)")
    parser.add_argument("--strategy", action="append", default=[], metavar="ID", help="run only these strategies")
    parser.add_argument("--set", action="append", default=[], metavar="ID.PARAM=VALUE", help="override a parameter")
    parser.add_argument("--from", dest="start", metavar="T", help="first time (ISO 8601 date or date-time, UTC)")
    parser.add_argument("--to", dest="end", metavar="T", help="end time, exclusive")
    parser.add_argument("--fill", choices=FILLS, default="next-open",
                        help="market orders: the next event (bar open / quote touch) or this bar's close")  # fmt: skip
    parser.add_argument("--latency", type=float, default=0.0, metavar="MS", help="order latency in simulated ms")
    parser.add_argument("--fees-bps", type=float, help="fee per fill, basis points of notional (default: config)")
    parser.add_argument("--slippage-bps", type=float, help="market orders pay this much worse (default: config)")
    parser.add_argument("--initial-cash", type=float, help="starting cash (default: risk.initialBalance)")
    parser.add_argument("--interval", type=float, metavar="S", help="equity sampling for tick data, seconds (60)")
    parser.add_argument("--symbol", help="the symbol of CSV bars without a symbol column (default: the file name)")
    parser.add_argument("--strict", action="store_true", help="a bad data row is fatal (default: skipped, reported)")


def load_inputs(args: argparse.Namespace) -> tuple[Config, DataSet, BacktestOptions, Path]:
    """Config, data and options from the command line; ConfigError or DataError naming what is wrong."""
    config = load(args.config)
    options = BacktestOptions(
        fill=args.fill, latency_ms=args.latency, fees_bps=args.fees_bps, slippage_bps=args.slippage_bps,
        initial_cash=args.initial_cash, interval_s=args.interval,
    )  # fmt: skip
    config = backtest_config(config, options, strategies=args.strategy, sets=parse_sets(args.set),
                             every_symbol=args.config is None)  # fmt: skip
    start = parse_time(args.start, option="--from") if args.start else None
    end = parse_time(args.end, option="--to") if args.end else None
    data = open_data(args.data, strict=args.strict, start_ns=start, end_ns=end, symbol=args.symbol)
    root = args.config.resolve().parent if args.config else default_root(config)
    return config, data, options, root


def backtest_command(args: argparse.Namespace) -> int:
    try:
        config, data, options, root = load_inputs(args)
    except (ConfigError, DataError) as err:
        print(f"strategy-engine: {err}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(dataclasses.replace(config.logging, level=args.log_level, output="stderr", file=""))
    make_host_undumpable()  # before any runner exists, as in every run of the engine
    strategies = ", ".join(spec.id for spec in config.enabled_strategies())
    print(f"strategy-engine: backtesting {', '.join(map(str, data.paths))} through {strategies}", file=sys.stderr)
    progress = sys.stderr if sys.stderr.isatty() else None
    outcome: BacktestOutcome | None = None
    try:
        outcome = asyncio.run(run_backtest(config, data, options, root=root, progress=progress))
    except* EngineError as group:  # a DataError under --strict, raised by the driver inside the engine's TaskGroup
        for leaf in leaves(group):
            what = "bad market data: " if isinstance(leaf, DataError) else ""
            print(f"\nstrategy-engine: {what}{leaf}", file=sys.stderr)
    if outcome is None:
        return 1
    rate = outcome.events / outcome.stepping_s if outcome.stepping_s > 0 else 0.0
    print(f"strategy-engine: {outcome.events:,} events in {outcome.stepping_s:.2f} s after a {outcome.startup_s:.2f} s "
          f"start-up ({rate:,.0f} events/s; {outcome.batches:,} batches, {outcome.sent:,} events sent to runners)",
          file=sys.stderr)  # fmt: skip
    held = sorted(sid for sid, state in outcome.states.items() if state == "open")
    if held:
        print(f"strategy-engine: held open by its circuit breaker: {', '.join(held)} (see the report's "
              "breaker_events and run.strategy_errors, and the log)", file=sys.stderr)  # fmt: skip
    if args.report is not None:
        write_report(args.report, outcome.report)
        print(f"strategy-engine: report written to {args.report}", file=sys.stderr)
    if args.json:
        sys.stdout.write(outcome.report.to_json())
        failures(outcome, sys.stderr)
    else:
        summary(outcome)
    return 0


def summary(outcome: BacktestOutcome, out: Any = sys.stdout) -> None:
    rows = [("strategy", "trades", "win %", "P&L", "return %", "max DD %", "sharpe", "fees", "rejected", "state")]
    report = outcome.report
    for name, s in [*report.strategies.items(), (OVERALL, report.overall)]:
        state = outcome.states.get(name, "")
        win = None if s.win_rate is None else 100 * s.win_rate
        rows.append((name, f"{s.trades}", _pct(win), f"{s.pnl:,.2f}", _pct(s.return_pct), _pct(s.max_drawdown_pct),
                     _num(s.sharpe), f"{s.fees:,.2f}", f"{sum(s.rejections.values())}", state))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out.write(f"\nbacktested {outcome.events:,} events\n\n")
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    failures(outcome, out)


def failures(outcome: BacktestOutcome, out: Any) -> None:
    """Each strategy's handler errors (how many, the last) and the crash captures the run wrote."""
    for name, (count, last) in outcome.errors.items():
        out.write(f"\n{name}: {count:,} error(s), the last: {last}")
    for capture in outcome.captures:
        out.write(f"\ncapture ({capture.kind}) of {capture.strategy}: {capture.path}")
    if outcome.errors or outcome.captures:
        out.write(f"\n{REPRODUCE_HINT}\n")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"

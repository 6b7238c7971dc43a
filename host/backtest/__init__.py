"""Backtesting: market data readers, the result recorder and its report, parameter sweeps."""

from __future__ import annotations

from host.backtest.data import BadRow, BadRows, DataError, DataSet, open_data, parse_time
from host.backtest.report import write_report
from host.backtest.results import BacktestReport, EquityRecorder

__all__ = [
    "BadRow",
    "BadRows",
    "DataError",
    "DataSet",
    "open_data",
    "parse_time",
    "BacktestReport",
    "EquityRecorder",
    "write_report",
]

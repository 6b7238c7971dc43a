"""Backtesting: market data readers, the result recorder and its report, parameter sweeps."""

from __future__ import annotations

from host.backtest.data import BadRow, BadRows, DataError, DataSet, open_data, parse_time

__all__ = ["BadRow", "BadRows", "DataError", "DataSet", "open_data", "parse_time"]

"""Performance statistics of an equity curve sampled at a fixed interval: pure functions.

The curve is ``start`` (the initial cash) followed by one sample per interval. Crypto trades every
day, so a year is 365 days and an interval of ``I`` ns gives ``365 * 86400e9 / I`` periods a year.
A statistic that the data cannot define (no samples, a flat curve, equity at or below zero) is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["YEAR_NS", "drawdowns", "max_drawdown", "periods_per_year", "returns", "sharpe", "sortino"]

YEAR_NS = 365 * 86_400 * 1_000_000_000


def periods_per_year(interval_ns: int) -> float:
    return YEAR_NS / interval_ns


def returns(start: float, equity: Sequence[float]) -> list[float] | None:
    """Per-interval simple returns ``E[k] / E[k-1] - 1`` with ``E[-1] = start``; None if any base is <= 0."""
    out = []
    before = start
    for value in equity:
        if before <= 0:
            return None
        out.append(value / before - 1.0)
        before = value
    return out


def sharpe(period_returns: Sequence[float] | None, interval_ns: int) -> float | None:
    """``mean(r) / std(r, ddof=1) * sqrt(periods a year)``; None with fewer than 2 returns or std 0."""
    if period_returns is None or len(period_returns) < 2:
        return None
    n = len(period_returns)
    mean = math.fsum(period_returns) / n
    variance = math.fsum((r - mean) ** 2 for r in period_returns) / (n - 1)
    if variance <= 0:
        return None
    return mean / math.sqrt(variance) * math.sqrt(periods_per_year(interval_ns))


def sortino(period_returns: Sequence[float] | None, interval_ns: int) -> float | None:
    """``mean(r) / DD * sqrt(periods a year)``, DD = ``sqrt(sum(min(r, 0)^2) / n)`` over all n periods
    (target return 0); None with fewer than 2 returns or no losing period."""
    if period_returns is None or len(period_returns) < 2:
        return None
    n = len(period_returns)
    downside = math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in period_returns) / n)
    if downside <= 0:
        return None
    return math.fsum(period_returns) / n / downside * math.sqrt(periods_per_year(interval_ns))


def drawdowns(start: float, equity: Sequence[float]) -> list[tuple[float, float | None]]:
    """For each sample: (peak so far - equity, that over the peak or None when the peak is <= 0).

    The peak starts at ``start``.
    """
    peak = start
    out: list[tuple[float, float | None]] = []
    for value in equity:
        peak = max(peak, value)
        down = peak - value
        out.append((down, down / peak if peak > 0 else None))
    return out


def max_drawdown(start: float, equity: Sequence[float]) -> tuple[float, float | None]:
    """The largest drawdown in money and the largest as a fraction of its peak (may be different troughs)."""
    worst_abs, worst_pct, defined = 0.0, 0.0, start > 0
    for down, pct in drawdowns(start, equity):
        worst_abs = max(worst_abs, down)
        if pct is None:
            defined = False
        else:
            worst_pct = max(worst_pct, pct)
    return worst_abs, (worst_pct if defined else None)

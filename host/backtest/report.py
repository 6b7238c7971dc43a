"""A backtest report on disk: report.json, trades.csv, equity.csv and a standalone report.html.

The HTML page needs nothing outside itself: no script, no network, styles inline, its charts inline
SVG (equity and drawdown, overall and per strategy), and a Content-Security-Policy that forbids any
load. A long curve is thinned for drawing to at most ``_POINTS`` points, keeping each slice's lowest
and highest sample so no trough or peak disappears; the CSV keeps every sample. The trades table
shows the first ``_TRADE_ROWS`` trades and says how many more trades.csv holds. Everything written
follows from the report alone, so the same report gives the same bytes.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

from host.backtest import metrics
from host.backtest.results import OVERALL, BacktestReport, Summary, round_floats
from sdk._codec import format_timestamp

__all__ = ["render_html", "write_report"]

_POINTS = 1200
_TRADE_ROWS = 500
_WIDTH, _HEIGHT, _LEFT, _RIGHT = 960, 220, 84, 16  # the left margin holds the value labels
_TRADE_FIELDS = (
    "strategy", "symbol", "side", "quantity", "entry_time", "entry_price", "exit_time", "exit_price",
    "gross_pnl", "fees", "net_pnl", "exit_reason",
)  # fmt: skip
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; margin: 12px 0 4px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { padding: 3px 8px; border-bottom: 1px solid #e3e6ec; white-space: nowrap; }
th { text-align: left; background: #f3f5f8; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; max-width: 820px; font-family: ui-monospace, monospace; font-size: 12px; }
.neg { color: #b3261e; } .pos { color: #1b7f3b; } .note { color: #5b6472; }
svg { display: block; background: #fbfcfd; border: 1px solid #e3e6ec; margin: 4px 0 12px; }
svg text { font-size: 11px; fill: #5b6472; } .grid { stroke: #e3e6ec; }
.equity { fill: none; stroke: #2457c5; stroke-width: 1.5; } .drawdown { fill: #f4c7c3; stroke: #b3261e; }
"""
_COLUMNS = (
    ("pnl", "P&L"), ("return_pct", "return %"), ("trades", "trades"), ("win_rate", "win rate"),
    ("max_drawdown", "max DD"), ("max_drawdown_pct", "max DD %"), ("sharpe", "Sharpe"), ("sortino", "Sortino"),
    ("exposure", "exposure"), ("turnover", "turnover"), ("fees", "fees"), ("final_equity", "final equity"),
)  # fmt: skip


def write_report(directory: str | Path, report: BacktestReport) -> dict[str, Path]:
    """Write the four files into ``directory`` (made if missing); their paths by name."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "json": (folder / "report.json", report.to_json()),
        "trades": (folder / "trades.csv", trades_csv(report)),
        "equity": (folder / "equity.csv", equity_csv(report)),
        "html": (folder / "report.html", render_html(report)),
    }
    for path, text in files.values():
        path.write_text(text, encoding="utf-8", newline="")
    return {name: path for name, (path, _) in files.items()}


def trades_csv(report: BacktestReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_TRADE_FIELDS)
    for trade in report.trades:
        row = round_floats(trade.to_dict())
        writer.writerow([row[name] for name in _TRADE_FIELDS])
    return out.getvalue()


def equity_csv(report: BacktestReport) -> str:
    """One row per sample: its time, then each strategy's equity and the overall equity."""
    names = [*report.strategies, OVERALL]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "timestamp_ns", *names])
    for index, ts in enumerate(report.sample_times_ns):
        values = round_floats([report.equity[name][index] for name in names])
        writer.writerow([format_timestamp(ts), ts, *values])
    return out.getvalue()


# ---------------------------------------------------------------- HTML


def render_html(report: BacktestReport) -> str:
    """The standalone page: summary table, charts, trades."""
    title = "Backtest report"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="note">{_e(_when(report.start_ns))} to {_e(_when(report.end_ns))} UTC; '
        f"{len(report.sample_times_ns)} samples every {_e(_duration(report.interval_ns))}</p>",
        _summary_table(report),
        "<h2>Equity and drawdown</h2>",
    ]
    for name in [OVERALL, *report.strategies]:
        initial = report.overall.initial_cash if name == OVERALL else report.strategies[name].initial_cash
        parts.append(_charts(name, report.sample_times_ns, report.equity[name], initial))
    parts.append(_trades_table(report))
    parts.append(_run_table(report.sections.get("run")))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _summary_table(report: BacktestReport) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for _, label in _COLUMNS)
    rows = [_summary_row(name, summary) for name, summary in report.strategies.items()]
    rows.append(_summary_row(OVERALL, report.overall))
    rejected = _rejections(report)
    return f'<h2>Summary</h2><table id="summary"><tr><th>strategy</th>{head}</tr>{"".join(rows)}</table>{rejected}'


def _summary_row(name: str, summary: Summary) -> str:
    cells = []
    for key, _ in _COLUMNS:
        value = getattr(summary, key)
        css = "n"
        if key in ("pnl", "return_pct") and isinstance(value, float) and value:
            css += " pos" if value > 0 else " neg"
        cells.append(f'<td class="{css}">{_e(_number(key, value))}</td>')
    return f'<tr data-strategy="{_e(name)}"><th>{_e(name)}</th>{"".join(cells)}</tr>'


def _rejections(report: BacktestReport) -> str:
    lines = []
    for name, summary in report.strategies.items():
        rules = ", ".join(f"{_e(rule)} {count}" for rule, count in summary.rejections.items())
        if rules:
            lines.append(f"<li>{_e(name)}: risk rejections {rules}</li>")
        for event in summary.breaker_events:
            lines.append(f"<li>{_e(name)}: breaker {_e(event['kind'])} at {_e(event['time'])}: "
                         f"{_e(event['detail'])}</li>")  # fmt: skip
    return f"<ul>{''.join(lines)}</ul>" if lines else ""


def _charts(name: str, times: Sequence[int], equity: Sequence[float], initial: float) -> str:
    down = [-(pct or 0.0) * 100 for _, pct in metrics.drawdowns(initial, equity)]
    return (
        f"<h3>{_e(name)}</h3>"
        + _chart(f"equity-{name}", "equity", times, equity, area=False)
        + _chart(f"drawdown-{name}", "drawdown %", times, down, area=True)
    )


def _chart(chart_id: str, label: str, times: Sequence[int], values: Sequence[float], *, area: bool) -> str:
    """One SVG line (or area down to zero) chart of ``values`` against ``times``."""
    head = f'<svg id="{_e(chart_id)}" width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}">'
    if not values:
        return f'{head}<text x="{_LEFT}" y="{_HEIGHT // 2}">{_e(label)}: no samples</text></svg>'
    points = _thin(list(zip(times, values, strict=True)))
    low, high = min(v for _, v in points), max(v for _, v in points)
    if area:
        high = max(high, 0.0)
    if high == low:
        low, high = low - 1.0, high + 1.0
    t0, t1 = points[0][0], max(points[-1][0], points[0][0] + 1)
    width, height = _WIDTH - _LEFT - _RIGHT, _HEIGHT - 2 * 24

    def xy(t: int, v: float) -> str:
        return f"{_LEFT + (t - t0) / (t1 - t0) * width:.1f},{24 + (high - v) / (high - low) * height:.1f}"

    path = "M" + " L".join(xy(t, v) for t, v in points)
    if area:
        path += f" L{xy(points[-1][0], 0.0)} L{xy(t0, 0.0)} Z"
    grid = "".join(
        f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        f'<text x="4" y="{y + 4:.1f}">{_e(_short(v))}</text>'
        for v, y in ((high, 24.0), ((high + low) / 2, 24 + height / 2), (low, 24.0 + height))
    )
    axis = (
        f'<text x="{_LEFT}" y="{_HEIGHT - 6}">{_e(_when(t0))}</text>'
        f'<text x="{_WIDTH - _RIGHT}" y="{_HEIGHT - 6}" text-anchor="end">{_e(_when(t1))}</text>'
        f'<text x="{_WIDTH - _RIGHT}" y="16" text-anchor="end">{_e(label)}</text>'
    )
    css = "drawdown" if area else "equity"
    return f'{head}{grid}{axis}<path class="{css}" d="{path}"/></svg>'


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """At most about ``_POINTS`` points: each slice's lowest and highest, in time order; ends kept."""
    if len(points) <= _POINTS:
        return points
    step = len(points) / (_POINTS // 2)
    out = [points[0]]
    for index in range(_POINTS // 2):
        chunk = points[int(index * step) : int((index + 1) * step)]
        if chunk:
            extremes = {min(chunk, key=lambda p: p[1]), max(chunk, key=lambda p: p[1])}
            out.extend(sorted(extremes))
    out.append(points[-1])
    return out


def _trades_table(report: BacktestReport) -> str:
    shown = report.trades[:_TRADE_ROWS]
    head = "".join(f"<th>{_e(name)}</th>" for name in _TRADE_FIELDS)
    rows = []
    for trade in shown:
        row = round_floats(trade.to_dict())
        row["entry_time"], row["exit_time"] = _when(trade.entry_ns, ms=True), _when(trade.exit_ns, ms=True)
        cells = "".join(f'<td class="{"n" if isinstance(row[k], float) else ""}">{_e(str(row[k]))}</td>'
                        for k in _TRADE_FIELDS)  # fmt: skip
        rows.append(f"<tr>{cells}</tr>")
    more = len(report.trades) - len(shown)
    note = f'<p class="note" id="more-trades">{more} more trades in trades.csv</p>' if more else ""
    total = f'<p class="note">{len(report.trades)} trades</p>'
    return f'<h2>Trades</h2>{total}<table id="trades"><tr>{head}</tr>{"".join(rows)}</table>{note}'


def _run_table(run: object) -> str:
    """The driver's ``run`` section (inputs and options) as a key/value table; bad data rows listed."""
    if not isinstance(run, dict) or not run:
        return ""
    rows = []
    for key in sorted(run):
        value = run[key]
        text = value if isinstance(value, str) else json.dumps(round_floats(value), sort_keys=True)
        rows.append(f'<tr><th>{_e(key)}</th><td class="wrap">{_e(text)}</td></tr>')
    bad = run.get("data", {}).get("bad_rows", {}) if isinstance(run.get("data"), dict) else {}
    listed = "".join(f"<li>{_e(row.get('file'))}:{_e(row.get('line'))}: {_e(row.get('reason'))}</li>"
                     for row in bad.get("first", []))  # fmt: skip
    skipped = f"<p>{_e(bad.get('total'))} bad data rows skipped; the first:</p><ul>{listed}</ul>" if listed else ""
    return f'<h2>Run</h2><table id="run">{"".join(rows)}</table>{skipped}'


def _number(key: str, value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, float):
        return str(value)
    if key in ("win_rate", "exposure"):
        return f"{value * 100:.1f} %"
    if key in ("sharpe", "sortino", "turnover", "return_pct", "max_drawdown_pct"):
        return f"{value:.2f}"
    return f"{value:,.2f}"


def _when(timestamp_ns: int | None, *, ms: bool = False) -> str:
    """UTC time for people: ``2024-08-09 00:05:00`` (with ``.123`` milliseconds when asked)."""
    if timestamp_ns is None:
        return "no events"
    return format_timestamp(timestamp_ns)[: 23 if ms else 19].replace("T", " ")


def _short(value: float) -> str:
    value += 0.0  # no "-0.00" on an axis
    return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:.3g}"


def _duration(ns: int) -> str:
    seconds = ns / 1e9
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)

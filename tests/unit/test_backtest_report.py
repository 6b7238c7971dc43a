"""The backtest report on disk: report.json, trades.csv, equity.csv and the standalone report.html."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser
from pathlib import Path

from host.backtest.report import render_html, write_report
from host.backtest.results import BacktestReport, EquityRecorder
from tests.unit.test_backtest_results import MINUTE, S, T, fill, scenario


class Page(HTMLParser):
    """Tags, element ids, SVG path data and attributes that could load anything, from an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.paths: list[str] = []
        self.loads: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(found["id"] or "")
        if tag == "path":
            self.paths.append(found.get("d") or "")
        self.loads += [f"{tag} {name}" for name in ("src", "href") if name in found]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def two_strategies(trades: int = 2) -> BacktestReport:
    rec = EquityRecorder(initial_cash=1000.0, interval_ns=MINUTE, strategies=["a", "<b>&"])
    for i in range(trades):
        ts = T + i * MINUTE
        rec.mark(ts, "X", 10.0 + i % 7)
        rec.fill(fill("buy" if i % 2 == 0 else "sell", 1, 10.0 + i % 7, ts, fee=0.01, strategy="a"))
    rec.rejection("<b>&", "max_position_size")
    return rec.finish(T + trades * MINUTE)


class TestWriteReport:
    def test_writes_four_files_and_json_is_the_reports(self, tmp_path: Path) -> None:
        """The folder (made when missing) gets report.json (to_json's bytes), trades.csv, equity.csv, report.html."""
        report = scenario()
        paths = write_report(tmp_path / "out" / "run1", report)
        assert sorted(p.name for p in paths.values()) == ["equity.csv", "report.html", "report.json", "trades.csv"]
        assert paths["json"].read_text() == report.to_json()

    def test_trades_csv(self, tmp_path: Path) -> None:
        """trades.csv has one row a trade with times in ISO form and rounded numbers."""
        rows = list(csv.DictReader(io.StringIO(write_report(tmp_path, scenario())["trades"].read_text())))
        assert rows == [{
            "strategy": "mom", "symbol": "X", "side": "long", "quantity": "10.0",
            "entry_time": "2023-11-14T22:14:10.000000000Z", "entry_price": "10.0",
            "exit_time": "2023-11-14T22:17:30.000000000Z", "exit_price": "9.0",
            "gross_pnl": "-10.0", "fees": "1.9", "net_pnl": "-11.9", "exit_reason": "signal",
        }]  # fmt: skip

    def test_equity_csv(self, tmp_path: Path) -> None:
        """equity.csv has one row a sample: time, epoch ns, each strategy's equity, then overall."""
        rows = list(csv.reader(io.StringIO(write_report(tmp_path, scenario())["equity"].read_text())))
        assert rows[0] == ["time", "timestamp_ns", "mom", "overall"]
        assert rows[1] == ["2023-11-14T22:15:00.000000000Z", str(T + MINUTE), "1009.0", "1009.0"]
        assert [row[2] for row in rows[1:]] == ["1009.0", "1019.0", "1019.0", "988.1"]

    def test_same_report_same_bytes(self, tmp_path: Path) -> None:
        """Writing the same report twice gives byte-identical files."""
        first = write_report(tmp_path / "1", two_strategies())
        second = write_report(tmp_path / "2", two_strategies())
        assert all(first[name].read_bytes() == second[name].read_bytes() for name in first)


class TestHtml:
    def test_standalone_page_loads_nothing(self) -> None:
        """No script, no src or href, and a CSP that forbids every load."""
        html = render_html(two_strategies())
        page = Page()
        page.feed(html)
        assert "script" not in page.tags
        assert page.loads == []
        assert "default-src 'none'" in html

    def test_equity_and_drawdown_charts_for_overall_and_each_strategy(self) -> None:
        """Each of overall and the strategies has an equity and a drawdown SVG with a drawn path."""
        page = Page()
        page.feed(render_html(two_strategies()))
        for name in ("overall", "a", "<b>&"):
            assert f"equity-{name}" in page.ids
            assert f"drawdown-{name}" in page.ids
        assert len(page.paths) == 6
        assert all(path.startswith("M") and " L" in path for path in page.paths)

    def test_names_are_escaped(self) -> None:
        """A strategy name with markup appears as text, never as a tag."""
        html = render_html(two_strategies())
        assert "<b>&" not in html
        assert "&lt;b&gt;&amp;" in html
        assert "max_position_size 1" in html

    def test_trades_table_is_capped_and_says_how_many_more(self) -> None:
        """Past 500 trades the table stops and says how many more trades.csv holds."""
        report = two_strategies(trades=1203)
        page = Page()
        page.feed(render_html(report))
        assert len(report.trades) == 602  # 601 round trips, the last buy closed at the end
        assert "102 more trades in trades.csv" in page.text

    def test_long_curves_are_thinned_for_drawing(self) -> None:
        """A curve of thousands of samples is drawn with at most about 1,200 points."""
        report = two_strategies(trades=5000)
        page = Page()
        page.feed(render_html(report))
        assert len(report.sample_times_ns) == 5000
        assert all(path.count(" L") < 1300 for path in page.paths)

    def test_no_samples_says_so(self) -> None:
        """A run without events draws no curve and says there are no samples."""
        report = EquityRecorder(initial_cash=100.0, interval_ns=MINUTE, strategies=["a"]).finish(T + S)
        page = Page()
        page.feed(render_html(report))
        assert page.paths == []
        assert "equity: no samples" in page.text

    def test_run_section_is_shown_with_bad_rows(self) -> None:
        """The driver's run section becomes a table (values as JSON, escaped); skipped data rows are listed."""
        report = two_strategies()
        report.sections["run"] = {
            "fees_bps": 10.0,
            "strategies": {"a": {"parameters": {"note": "<i>"}}},
            "data": {"bad_rows": {"total": 7, "first": [{"file": "x.csv", "line": 3, "reason": "Candle.low: bad"}]}},
        }
        html = render_html(report)
        page = Page()
        page.feed(html)
        assert "run" in page.ids
        assert "i" not in page.tags
        assert "x.csv:3: Candle.low: bad" in page.text
        assert "7 bad data rows skipped; the first:" in page.text
        assert "&quot;note&quot;: &quot;&lt;i&gt;&quot;" in html

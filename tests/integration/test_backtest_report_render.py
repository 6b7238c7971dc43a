"""A backtest's report.html rendered by a real headless Chromium from the file write_report wrote.

The report comes from an ``EquityRecorder`` fed a generated random-walk of one-minute candles and a
strategy that flips between long and short every 30 bars, so its curves rise and fall; or, end to
end, from ``strategy-engine backtest --report DIR`` run as a subprocess on the same candles written
as a CSV file (the built-in momentum strategy on closes). Chromium
opens the file under the page's own Content-Security-Policy (no network, nothing loaded), dumps
the DOM after layout and takes a screenshot; the test decodes the PNG itself and counts the pixels
painted in the equity line's and the drawdown area's colours. Skipped, with the reason, when no
Chromium is installed (.ci/run installs the Debian package ``chromium``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from host.backtest.report import write_report
from host.backtest.results import BacktestReport, EquityRecorder
from sdk.events import Candle, Fill, Side
from tests.helpers import ROOT

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
MINUTE = 60_000_000_000
T0 = 1_722_470_400 * 1_000_000_000  # 2024-08-01T00:00:00Z
EQUITY_RGB = (0x24, 0x57, 0xC5)  # .equity stroke in host/backtest/report.py
DRAWDOWN_RGB = (0xF4, 0xC7, 0xC3)  # .drawdown fill

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (install the Debian package 'chromium')"),
]


def candles(count: int, seed: int = 7) -> list[Candle]:
    rng = random.Random(seed)
    price, out = 100.0, []
    for i in range(count):
        close = max(1.0, price * (1 + rng.gauss(0, 0.004)))
        out.append(Candle(symbol="BTCUSDT", timestamp_ns=T0 + i * MINUTE, open=price, high=max(price, close) * 1.001,
                          low=min(price, close) * 0.999, close=close))  # fmt: skip
        price = close
    return out


def flipping_report(bars: int = 1500) -> BacktestReport:
    """A strategy that goes long or short one unit at each 30th bar's open, flipping its side each time."""
    recorder = EquityRecorder(initial_cash=1_000.0, interval_ns=MINUTE, strategies=["flipper"], end_fee_rate=0.001)
    side = Side.BUY
    for i, bar in enumerate(candles(bars)):
        if i % 30 == 0:
            quantity = 1.0 if i == 0 else 2.0
            recorder.fill(Fill(fill_id=f"f{i}", order_id=f"o{i}", symbol=bar.symbol, side=side, price=bar.open,
                               quantity=quantity, timestamp_ns=bar.timestamp_ns, fee=bar.open * quantity * 0.001,
                               strategy="flipper"))  # fmt: skip
            side = side.opposite
        recorder.mark(bar.timestamp_ns, bar.symbol, bar.close)
    return recorder.finish(T0 + bars * MINUTE)


def chromium(url: str, profile: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=3000", *extra, url],
        capture_output=True, text=True, timeout=90, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Svgs(HTMLParser):
    """The ids of the rendered SVG charts and the path data drawn in each."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: dict[str, list[str]] = {}
        self._svg: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self._svg = found.get("id") or ""
            self.paths[self._svg] = []
        elif tag == "path" and self._svg is not None:
            self.paths[self._svg].append(found.get("d") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and the RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    chunks, offset = [], 8
    while offset < len(data):
        (size,) = struct.unpack(">I", data[offset : offset + 4])
        if data[offset + 4 : offset + 8] == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + size])
        offset += 12 + size
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(line)
        previous = line
    pixels = [tuple(row[x : x + 3]) for row in rows for x in range(0, stride, channels)]
    return width, height, pixels


class TestReportRenders:
    def test_dom_has_every_chart_with_its_path(self, tmp_path: Path) -> None:
        """After Chromium's layout the page holds equity and drawdown charts, each with a drawn path."""
        files = write_report(tmp_path / "report", flipping_report())
        svgs = Svgs()
        svgs.feed(chromium(files["html"].as_uri(), tmp_path / "profile", "--dump-dom"))
        assert sorted(svgs.paths) == ["drawdown-flipper", "drawdown-overall", "equity-flipper", "equity-overall"]
        for chart, paths in svgs.paths.items():
            assert len(paths) == 1 and paths[0].count(" L") > 100, chart

    def test_screenshot_shows_the_curves(self, tmp_path: Path) -> None:
        """The screenshot is a real PNG with the equity line's and the drawdown area's colours painted."""
        files = write_report(tmp_path / "report", flipping_report())
        shot = tmp_path / "report.png"
        chromium(files["html"].as_uri(), tmp_path / "profile", f"--screenshot={shot}", "--window-size=1100,1400")
        width, height, pixels = png_pixels(shot.read_bytes())
        assert (width, height) == (1100, 1400)
        assert len(set(pixels)) > 50, "a blank page?"
        assert pixels.count(EQUITY_RGB) > 200, "no equity line painted"
        assert pixels.count(DRAWDOWN_RGB) > 2000, "no drawdown area painted"


class TestBacktestCommandReport:
    def test_report_dir_from_a_csv_backtest_renders(self, tmp_path: Path) -> None:
        """``backtest --data bars.csv --report DIR`` writes the four files; Chromium draws its charts."""
        bars = tmp_path / "BTCUSDT-1m.csv"
        rows = [
            f"{bar.timestamp_ns // 1_000_000},{bar.open},{bar.high},{bar.low},{bar.close},1.5" for bar in candles(600)
        ]
        bars.write_text("open_time,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(
            [sys.executable, "-m", "host.cli", "backtest", "--data", str(bars), "--symbol", "BTCUSDT", "--strategy",
             "momentum", "--set", "momentum.price_source=candle", "--set", "momentum.lookback_period=5",
             "--set", "momentum.threshold=0.002", "--set", "momentum.quantity=0.01", "--report", str(tmp_path / "out")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        out = tmp_path / "out"
        assert sorted(p.name for p in out.iterdir()) == ["equity.csv", "report.html", "report.json", "trades.csv"]
        assert (out / "equity.csv").read_text().count("\n") == 601  # a header and one sample a bar
        assert json.loads((out / "report.json").read_text())["overall"]["trades"] > 0
        svgs = Svgs()
        svgs.feed(chromium((out / "report.html").as_uri(), tmp_path / "profile", "--dump-dom"))
        assert sorted(svgs.paths) == ["drawdown-momentum", "drawdown-overall", "equity-momentum", "equity-overall"]
        assert all(len(paths) == 1 and paths[0].count(" L") > 100 for paths in svgs.paths.values())

"""The status page at / rendered by a real headless Chromium against a real engine.

Chromium loads the page from the engine's HTTP server on a free port, runs its script (which
fetches /status and builds the table) within a virtual-time budget, and dumps the resulting DOM or
takes a screenshot. The page's only data path is that script, so a table that lists the strategies
proves the script ran against the live /status. Skipped, with the reason, when no Chromium is
installed (.ci/run installs the Debian package ``chromium``).
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from host.config import parse
from tests.helpers import wait_until
from tests.integration.http_stack import MAX_POSITION, Stack, engine_config, running_stack
from tests.integration.operator_stack import write_counter

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
HOSTILE = "<img src=x onerror=\"document.title='owned'\"><b>bold</b>"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (install the Debian package 'chromium')"),
]


class Table(HTMLParser):
    """The strategy rows of the dumped DOM: {strategy id: {cell class: text}}, plus every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.tags: list[str] = []
        self.body: dict[str, str | None] = {}
        self._row: str | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if tag == "body":
            self.body = found
        elif tag == "tr" and found.get("data-strategy"):
            self._row = found["data-strategy"]
            self.rows[self._row or ""] = {}
        elif tag == "td" and self._row is not None:
            self._cell = (found.get("class") or "").split()[0]
            self.rows[self._row][self._cell] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell is not None:
            self.rows[self._row][self._cell] += data


async def _chromium(url: str, profile: Path, *extra: str) -> str:
    """Run headless Chromium on ``url`` with ``extra`` arguments; its stdout."""
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", *extra, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()


async def _dom(stack: Stack, tmp_path: Path) -> Table:
    table = Table()
    table.feed(await _chromium(stack.base + "/", tmp_path / "profile", "--dump-dom"))
    return table


def _hostile_error(status: dict[str, Any]) -> dict[str, Any]:
    for strategy in status["strategies"]:
        if strategy["id"] == "beta":
            strategy["last_error"] = HOSTILE
    return status


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(engine_config(tmp_path), tmp_path) as running:
        yield running


class TestStatusPage:
    async def test_rendered_page_lists_each_strategy_with_its_state(self, stack: Stack, tmp_path: Path) -> None:
        """After the page's script fetched /status, the table has a row per strategy with its state."""
        await stack.post("/strategies/beta/pause")
        table = await _dom(stack, tmp_path)
        assert int(table.body.get("data-refreshes") or 0) >= 1, "the page's script never rendered /status"
        states = {sid: row["state"] for sid, row in table.rows.items()}
        assert states == {"alpha": "running", "beta": "paused", "broken": "open"}
        assert table.rows["broken"]["breaker"].startswith("open")
        assert "broken" in table.rows["broken"]["error"]

    async def test_trading_figures_reach_the_page(self, stack: Stack, tmp_path: Path) -> None:
        """Signals, orders, fills and the position of a trading strategy are on the page as /status has them."""
        stats = stack.engine.execution.stats
        await stack.feed_until(lambda: min(stats.fills_by_strategy.get("alpha", 0),
                                           stats.orders_by_strategy.get("alpha", 0)) >= MAX_POSITION)  # fmt: skip
        alpha = await stack.status_of("alpha")
        row = (await _dom(stack, tmp_path)).rows["alpha"]
        assert (row["orders"], row["fills"]) == (str(MAX_POSITION), str(MAX_POSITION))
        assert int(row["signals"]) >= alpha["signals"] >= MAX_POSITION  # an echo of the last fill may still come
        assert row["position"] == f"BTCUSDT {MAX_POSITION}"

    async def test_strategy_text_is_shown_as_text(self, tmp_path: Path) -> None:
        """Markup in a strategy's error text is displayed literally and never becomes elements."""
        async with running_stack(engine_config(tmp_path), tmp_path, status_filter=_hostile_error) as stack:
            table = await _dom(stack, tmp_path)
        assert table.rows["beta"]["error"] == HOSTILE
        assert "img" not in table.tags and "b" not in table.tags

    async def test_screenshot(self, stack: Stack, tmp_path: Path) -> None:
        """A 1200x800 screenshot of the rendered page is a real, non-trivial PNG."""
        shot = tmp_path / "status.png"
        await _chromium(stack.base + "/", tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,800")
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (1200, 800)
        assert len(data) > 10_000, f"only {len(data)} bytes: a blank page?"

    async def test_a_failed_reload_is_on_the_page(self, tmp_path: Path) -> None:
        """Hot reload on: a save that does not load shows in the strategy's Last reload cell, with why."""
        plugins = tmp_path / "plugins"
        source = write_counter(plugins, "counter", "v1") / "__init__.py"
        config = parse({
            "server": {"port": 0},
            "engine": {"mode": "simulation", "pluginsDir": str(plugins), "ledgerPath": str(tmp_path / "l.sqlite"),
                       "handshakeTimeout": "5s", "stopGrace": "1s"},
            "strategies": {"counter": {"symbols": ["BTCUSDT"]}},
        }, environ={})  # fmt: skip
        async with running_stack(config, tmp_path) as stack:
            source.write_text(source.read_text() + "\ndef broken(:\n")
            reloader = stack.app.reloader
            assert reloader is not None
            await wait_until(lambda: reloader.reload_failures == 1, 15)
            table = await _dom(stack, tmp_path)
        cell = table.rows["counter"]["reload"]
        assert cell.startswith("failed at ") and "SyntaxError" in cell, cell
        assert table.rows["counter"]["state"] == "running"

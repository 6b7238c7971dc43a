"""The status page at / rendered by a real headless Chromium against a real engine.

Chromium loads the page from the engine's HTTP server on a free port, runs its script (which
fetches /status and builds the table) within a virtual-time budget, and dumps the resulting DOM or
takes a screenshot. The page's only data path is that script, so a table that lists the strategies
proves the script ran against the live /status. Skipped, with the reason, when no Chromium is
installed (.ci/run installs the Debian package ``chromium``).

The controls are clicked for real: Chromium is driven over the DevTools protocol
(tests/integration/devtools.py); the test replaces ``window.prompt`` with one that answers a token
and records that it was asked, clicks the page's own buttons, and checks the engine itself and
/status, then what the page says. The page runs under its real Content-Security-Policy, and no
CSP report may appear in the browser's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import struct
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from host.config import parse
from host.supervisor.managed import StrategyState
from sdk.events import Position
from tests.helpers import NOON, wait_until
from tests.integration.devtools import DevTools, devtools_page
from tests.integration.http_stack import MAX_POSITION, Reconciled, Stack, engine_config, running_stack
from tests.integration.operator_stack import write_counter

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
HOSTILE = "<img src=x onerror=\"document.title='owned'\"><b>bold</b>"
TOKEN = "opérateur-token"  # not ASCII on purpose: the page must send its UTF-8 bytes
BROKERS = {"redis": True, "nats": False}
GRPC_VENUE = {
    "kind": "grpc", "address": "oms.internal:50051", "up": False, "connected": False,
    "breaker": {"state": "open", "consecutive_failures": 5, "opens_after": 5, "reset_s": 30.0},
    "last_error": "submit: UNAVAILABLE: failed to connect to all addresses",
    "last_success": "2026-12-05T12:00:01.250Z", "last_success_age_s": 42.5,
    "stats": {"attempts": 9, "retries": 4, "unavailable": 2, "timeouts": 1, "breaker_rejections": 3,
              "breaker_opened": 1},
}  # fmt: skip
ANSWER = "document.getElementById('answer').textContent"


RENDERED = "Number(document.body.dataset.refreshes || 0) >= 1"
PARTS = "#connections span[data-part]"  # the venue, the last reconciliation, the venue's positions
SHOWN = "[...document.querySelectorAll('SELECTOR')].map((s) => [s.textContent, s.className])"

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


def _grpc_venue(status: dict[str, Any]) -> dict[str, Any]:
    """A gRPC venue in trouble, and no reconciliation yet (the engine reconciles at start: shown as none)."""
    return {**status, "venue": GRPC_VENUE, "last_reconcile": None}


def _prompt_answers(token: str) -> str:
    """Script: window.prompt answers ``token`` and records each question in window.asked."""
    answer = json.dumps(token)
    return f"window.asked = window.asked || []; window.prompt = (q) => {{ window.asked.push(q); return {answer}; }}"


def _click(strategy: str, action: str) -> str:
    return f"document.querySelector('tr[data-strategy={json.dumps(strategy)}] button[data-action={action}]').click()"


def _row_state(strategy: str) -> str:
    return f"document.querySelector('tr[data-strategy={json.dumps(strategy)}] td.state').textContent"


@contextlib.asynccontextmanager
async def _page(stack: Stack, tmp_path: Path) -> AsyncIterator[DevTools]:
    """The status page of ``stack`` in a DevTools-driven Chromium, rendered at least once."""
    assert CHROMIUM is not None
    async with devtools_page(CHROMIUM, tmp_path / "devtools-profile", "--window-size=1200,800") as page:
        await page.open(stack.base + "/")
        await page.until(RENDERED)
        yield page
        reports = [text for text in page.console() if "Content Security Policy" in text]
        assert reports == [], reports


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(engine_config(tmp_path), tmp_path) as running:
        yield running


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Stack]:
    """The same engine with ``server.authToken`` set: the page offers the controls."""
    async with running_stack(engine_config(tmp_path, token=TOKEN), tmp_path) as running:
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
        assert all("actions" not in row for row in table.rows.values()), "controls offered with no token configured"

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

    async def test_connections_show_each_broker_and_the_venue(self, tmp_path: Path) -> None:
        """A line per broker, up or DOWN, and the gRPC venue with its address, breaker and failure counts."""
        config = engine_config(tmp_path)
        async with (
            running_stack(config, tmp_path, brokers=lambda: BROKERS, status_filter=_grpc_venue) as stack,
            _page(stack, tmp_path) as page,
        ):
            shown = await page.evaluate(SHOWN.replace("SELECTOR", "#connections span"))
        assert shown == [
            ["redis: up", "up"], ["nats: DOWN", "down"],
            ["venue: grpc oms.internal:50051, connection lost, breaker open (5 consecutive failures), "
             "2 unavailable, 1 timeouts, last answer 2026-12-05T12:00:01.250Z (42.5 s ago), "
             "last error: submit: UNAVAILABLE: failed to connect to all addresses", "down"],
            ["last reconciliation: none yet", ""],
            ["venue positions: none received", ""],
        ]  # fmt: skip

    async def test_last_reconciliation_and_venue_position_disagreements_are_shown(self, stack: Stack,
                                                                                 tmp_path: Path) -> None:  # fmt: skip
        """The last reconciliation's figures, and a venue position that disagrees with the ledger, with both figures."""
        engine = stack.engine
        engine.execution.last_reconcile = Reconciled(  # type: ignore[attr-defined]
            NOON, "venue_reconnected", checked=4, closed=1, resent=2, reconciled_fills=3, unavailable=0
        )
        engine.venue_position(
            "beta",
            Position(
                symbol="ETHUSDT", quantity=0.5, avg_entry_price=2600.0, timestamp_ns=time.time_ns(), strategy="beta"
            ),
        )

        def judged() -> bool:
            engine.positions.expire()  # what the live source does every 0.25 s
            return engine.positions.check.current == 1

        await wait_until(judged, 10)
        async with _page(stack, tmp_path) as page:
            shown = await page.evaluate(
                f"[...document.querySelectorAll('{PARTS}')].map((s) => [s.textContent, s.className])"
            )
        assert shown == [
            ["venue: paper", ""],
            ["last reconciliation: 2024-03-01T12:00:00.000Z (venue_reconnected): 4 checked, 1 closed, 2 resent, "
             "3 reconciled fills, 0 unavailable", ""],
            ["venue positions: 1 disagree with the ledger now: beta ETHUSDT venue 0.5 ≠ ledger 0", "down"],
        ]  # fmt: skip

    async def test_screenshot_with_controls(self, tmp_path: Path) -> None:
        """With a token configured, a 1200x800 screenshot of the page with its controls is a real PNG."""
        shot = tmp_path / "controls.png"
        async with running_stack(engine_config(tmp_path, token=TOKEN), tmp_path, brokers=lambda: BROKERS) as stack:
            await stack.post("/strategies/beta/pause", token=TOKEN)
            await _chromium(stack.base + "/", tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,800")
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (1200, 800)
        assert len(data) > 10_000, f"only {len(data)} bytes: a blank page?"


class TestControls:
    async def test_pause_button_asks_for_the_token_once_and_pauses(self, guarded: Stack, tmp_path: Path) -> None:
        """The first click asks for the token, pauses the strategy in the engine and says so; the next click
        (resume) reuses the token from memory, which is in no storage and nowhere in the DOM."""
        supervisor = guarded.engine.supervisor
        async with _page(guarded, tmp_path) as page:
            await page.evaluate(_prompt_answers(TOKEN))
            await page.evaluate(_click("alpha", "pause"))
            await wait_until(lambda: supervisor.strategy("alpha").state is StrategyState.PAUSED, 15)
            assert (await guarded.status_of("alpha"))["state"] == "paused"
            await page.until(f"{ANSWER} === 'pause alpha: ok, alpha is paused'")
            await page.until(f"{_row_state('alpha')} === 'paused'")  # refreshed after the answer
            await page.evaluate(_click("alpha", "resume"))
            await wait_until(lambda: supervisor.strategy("alpha").state is not StrategyState.PAUSED, 15)
            await page.until(f"{ANSWER}.startsWith('resume alpha: ok')")
            assert await page.evaluate("window.asked.length") == 1
            assert await page.evaluate("localStorage.length + sessionStorage.length") == 0
            assert not await page.evaluate(f"document.documentElement.outerHTML.includes({json.dumps(TOKEN)})")

    async def test_wrong_token_is_refused_on_the_page_and_forgotten(self, guarded: Stack, tmp_path: Path) -> None:
        """A wrong token: the page shows the 401, the strategy keeps running, and the next click asks again."""
        supervisor = guarded.engine.supervisor
        async with _page(guarded, tmp_path) as page:
            await page.evaluate(_prompt_answers("wrong"))
            await page.evaluate(_click("beta", "pause"))
            await page.until(f"{ANSWER}.includes('wrong token (401)')")
            assert await page.evaluate("document.getElementById('answer').className") == "error"
            assert supervisor.strategy("beta").state is StrategyState.RUNNING
            await page.evaluate(_prompt_answers(TOKEN))
            await page.evaluate(_click("beta", "pause"))
            await wait_until(lambda: supervisor.strategy("beta").state is StrategyState.PAUSED, 15)
            assert await page.evaluate("window.asked.length") == 2

    async def test_refused_action_shows_the_servers_reason(self, guarded: Stack, tmp_path: Path) -> None:
        """Restart of a strategy that is not running: the page shows the 409 and the server's own words."""
        async with _page(guarded, tmp_path) as page:
            await page.evaluate(_prompt_answers(TOKEN))
            await page.evaluate(_click("broken", "restart"))
            await page.until(f"{ANSWER}.startsWith('restart broken: refused (409): strategy \\'broken\\' is open')")
        assert guarded.engine.supervisor.strategy("broken").state is StrategyState.OPEN

    async def test_kill_switch_button_engages_then_releases(self, guarded: Stack, tmp_path: Path) -> None:
        """The kill-switch button engages the global switch in the risk manager, then offers and does release."""
        risk = guarded.engine.execution.risk
        button = "document.getElementById('kill-switch')"
        async with _page(guarded, tmp_path) as page:
            await page.evaluate(_prompt_answers(TOKEN))
            await page.evaluate(f"{button}.click()")
            await wait_until(lambda: risk.is_killed("alpha"), 15)
            assert (await guarded.get("/status")).data["risk"]["kill_switch"] is True
            await page.until(f"{ANSWER} === 'engage kill switch: ok, kill switch ENGAGED (all strategies)'")
            await page.until(f"{button}.dataset.action === 'release'")
            await page.evaluate(f"{button}.click()")
            await wait_until(lambda: not risk.is_killed("alpha"), 15)
            await page.until(f"{ANSWER} === 'release kill switch: ok, kill switch off'")

"""The composition root: what ``host.app.compose`` wires for every mode, and how ``App.run`` ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from host.app import compose
from host.clock import SystemClock
from host.config import Config, parse
from sdk.errors import ValidationError
from tests.helpers import RUNNERS, wait_until
from tests.integration.http_stack import HandFed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def config(tmp_path: Path, **engine: object) -> Config:
    return parse(
        {
            "server": {"port": 0},
            "engine": {"mode": "simulation", "pluginsDir": str(RUNNERS), "ledgerPath": str(tmp_path / "l.sqlite"),
                       "handshakeTimeout": "5s", "stopGrace": "1s", **engine},
            "strategies": {"solo": {"plugin": "scripted", "strategy": "scripted"}},
        },
        environ={},
    )  # fmt: skip


class TestCompose:
    def test_watchers_follow_the_config(self, tmp_path: Path) -> None:
        """hotReload and watchConfig decide what is watched; neither: no watcher at all."""
        path = tmp_path / "config.yaml"
        both = compose(config(tmp_path), HandFed(), clock=SystemClock(), venue_kind="paper",
                       ledger_path=tmp_path / "a.sqlite", config_path=path, http=False)  # fmt: skip
        assert both.watcher is not None and both.watcher.config_path == path.absolute()
        assert both.reloader is not None and both.reloader.packages and both.reloader.reconfigurer is not None
        config_only = compose(config(tmp_path, hotReload=False), HandFed(), clock=SystemClock(), venue_kind="paper",
                              ledger_path=tmp_path / "b.sqlite", config_path=path, http=False)  # fmt: skip
        assert config_only.reloader is not None and not config_only.reloader.packages
        quiet = config(tmp_path, hotReload=False, watchConfig=False)
        neither = compose(quiet, HandFed(), clock=SystemClock(), venue_kind="paper",
                          ledger_path=tmp_path / "c.sqlite", config_path=path, http=False)  # fmt: skip
        assert neither.watcher is None and neither.reloader is None
        for app in (both, config_only, neither):
            app.engine.ledger.close()

    def test_observation_has_no_venue(self, tmp_path: Path) -> None:
        """venue_kind None: the order path runs up to risk and sends nothing."""
        app = compose(config(tmp_path), HandFed(), clock=SystemClock(), venue_kind=None,
                      ledger_path=tmp_path / "o.sqlite", http=False)  # fmt: skip
        assert app.engine.venue is None and app.engine.execution.mode == "observation"
        app.engine.ledger.close()


class FailingSource(HandFed):
    """A source that fails once the strategies run (as a replay meeting a bad line does)."""

    async def run(self, engine: object) -> None:
        await asyncio.sleep(0.2)
        raise ValidationError("ticks.jsonl:7", "line", "not JSON")


class TestAppRun:
    async def test_a_watcher_that_cannot_start_is_logged_and_trading_goes_on(self, tmp_path: Path) -> None:
        """The config's folder is gone: watcher_failed is logged, /status says not watching, strategies run."""
        missing = tmp_path / "gone" / "config.yaml"
        app = compose(config(tmp_path), HandFed(), clock=SystemClock(), venue_kind="paper",
                      ledger_path=tmp_path / "w.sqlite", config_path=missing, http=False)  # fmt: skip
        stop = asyncio.Event()
        with capture_logs() as logs:
            running = asyncio.create_task(app.run(stop.wait()))
            await wait_until(lambda: app.ready, 15)
            stop.set()
            await asyncio.wait_for(running, 20)
        [failed] = [e for e in logs if e["event"] == "watcher_failed"]
        assert "its folder does not exist" in failed["reason"]
        assert app.watcher is None and app.reloader is not None and not app.reloader.active

    async def test_a_failing_source_stops_the_engine_in_order_then_raises(self, tmp_path: Path) -> None:
        """The source's error comes out of run, after every runner went down its stop ladder."""
        app = compose(config(tmp_path), FailingSource(), clock=SystemClock(), venue_kind="paper",
                      ledger_path=tmp_path / "f.sqlite", http=False)  # fmt: skip
        with capture_logs() as logs, pytest.raises(ExceptionGroup) as raised:
            await asyncio.wait_for(app.run(asyncio.Event().wait()), 30)
        assert raised.group_contains(ValidationError)
        ended = [e for e in logs if e["event"] == "runner_ended"]
        assert ended and all(e["rung"] == "stop" for e in ended), ended

"""Host logging: JSON lines by default, level from config, file output with rotation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import structlog

from host.config import LoggingConfig
from host.logs import configure_logging


class TestLogging:
    def teardown_method(self) -> None:
        structlog.reset_defaults()
        logging.getLogger().handlers[:] = []

    def test_json_lines_to_a_file_at_the_configured_level(self, tmp_path: Path) -> None:
        """Events at or above the level are written as JSON objects with the data as keys; below, nothing."""
        path = tmp_path / "engine.log"
        configure_logging(LoggingConfig(level="warning", format="json", file=str(path)))
        log = structlog.get_logger("test")
        log.info("not_written", strategy="a")
        log.warning("runner_restarted", strategy="a", attempt=3)
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [(e["event"], e["level"], e["strategy"], e["attempt"]) for e in lines] == [
            ("runner_restarted", "warning", "a", 3)
        ]

    def test_file_is_rotated_at_max_bytes(self, tmp_path: Path) -> None:
        """Past maxBytes the file rolls over, keeping backupCount old files."""
        path = tmp_path / "engine.log"
        configure_logging(LoggingConfig(level="info", format="json", file=str(path), max_bytes=2000, backup_count=2))
        log = structlog.get_logger("test")
        for i in range(200):
            log.info("filler", i=i, pad="x" * 50)
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["engine.log", "engine.log.1", "engine.log.2"]
        assert path.stat().st_size <= 2000

    def test_console_format_is_for_people(self, tmp_path: Path) -> None:
        """format: console renders key=value text, not JSON."""
        path = tmp_path / "engine.log"
        configure_logging(LoggingConfig(level="info", format="console", file=str(path)))
        structlog.get_logger("test").info("strategy_ready", strategy="mm")
        text = path.read_text()
        assert "strategy_ready" in text and "strategy=mm" in text and not text.lstrip().startswith("{")

"""Host logging: JSON lines by default, level from config, file output with rotation."""

from __future__ import annotations

import gzip
import json
import logging
import os
import time
from pathlib import Path

import pytest
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

    def test_output_stdout_writes_to_stdout_not_the_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """output: stdout logs to stdout even when a file is named (the Go service's output key)."""
        path = tmp_path / "engine.log"
        configure_logging(LoggingConfig(level="info", format="json", output="stdout", file=str(path)))
        structlog.get_logger("test").info("strategy_ready", strategy="mm")
        captured = capsys.readouterr()
        assert json.loads(captured.out)["event"] == "strategy_ready"
        assert captured.err == "" and not path.exists()

    def test_output_stderr_writes_to_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        """output: stderr logs to stderr."""
        configure_logging(LoggingConfig(level="info", format="json", output="stderr"))
        structlog.get_logger("test").info("strategy_ready")
        captured = capsys.readouterr()
        assert json.loads(captured.err)["event"] == "strategy_ready" and captured.out == ""

    def test_compress_gzips_rotated_files(self, tmp_path: Path) -> None:
        """compress: true gzips each rotated file, and the shifted names keep their .gz."""
        path = tmp_path / "engine.log"
        config = LoggingConfig(format="json", file=str(path), max_bytes=2000, backup_count=2, compress=True)
        configure_logging(config)
        log = structlog.get_logger("test")
        for i in range(200):
            log.info("filler", i=i, pad="x" * 50)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["engine.log", "engine.log.1.gz", "engine.log.2.gz"]
        first = gzip.decompress((tmp_path / "engine.log.1.gz").read_bytes()).decode().splitlines()[0]
        assert json.loads(first)["event"] == "filler"

    def test_max_age_deletes_old_rotated_files_at_rotation(self, tmp_path: Path) -> None:
        """maxAge: days; a rotation deletes rotated files last written longer ago, and keeps younger ones."""
        path = tmp_path / "engine.log"
        old, young, other = tmp_path / "engine.log.3", tmp_path / "engine.log.4", tmp_path / "other.log.1"
        for file in (old, young, other):
            file.write_text(f"{file.name}\n")
        two_days_ago = time.time() - 2 * 86400
        os.utime(old, (two_days_ago, two_days_ago))
        os.utime(other, (two_days_ago, two_days_ago))
        configure_logging(LoggingConfig(format="json", file=str(path), max_bytes=2000, backup_count=9, max_age=1))
        log = structlog.get_logger("test")
        for i in range(40):
            log.info("filler", i=i, pad="x" * 50)
        contents = {p.name: p.read_text() for p in tmp_path.iterdir()}
        assert "engine.log.1" in contents  # it rotated (rotation shifts the old files' names up)
        assert "engine.log.3\n" not in contents.values()  # two days old: deleted
        assert "engine.log.4\n" in contents.values()  # young enough: kept
        assert contents["other.log.1"] == "other.log.1\n"  # not a rotated file of this log

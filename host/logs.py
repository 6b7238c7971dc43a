"""Logging for the host: structlog configured once per entry point.

JSON lines by default; the console renderer when ``logging.format`` is ``console``, or ``auto`` (the
default) and the stream is a terminal. ``logging.output`` picks stdout, stderr or the file
``logging.file`` (``auto``: the file when one is named, else stderr). The file is rotated at
``logging.maxBytes`` keeping ``logging.backupCount`` files; with ``logging.compress`` each rotated
file is gzipped, and with ``logging.maxAge`` every rotation also deletes rotated files older than
that many days (so age is checked when the file rotates, not on a timer). Per-tick paths log
nothing at info level; a runner's own output (stdout, stderr) is relayed at debug as
``runner_output``, while its strategies' ``self.log`` records arrive as ``strategy_log`` events at
their own level (``host.supervisor.strategy_logs``).
"""

from __future__ import annotations

import gzip
import logging
import logging.handlers
import os
import re
import shutil
import sys
import time
from pathlib import Path

import structlog

from host.config import LoggingConfig

__all__ = ["configure_logging", "set_level"]


class _LevelGate:
    """The first processor: drops events below ``level`` (a stdlib number), read on every call."""

    def __init__(self) -> None:
        self.level = logging.INFO

    def __call__(self, logger: object, method: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
        if _METHOD_LEVELS.get(method, logging.INFO) < self.level:
            raise structlog.DropEvent
        return event


_METHOD_LEVELS = {name.lower(): number for name, number in logging.getLevelNamesMapping().items()} | {
    "warn": logging.WARNING,
    "exception": logging.ERROR,
}
_gate = _LevelGate()


def set_level(level: str) -> None:
    """Log at ``level`` ("debug", "info", "warning", "error") from now on."""
    number = logging.getLevelNamesMapping()[level.upper()]
    _gate.level = number
    logging.getLogger().setLevel(number)


class _RotatingFile(logging.handlers.RotatingFileHandler):
    """The log file, rotated by size; rotated files optionally gzipped and pruned by age."""

    def __init__(self, config: LoggingConfig) -> None:
        super().__init__(config.file, maxBytes=config.max_bytes, backupCount=config.backup_count)
        self.max_age_s = config.max_age * 86400.0
        if config.compress:
            self.namer = _gzip_name
            self.rotator = _gzip_rotate

    def doRollover(self) -> None:
        super().doRollover()
        if self.max_age_s:
            _prune(Path(self.baseFilename), older_than=time.time() - self.max_age_s)


def _gzip_name(name: str) -> str:
    return f"{name}.gz"


def _gzip_rotate(source: str, dest: str) -> None:
    with open(source, "rb") as plain, gzip.open(dest, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    os.remove(source)


def _prune(base: Path, *, older_than: float) -> None:
    """Delete the rotated files of ``base`` (name.N, name.N.gz) last written before ``older_than``."""
    rotated = re.compile(re.escape(base.name) + r"\.\d+(\.gz)?")
    for path in base.parent.iterdir():
        if rotated.fullmatch(path.name) and path.stat().st_mtime < older_than:
            path.unlink(missing_ok=True)


def configure_logging(config: LoggingConfig) -> None:
    stream = {"stdout": sys.stdout, "stderr": sys.stderr}.get(config.destination)
    handler: logging.Handler = _RotatingFile(config) if stream is None else logging.StreamHandler(stream)
    tty = stream is not None and stream.isatty()
    console = config.format == "console" or (config.format == "auto" and tty)
    colors = tty
    renderer = structlog.dev.ConsoleRenderer(colors=colors) if console else structlog.processors.JSONRenderer()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_level(config.level)
    structlog.configure(
        processors=[
            _gate,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )

"""Logging for the host: structlog configured once per entry point.

JSON lines by default; the console renderer when ``logging.format`` is ``console``, or ``auto`` (the
default) and stderr is a terminal. ``logging.file`` sends them to a file rotated at
``logging.maxBytes`` keeping ``logging.backupCount`` files. Per-tick paths log nothing at info
level; runner output is relayed at debug.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

import structlog

from host.config import LoggingConfig

__all__ = ["configure_logging"]


def configure_logging(config: LoggingConfig) -> None:
    level = logging.getLevelNamesMapping()[config.level.upper()]
    if config.file:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            config.file, maxBytes=config.max_bytes, backupCount=config.backup_count
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    console = config.format == "console" or (config.format == "auto" and not config.file and sys.stderr.isatty())
    colors = not config.file and sys.stderr.isatty()
    renderer = structlog.dev.ConsoleRenderer(colors=colors) if console else structlog.processors.JSONRenderer()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )

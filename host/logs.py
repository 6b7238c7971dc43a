"""Logging for the host: structlog configured once per entry point.

JSON lines by default; the console renderer when ``logging.format`` is ``console``, or ``auto`` (the
default) and stderr is a terminal. ``logging.file`` sends them to a file rotated at
``logging.maxBytes`` keeping ``logging.backupCount`` files. Per-tick paths log nothing at info
level; a runner's own output (stdout, stderr) is relayed at debug as ``runner_output``, while its
strategies' ``self.log`` records arrive as ``strategy_log`` events at their own level
(``host.supervisor.strategy_logs``).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

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


def configure_logging(config: LoggingConfig) -> None:
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

"""Strategy log records into the host's log: one ``strategy_log`` event each, at the record's level.

Model. A runner attaches its strategies' records to whatever it sends next (``RunnerMessage.logs``,
see ``runner.logs``); the session hands them here with the runner's pid. The runner is untrusted, so
everything is checked again: a group that names a strategy other than the one this relay serves is
dropped (strategy code could rewrite what its runner says, never what the host assigned), every
string is cut to the same limits the runner applies, and a level the host does not know is dropped.

What reaches the log is one event per record::

    strategy_log  strategy=<host's id> plugin=<plugin> runner_pid=<pid> level=<record's level>
                  message=<the strategy's event name> fields={<the strategy's key/values>}

The event name is the host's constant and the strategy's own keys live under ``fields``, so a
strategy can neither forge a host event nor overwrite ``strategy``, ``plugin`` or ``level``.

Rate: each record takes a token from the strategy's ``LogRateLimiter``; what it drops, and what
the runner dropped on its side, is counted in ``strategy_log_dropped_total{strategy,reason}`` and
named in one ``strategy_log_dropped`` warning per window (``dropped``, and ``reasons`` with the same
labels as the metric: ``rate``, ``runner_cap``, ``invalid``, ``impersonation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from engine_proto import strategy_pb2 as pb
from host.supervisor.lograte import LogRateLimiter
from host.supervisor.status import StrategyMeter

__all__ = ["StrategyLogRelay", "log_event"]

log = structlog.get_logger("host.strategy")

# The same limits as the runner's (runner/logs.py), applied again: the runner is not trusted.
EVENT_LIMIT = 200
KEY_LIMIT = 64
TEXT_LIMIT = 512
FIELD_LIMIT = 16

LEVELS = {pb.LOG_DEBUG: "debug", pb.LOG_INFO: "info", pb.LOG_WARNING: "warning", pb.LOG_ERROR: "error"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(field: pb.LogField) -> str | int | float | bool | None:
    match field.WhichOneof("value"):
        case "text":
            return _cut(field.text, TEXT_LIMIT)
        case "integer":
            return field.integer
        case "number":
            return field.number
        case "flag":
            return field.flag
    return None


def log_event(record: pb.LogRecord) -> tuple[str, dict[str, Any]] | None:
    """The level and keys one record is logged with; None for a level the host does not know."""
    level = LEVELS.get(record.level)
    if level is None:
        return None
    fields = {_cut(field.key, KEY_LIMIT): _value(field) for field in record.fields[:FIELD_LIMIT]}
    return level, {"message": _cut(record.event, EVENT_LIMIT), "fields": fields}


class StrategyLogRelay:
    """Logs one strategy's records under its host-assigned id, within its rate."""

    def __init__(self, strategy_id: str, plugin: str, limiter: LogRateLimiter, metrics: StrategyMeter) -> None:
        self.id = strategy_id
        self.plugin = plugin
        self.limiter = limiter
        self.metrics = metrics
        self._reasons: dict[str, int] = {}  # drops by reason since the last summary

    def relay(self, groups: Sequence[pb.StrategyLogs], runner_pid: int) -> None:
        for group in groups:
            if group.strategy != self.id:
                self._dropped("impersonation", len(group.records) + group.dropped)
                continue
            self._dropped("runner_cap", group.dropped)
            self._log_records(group.records, runner_pid)
        self._summary(self.limiter.report(), runner_pid)

    def runner_ended(self, runner_pid: int) -> None:
        """Name the drops not reported yet: the window may never come round again for this runner."""
        self._summary(self.limiter.flush(), runner_pid)

    def _log_records(self, records: Sequence[pb.LogRecord], runner_pid: int) -> None:
        invalid = limited = 0
        for record in records:
            event = log_event(record)
            if event is None:
                invalid += 1
            elif not self.limiter.admit():
                limited += 1
            else:
                level, keys = event
                getattr(log, level)("strategy_log", strategy=self.id, plugin=self.plugin, runner_pid=runner_pid, **keys)
        self.limiter.dropped(invalid)
        self._count("invalid", invalid)
        self._count("rate", limited)

    def _dropped(self, reason: str, count: int) -> None:
        if count:
            self.limiter.dropped(count)
            self._count(reason, count)

    def _count(self, reason: str, count: int) -> None:
        if count:
            self.metrics.log_dropped(reason, count)
            self._reasons[reason] = self._reasons.get(reason, 0) + count

    def _summary(self, dropped: int, runner_pid: int) -> None:
        if dropped:
            reasons, self._reasons = self._reasons, {}
            log.warning(
                "strategy_log_dropped", strategy=self.id, plugin=self.plugin, runner_pid=runner_pid, dropped=dropped,
                reasons=reasons, window_s=self.limiter.policy.report_every_s, total=self.limiter.total_dropped,
            )  # fmt: skip

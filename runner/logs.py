"""Strategy log records, held until the runner's next message to the host carries them.

Model. Each strategy's ``self.log`` is a ``StrategyLog`` bound to the id the host gave it; a call
turns the event and its key/values into a ``LogRecord`` at once (values as text, integer, number,
flag or none; anything else as its ``repr``, cut to ``TEXT_LIMIT``) and appends it to the shared
``LogBuffer``. Whatever the runner sends next (Ready, a batch result, a snapshot, Stopped, a boot
failure, a heartbeat) takes the buffer along, so logging costs no message of its own and the records
arrive just before the reply of the handler that wrote them.

A strategy logging in a tight loop fills its group to ``per_message`` records; the rest are only
counted (``dropped``) until the next message, so a flood costs the runner a counter increment per
call and the link a bounded message. The host decides what reaches its log (rate limit per
strategy); this cap only bounds what travels. Single-threaded: strategy code runs on the runner's
loop thread only.
"""

from __future__ import annotations

from typing import Any

from engine_proto import strategy_pb2 as pb

__all__ = ["LogBuffer", "StrategyLog", "log_field"]

EVENT_LIMIT = 200
KEY_LIMIT = 64
TEXT_LIMIT = 512
FIELD_LIMIT = 16
_INT64 = range(-(2**63), 2**63)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def log_field(key: str, value: object) -> pb.LogField:
    """One key/value as it travels: None, bools, int64s, floats and strings as such; anything else as repr."""
    field = pb.LogField(key=_cut(str(key), KEY_LIMIT))
    if value is None:
        return field  # no value set: None on the host
    if isinstance(value, bool):
        field.flag = value
    elif isinstance(value, int) and value in _INT64:
        field.integer = value
    elif isinstance(value, float):
        field.number = value
    elif isinstance(value, str):
        field.text = _cut(value, TEXT_LIMIT)
    else:
        field.text = _cut(repr(value), TEXT_LIMIT)
    return field


class _Group:
    __slots__ = ("dropped", "records")

    def __init__(self) -> None:
        self.records: list[pb.LogRecord] = []
        self.dropped = 0


class LogBuffer:
    """Records of every strategy of this runner since the last ``take``, at most ``per_message`` each."""

    def __init__(self, per_message: int = 100) -> None:
        self.per_message = per_message
        self._groups: dict[str, _Group] = {}

    def add(self, strategy_id: str, level: pb.LogLevel, event: str, data: dict[str, Any]) -> None:
        group = self._groups.get(strategy_id)
        if group is None:
            group = self._groups[strategy_id] = _Group()
        if len(group.records) >= self.per_message:
            group.dropped += 1
            return
        fields = [log_field(key, value) for key, value in list(data.items())[:FIELD_LIMIT]]
        group.records.append(pb.LogRecord(level=level, event=_cut(str(event), EVENT_LIMIT), fields=fields))

    def take(self) -> list[pb.StrategyLogs]:
        """The groups to attach to the next message; the buffer is empty afterwards."""
        if not self._groups:
            return []
        groups = [
            pb.StrategyLogs(strategy=sid, records=group.records, dropped=group.dropped)
            for sid, group in self._groups.items()
        ]
        self._groups = {}
        return groups


class StrategyLog:
    """A strategy's ``self.log`` in a runner: records go to the host at their own level."""

    def __init__(self, strategy_id: str, buffer: LogBuffer) -> None:
        self._id = strategy_id
        self._buffer = buffer

    def debug(self, event: str, **data: Any) -> None:
        self._buffer.add(self._id, pb.LOG_DEBUG, event, data)

    def info(self, event: str, **data: Any) -> None:
        self._buffer.add(self._id, pb.LOG_INFO, event, data)

    def warning(self, event: str, **data: Any) -> None:
        self._buffer.add(self._id, pb.LOG_WARNING, event, data)

    def error(self, event: str, **data: Any) -> None:
        self._buffer.add(self._id, pb.LOG_ERROR, event, data)

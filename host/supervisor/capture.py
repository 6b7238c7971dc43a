"""Crash capture: the last events a strategy's runner was sent, written to a file when it fails.

Model. Each strategy keeps an ``EventRing``: the encoded event items (the bytes already made once
per event for its batches; market data shares them with every other strategy that took the event)
of the last ``CapturePolicy.events`` it was sent, and the state its runner was started with. A new
runner (boot, restart, hot swap) starts a new ring. Keeping them is one ``deque.extend`` per batch;
nothing is decoded until a capture is written.

When the strategy raises in a handler (an error in a batch result), misses a batch deadline or its
runner crashes, ``StrategyCapture`` asks its ``CaptureGate`` (at most one capture per failure kind
per strategy per ``interval_s``, on the supervisor's monotonic clock) and, if allowed, the shared
``CaptureStore`` writes ``<directory>/<strategy>/<UTC time>-<kind>.json`` off the event loop:
the ring's events decoded to the engine's JSON event format (``sdk._codec.decode_event`` reads each
one back), the error (text, handler, ``file:line``, traceback; a crash's last output lines), the
strategy's id, plugin, registered name and parameters, the state it started from (base64) and
whether the ring overflowed (then the events start mid-run and a replay of them may not reach the
same state). The newest ``files`` captures per strategy are kept, older ones deleted. Each written
capture is logged (``capture_written``), counted (``captures_written_total{strategy,kind}``) and
listed on ``/status``; one the gate refuses is counted in ``suppressed``.

``strategy-engine reproduce FILE`` (``host.reproduce``) runs a capture in-process under
``sdk.testing``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from engine_proto import strategy_pb2 as pb
from host.clock import Clock
from protocol import wire
from sdk import __version__ as sdk_version
from sdk._codec import encode_fill, encode_market, encode_position, format_timestamp
from sdk.events import Event, Fill, OrderUpdate, Position, Timer

__all__ = [
    "CAPTURE_FORMAT",
    "CaptureGate",
    "CapturePolicy",
    "CaptureRecord",
    "CaptureStore",
    "EventRing",
    "Failure",
    "StrategyCapture",
    "event_json",
]

log = structlog.get_logger("host.supervisor")

CAPTURE_FORMAT = "strategy-engine-capture/1"
_RECORDS_LISTED = 100  # captures /status lists (the newest)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{9}Z)-([a-z_]+)(?:-\d+)?\.json$")
_TRACEBACK_LIMIT = 20000


@dataclass(frozen=True)
class CapturePolicy:
    """How much is kept and written (``engine.capture*`` in the config)."""

    events: int = 2048  # event items kept per strategy; 0 = no capture at all
    files: int = 20  # newest capture files kept per strategy
    interval_s: float = 60.0  # at most one capture per failure kind per strategy this often
    directory: Path | None = None  # where captures go (<dir>/<strategy>/...); None = not written

    @property
    def enabled(self) -> bool:
        return self.events > 0 and self.files > 0 and self.directory is not None


@dataclass(frozen=True)
class Failure:
    """What went wrong, as a capture file states it."""

    kind: str  # the failure kind charged: "error", "timeout" or "crash"
    text: str
    error_kind: str = ""  # a handler error's kind as the runner said it: "exception", "bad_signal", ...
    handler: str = ""
    location: str = ""
    traceback: str = ""
    output: tuple[str, ...] = ()  # a crashed runner's last output lines
    in_flight: int = 0  # the ring's last events were the batch in flight when it failed


@dataclass(frozen=True)
class CaptureRecord:
    """One capture file, as /status lists it."""

    path: Path
    strategy: str
    kind: str
    time: str  # UTC, RFC 3339

    def as_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "strategy": self.strategy, "kind": self.kind, "time": self.time}


class EventRing:
    """The last ``capacity`` event items sent to one runner, and the state that runner started from."""

    def __init__(self, capacity: int) -> None:
        self._items: deque[bytes] = deque(maxlen=max(capacity, 1))
        self.capacity = capacity
        self.sent = 0
        self.restore = b""

    def started(self, restore: bytes) -> None:
        """A new runner: what it was started with, and nothing sent to it yet."""
        self._items.clear()
        self.sent = 0
        self.restore = restore

    def extend(self, items: Sequence[bytes]) -> None:
        self._items.extend(items)
        self.sent += len(items)

    def items(self) -> list[bytes]:
        return list(self._items)

    @property
    def overflowed(self) -> bool:
        """More was sent to this runner than is kept: the ring starts mid-run."""
        return self.sent > len(self._items)

    def memory_bytes(self) -> int:
        """The encoded bytes held (shared items counted in full) plus the deque's slots."""
        return sum(len(item) for item in self._items) + 8 * len(self._items)


class CaptureGate:
    """At most one capture per failure kind every ``interval_s`` (pure; the clock is handed in)."""

    def __init__(self, interval_s: float, clock: Clock) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def allow(self, kind: str) -> bool:
        now = self._clock.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        return True


def event_json(event: Event) -> dict[str, Any]:
    """An event as a JSON object of the engine's event format (what ``sdk._codec.decode_event`` reads)."""
    match event:
        case Fill():
            return {"type": "fill", **encode_fill(event)}
        case Position():
            return {"type": "position", **encode_position(event)}
        case Timer():
            return {"type": "timer", "name": event.name, "timestamp": format_timestamp(event.timestamp_ns)}
        case OrderUpdate():
            return {
                "type": "order", "client_order_id": event.client_order_id, "strategy": event.strategy,
                "symbol": event.symbol, "side": event.side.value, "slot": event.slot, "status": event.status.value,
                "quantity": event.quantity, "filled_quantity": event.filled_quantity,
                "remaining_quantity": event.remaining_quantity, "average_price": event.average_price,
                "reason": event.reason, "rule": event.rule, "timestamp": format_timestamp(event.timestamp_ns),
            }  # fmt: skip
        case _:
            return encode_market(event)


def _events(items: Iterable[bytes]) -> list[dict[str, Any]]:
    """Event items (``EventBatch.events`` entries, so their concatenation is an EventBatch) as JSON objects."""
    batch = pb.EventBatch.FromString(b"".join(items))
    out = []
    for message in batch.events:
        try:
            out.append(event_json(wire.event_from_pb(message)))
        except Exception as exc:  # one unreadable item must not cost the whole capture
            out.append({"type": "unreadable", "error": f"{type(exc).__name__}: {exc}"})
    return out


class CaptureStore:
    """The capture folder shared by every strategy: writes files, keeps the newest per strategy, lists them."""

    def __init__(self, policy: CapturePolicy, now_ns: Callable[[], int]) -> None:
        self.policy = policy
        self._now_ns = now_ns
        self._records: deque[CaptureRecord] = deque(maxlen=_RECORDS_LISTED)
        self.opened = format_timestamp(now_ns())  # records at or after this were written by this run
        if policy.directory is not None and policy.directory.is_dir():
            self._records.extend(_existing(policy.directory))

    def records(self) -> list[CaptureRecord]:
        """The newest captures first (this run's and those already in the folder at start)."""
        return list(reversed(self._records))

    def write(self, document: dict[str, Any], strategy: str, kind: str, items: list[bytes]) -> CaptureRecord:
        """Decode ``items`` into ``document``, write it and drop the strategy's oldest files (blocking I/O)."""
        assert self.policy.directory is not None, "written only when the policy names a folder"
        now = self._now_ns()
        stamp = datetime.fromtimestamp(now // 1_000_000_000, tz=UTC).strftime("%Y%m%dT%H%M%S")
        stamp += f".{now % 1_000_000_000:09d}Z"
        folder = self.policy.directory / _UNSAFE.sub("_", strategy)
        folder.mkdir(parents=True, exist_ok=True)
        path = _free(folder, f"{stamp}-{kind}")
        document["written_at"] = format_timestamp(now)
        document["events"] = _events(items)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(temporary, path)  # a listing never sees half a file
        self._prune(folder)
        record = CaptureRecord(path, strategy, kind, format_timestamp(now))
        self._records.append(record)
        return record

    def _prune(self, folder: Path) -> None:
        files = sorted(p for p in folder.iterdir() if _NAME.match(p.name))
        for old in files[: max(0, len(files) - self.policy.files)]:
            old.unlink(missing_ok=True)
            self._forget(old)

    def _forget(self, path: Path) -> None:
        kept = [r for r in self._records if r.path != path]
        self._records.clear()
        self._records.extend(kept)


def _free(folder: Path, stem: str) -> Path:
    path = folder / f"{stem}.json"
    n = 1
    while path.exists():
        path = folder / f"{stem}-{n}.json"
        n += 1
    return path


def _existing(directory: Path) -> list[CaptureRecord]:
    """Capture files already in the folder, oldest first (what a restarted host still lists)."""
    found = []
    for folder in directory.iterdir():
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _NAME.match(path.name)
            if match:
                stamp = match.group(1)
                when = f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:]}"
                found.append(CaptureRecord(path, folder.name, match.group(2), when))
    return sorted(found, key=lambda r: r.time)[-_RECORDS_LISTED:]


@dataclass(frozen=True)
class CaptureSubject:
    """The strategy a capture is of: enough to build it again (``host.reproduce``)."""

    id: str
    plugin: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    plugins_dir: Path | None = None


class StrategyCapture:
    """One strategy's ring and gate; writes a capture through the shared store when it fails."""

    def __init__(
        self,
        store: CaptureStore,
        clock: Clock,
        on_written: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self.store = store
        self.ring = EventRing(store.policy.events)
        self.gate = CaptureGate(store.policy.interval_s, clock)
        self._on_written = on_written
        self._in_flight = 0

    # ---------------------------------------------------------------- the serving loop's hooks

    def started(self, restore: bytes) -> None:
        self.ring.started(restore)
        self._in_flight = 0

    def sent(self, items: Sequence[bytes]) -> None:
        if self.store.policy.enabled:
            self.ring.extend(items)
        self._in_flight = len(items)

    def answered(self, strategy_id: str, result: pb.BatchResult) -> Failure | None:
        """The batch was answered: its first handler error as a failure to ``capture``, or None."""
        self._in_flight = 0
        error = _first_error(strategy_id, result)
        if error is None:
            return None
        return Failure(
            kind="error", text=error.text, error_kind=error.kind, handler=error.handler, location=error.location,
            traceback=error.traceback[-_TRACEBACK_LIMIT:],
        )  # fmt: skip

    async def lost(
        self, subject: CaptureSubject, kind: str, reason: str, output: Sequence[str] = ()
    ) -> CaptureRecord | None:
        """The runner missed its deadline or is gone: a capture with the batch it had in flight."""
        return await self.capture(
            subject, Failure(kind=kind, text=reason, output=tuple(output), in_flight=self._in_flight)
        )

    # ---------------------------------------------------------------- writing

    async def capture(self, subject: CaptureSubject, failure: Failure) -> CaptureRecord | None:
        """Write a capture of ``failure`` unless the policy or the gate says no; never raises."""
        if not self.store.policy.enabled or not self.gate.allow(failure.kind):
            return None
        items = self.ring.items()
        document = self._document(subject, failure)
        try:
            record = await asyncio.to_thread(self.store.write, document, subject.id, failure.kind, items)
        except (OSError, ValueError) as err:
            log.error("capture_failed", strategy=subject.id, kind=failure.kind, reason=f"{type(err).__name__}: {err}")
            return None
        self._on_written(failure.kind)
        log.warning(
            "capture_written", strategy=subject.id, kind=failure.kind, path=str(record.path), events=len(items),
            overflowed=document["ring"]["overflowed"],
        )  # fmt: skip
        return record

    def _document(self, subject: CaptureSubject, failure: Failure) -> dict[str, Any]:
        ring = self.ring
        return {
            "format": CAPTURE_FORMAT,
            "kind": failure.kind,
            "strategy": {
                "id": subject.id, "plugin": subject.plugin, "name": subject.name, "params": dict(subject.params),
                "plugins_dir": str(subject.plugins_dir) if subject.plugins_dir is not None else None,
            },
            "sdk_version": sdk_version,
            "error": {
                "kind": failure.error_kind, "text": failure.text, "handler": failure.handler,
                "location": failure.location, "traceback": failure.traceback, "output": list(failure.output),
            },
            "restore": base64.b64encode(ring.restore).decode("ascii") if ring.restore else None,
            "ring": {
                "capacity": ring.capacity, "sent": ring.sent, "kept": min(ring.sent, ring.capacity),
                "overflowed": ring.overflowed, "in_flight": failure.in_flight,
            },
            "suppressed": dict(self.gate.suppressed),
        }  # fmt: skip


def _first_error(strategy_id: str, result: pb.BatchResult) -> pb.Error | None:
    for output in result.outputs:
        if output.strategy == strategy_id and output.errors:
            return output.errors[0]
    return None

"""Test helpers shared by unit and integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNNERS = ROOT / "tests" / "runners"
PLUGINS = ROOT / "plugins"


NOON = int(datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000_000
SECOND = 1_000_000_000


class ManualClock:
    """A ``host.clock.Clock`` that moves only when the test says so (``now`` may also be set directly)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ManualClocks:
    """A ``host.clock.Clocks``: monotonic seconds and wall nanoseconds that move together, only when told."""

    def __init__(self, wall_ns: int = NOON) -> None:
        self.mono = 1000.0
        self.wall_ns = wall_ns

    def monotonic(self) -> float:
        return self.mono

    def now_ns(self) -> int:
        return self.wall_ns

    def time_ns(self) -> int:
        return self.wall_ns

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall_ns += round(seconds * SECOND)


def go_market(kind: str, *, timestamp: str, **fields: Any) -> dict[str, Any]:
    """A market message as the Go service marshals it: every field present, the unused ones at their zero value."""
    zero: dict[str, Any] = {
        "symbol": "BTCUSDT", "timestamp": timestamp, "sequence": 0, "type": kind, "last_price": 0, "bid_price": 0,
        "ask_price": 0, "bid_size": 0, "ask_size": 0, "volume": 0, "volume_quote": 0, "bids": None, "asks": None,
        "open": 0, "high": 0, "low": 0, "close": 0,
    }  # fmt: skip
    return {**zero, **fields}


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it is true; fail the test with a clear message after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def runner_pids(socket_path: Path) -> list[int]:
    """Live processes whose command line names this link socket: a supervisor's runners."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(socket_path).encode() in cmdline and pid_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def tick_events(count: int, symbol: str = "BTCUSDT", start: int = 1) -> list[object]:
    """``count`` valid ticks with sequence numbers from ``start``."""
    from sdk.events import Tick

    return [
        Tick(
            symbol=symbol,
            timestamp_ns=1_700_000_000_000_000_000 + i * 1_000_000,
            bid_price=100.0 + i * 0.01,
            bid_size=1.0,
            ask_price=100.02 + i * 0.01,
            ask_size=1.0,
            last_price=None,
            sequence=i,
        )
        for i in range(start, start + count)
    ]


def payload(events: list[object], target: str = "") -> bytes:
    """Events serialized once, as the host does before a fan-out."""
    from engine_proto import strategy_pb2 as pb
    from protocol import wire

    return pb.EventBatch(events=[wire.event_to_pb(e, target) for e in events]).SerializeToString()  # type: ignore[arg-type]


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, 9)

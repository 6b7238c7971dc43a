"""Test helpers shared by unit and integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNERS = ROOT / "tests" / "runners"
PLUGINS = ROOT / "plugins"


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
        Tick(symbol, 1_700_000_000_000_000_000 + i * 1_000_000, 100.0 + i * 0.01, 1.0, 100.02 + i * 0.01, 1.0, None, i)
        for i in range(start, start + count)
    ]


def payload(events: list[object], target: str = "") -> bytes:
    """Events serialized once, as the host does before a fan-out."""
    from engine_proto import strategy_pb2 as pb
    from runner import wire

    return pb.EventBatch(events=[wire.event_to_pb(e, target) for e in events]).SerializeToString()  # type: ignore[arg-type]


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, 9)

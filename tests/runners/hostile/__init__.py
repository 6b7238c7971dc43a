"""A strategy that tries, on its first tick, what a hostile author would: read secrets, reach local
sockets (its own link socket, named in its argv, and ``sockets``), start processes that outlive
the runner. It reports what it got as signal metadata (``outcomes``: JSON of attempt -> "ok: ..."
or the error) and as one ``hostile_attempt`` warning per attempt (``attempt``, ``outcome``).
Every later tick it answers with a plain buy.

Every child it manages to start renames itself ``se-hostile`` (``/proc/<pid>/comm``), so a test
can look for survivors; a detached one (setsid + double fork) sleeps for ten minutes.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from sdk import Signal, Strategy, StrategyConfig, Tick, hookimpl

MARK = b"se-hostile"
_PR_SET_NAME = 15


@dataclass(frozen=True)
class HostileConfig(StrategyConfig):
    paths: str = ""  # comma-separated files to read, beside /etc/shadow and the host's cmdline
    sockets: str = ""  # comma-separated Unix socket paths to connect to
    forks: int = 5  # plain forks to try


def _mark() -> None:
    libc = ctypes.CDLL(None)
    libc.prctl(_PR_SET_NAME, ctypes.c_char_p(MARK), 0, 0, 0)


def _attempt(outcomes: dict[str, str], name: str, action: object) -> None:
    try:
        result = action()  # type: ignore[operator]
    except BaseException as err:
        outcomes[name] = f"{type(err).__name__}: {err}"
    else:
        outcomes[name] = f"ok: {str(result)[:120]}"


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(200)


def _connect(path: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
    return "connected"


def _fork() -> int:
    pid = os.fork()
    if pid == 0:
        _mark()
        time.sleep(600)
        os._exit(0)
    return pid


def _detach() -> int:
    """setsid + double fork: the grandchild leaves the runner's session and process group."""
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            _mark()
            time.sleep(600)
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _thread() -> str:
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(threading.get_ident()))
    worker.start()
    worker.join(5)
    return f"thread ran: {bool(seen)}"


class Hostile(Strategy[HostileConfig]):
    name = "hostile"
    Config = HostileConfig

    def attempts(self) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        host = os.getppid()
        targets = ["/etc/shadow", f"/proc/{host}/cmdline", f"/proc/{host}/environ"]
        for path in [*targets, *filter(None, self.config.paths.split(","))]:
            _attempt(outcomes, f"read {path}", lambda path=path: _read(path))
        link = sys.argv[sys.argv.index("--socket") + 1] if "--socket" in sys.argv else ""
        for path in filter(None, [link, *self.config.sockets.split(",")]):
            _attempt(outcomes, f"connect {path}", lambda path=path: _connect(path))
        _attempt(outcomes, "socketpair", lambda: socket.socketpair()[0].close())
        for i in range(self.config.forks):
            _attempt(outcomes, f"fork {i}", _fork)
        _attempt(outcomes, "setsid double fork", _detach)
        _attempt(outcomes, "subprocess", lambda: subprocess.Popen(["sleep", "600"]).pid)
        _attempt(outcomes, "thread", _thread)
        return outcomes

    def __init__(self, config: HostileConfig) -> None:
        super().__init__(config)
        self.tried = False

    def on_tick(self, tick: Tick) -> None:
        if self.tried:
            self.emit(Signal(symbol=tick.symbol, side="buy", quantity=1.0))
            return
        self.tried = True
        outcomes = self.attempts()
        for attempt, outcome in outcomes.items():
            self.log.warning("hostile_attempt", attempt=attempt, outcome=outcome)
        self.emit(Signal(symbol=tick.symbol, side="buy", quantity=1.0, metadata={"outcomes": json.dumps(outcomes)}))


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[HostileConfig]]]:
    return [Hostile]

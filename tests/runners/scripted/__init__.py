"""A strategy whose ``mode`` parameter scripts how it misbehaves (see tests/runners/README.md)."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sdk import Fill, Signal, Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class ScriptedConfig(StrategyConfig):
    mode: str = "ok"
    every: int = 1
    # connect_tcp: the loopback port to try; read_secrets: the host pid and variable to look for.
    port: int = 0
    host_pid: int = 0
    secret_name: str = ""
    # write_file: the file to try to create.
    path: str = ""
    # False: fills are not answered with a buy (an order test that counts only tick-driven orders).
    echo_fills: bool = True


class Scripted(Strategy[ScriptedConfig]):
    name = "scripted"
    Config = ScriptedConfig

    def __init__(self, config: ScriptedConfig) -> None:
        super().__init__(config)
        self.seen = 0
        self.stopped = False
        self.probe: dict[str, str] = {}

    def on_start(self) -> None:
        mode = self.config.mode
        if mode == "never_ready":
            while True:
                time.sleep(1)
        if mode == "ignore_sigterm":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if mode == "report":
            self.probe = _probe()
        kind, _, arg = mode.partition(":")
        if kind == "slow_start":
            time.sleep(int(arg) / 1000)
        if kind == "impersonate_start":
            _claim_slot(self, arg)
        if kind == "forge_output":
            _forge_outputs(arg)
        if kind in ("log", "log_flood"):
            self.log.info("scripted_started", mode=mode)
        if kind == "spin_threads":
            for _ in range(int(arg or "2")):
                threading.Thread(target=_spin, daemon=True).start()
        if kind == "sys_exit_in_start":
            sys.exit(int(arg or "0"))
        if kind == "flood_results":
            _flood_results(int(arg or "60000"))
        if kind == "flood_lane":
            _flood_lane(arg or "frames")

    def on_tick(self, tick: Tick) -> None:
        self.seen += 1
        mode, _, arg = self.config.mode.partition(":")
        action = getattr(self, f"_do_{mode}", None)
        if action is not None:
            action(tick, arg)
        if self.seen % self.config.every == 0:
            self.emit(Signal(symbol=tick.symbol, side="buy", quantity=1.0, metadata={"seen": str(self.seen)}))

    def _do_raise(self, tick: Tick, arg: str) -> None:
        raise RuntimeError(f"scripted failure on tick {tick.sequence}")

    def _do_raise_once(self, tick: Tick, arg: str) -> None:
        if self.seen == 1:
            raise RuntimeError("scripted failure, once")

    def _do_hang(self, tick: Tick, arg: str) -> None:
        while True:
            time.sleep(1)

    def _do_busy(self, tick: Tick, arg: str) -> None:
        while True:
            pass

    def _do_slow(self, tick: Tick, arg: str) -> None:
        time.sleep(int(arg or "100") / 1000)

    def _do_exit(self, tick: Tick, arg: str) -> None:
        os._exit(int(arg or "3"))

    def _do_segv(self, tick: Tick, arg: str) -> None:
        ctypes.string_at(0)

    def _do_exit_every(self, tick: Tick, arg: str) -> None:
        # Keyed to the tick's sequence, not to ``seen``: the tick that killed a runner is not sent
        # again, so its replacement serves on until the next multiple.
        if tick.sequence % int(arg) == 0:
            os._exit(3)

    def _do_segv_every(self, tick: Tick, arg: str) -> None:
        if tick.sequence % int(arg) == 0:
            ctypes.string_at(0)

    def _do_impersonate(self, tick: Tick, arg: str) -> None:
        if self.seen == 1:
            _claim_slot(self, arg)
        self.emit(Signal(symbol=tick.symbol, side="sell", quantity=1.0, metadata={"impersonator": "1"}))

    def _do_impersonate_start(self, tick: Tick, arg: str) -> None:
        self.emit(Signal(symbol=tick.symbol, side="sell", quantity=1.0, metadata={"impersonator": "1"}))

    def _do_forge_output(self, tick: Tick, arg: str) -> None:
        self.emit(Signal(symbol=tick.symbol, side="sell", quantity=1.0, metadata={"impersonator": "1"}))

    def _do_eat_memory(self, tick: Tick, arg: str) -> None:
        hoard = []
        while True:
            hoard.append(bytearray(64 * 1024 * 1024))

    def _do_ignore_sigterm(self, tick: Tick, arg: str) -> None:
        self._do_hang(tick, arg)

    def _do_flood(self, tick: Tick, arg: str) -> None:
        for _ in range(int(arg or "10000")):
            self.emit(Signal(symbol=tick.symbol, side="sell", quantity=1.0))

    def _do_order_hog(self, tick: Tick, arg: str) -> None:
        # Valid tiny orders at top priority, alternating sides so the position stays near flat.
        for i in range(int(arg or "3")):
            side = "buy" if (self.seen + i) % 2 else "sell"
            self.emit(Signal(symbol=tick.symbol, side=side, quantity=0.001, priority=10, metadata={"hog": str(i)}))

    def _do_long_line(self, tick: Tick, arg: str) -> None:
        sys.stdout.write("x" * int(arg or "100000") + "\n")
        sys.stdout.write(f"long_line_done {tick.sequence}\n")
        sys.stdout.flush()

    def _do_forge_symbols(self, tick: Tick, arg: str) -> None:
        for i in range(int(arg or "20")):
            self.emit(Signal(symbol=f"FORGED{tick.sequence}X{i}", side="buy", quantity=1.0))

    def _do_log(self, tick: Tick, arg: str) -> None:
        self.log.debug("tick_seen", sequence=tick.sequence)
        self.log.info(
            "tick_priced",
            sequence=tick.sequence,
            price=tick.last_price,
            bid=tick.bid_price,
            symbol=tick.symbol,
            strategy="x",
        )
        self.log.warning("spread_wide", sequence=tick.sequence, wide=True, book=[1, 2])
        self.log.error("runner_restarted", sequence=tick.sequence)

    def _do_log_flood(self, tick: Tick, arg: str) -> None:
        for i in range(int(arg or "100000")):
            self.log.info("spam", i=i)

    def _do_connect_tcp(self, tick: Tick, arg: str) -> None:
        with socket.create_connection(("127.0.0.1", self.config.port), timeout=1.0) as conn:
            conn.sendall(b"escaped")

    def _do_read_secrets(self, tick: Tick, arg: str) -> None:
        found = {"environ": self.config.secret_name in os.environ}
        try:
            with open(f"/proc/{self.config.host_pid}/environ", "rb") as environ:
                found["proc"] = self.config.secret_name.encode() in environ.read()
        except OSError as err:
            found["proc_error"] = type(err).__name__  # type: ignore[assignment]
        self.emit(Signal(symbol=tick.symbol, side="buy", quantity=1.0, metadata={"found": json.dumps(found)}))

    def _do_kill_parent(self, tick: Tick, arg: str) -> None:
        os.kill(os.getppid(), int(arg or signal.SIGKILL))

    def _do_report(self, tick: Tick, arg: str) -> None:
        self.emit(Signal(symbol=tick.symbol, side="buy", quantity=1.0, metadata=self.probe))

    def _do_write_file(self, tick: Tick, arg: str) -> None:
        with open(self.config.path, "w") as file:
            file.write("escaped")

    def on_fill(self, fill: Fill) -> None:
        if self.config.echo_fills:
            self.emit(Signal(symbol=fill.symbol, side="buy", quantity=1.0, metadata={"fill": fill.fill_id}))

    def on_stop(self) -> None:
        self.stopped = True
        if self.config.mode == "log":
            self.log.info("scripted_stopped", seen=self.seen)

    def on_save(self) -> bytes:
        return json.dumps({"seen": self.seen}).encode()

    def on_load(self, state: bytes) -> None:
        self.seen = json.loads(state)["seen"]


def _spin() -> None:
    """Burn a core in the background: hashing a large block releases the GIL, so threads add up."""
    block = bytes(1 << 20)
    while True:
        hashlib.sha256(block).digest()


def _claim_slot(strategy: Scripted, strategy_id: str) -> None:
    """Rewrite the id of the runner's slot holding ``strategy``, as hostile code in a runner could."""
    for holder in gc.get_referrers(strategy):
        if getattr(holder, "strategy", None) is strategy and hasattr(holder, "strategy_id"):
            holder.strategy_id = strategy_id


def _probe() -> dict[str, str]:
    """What the process looks like from inside, at strategy start: JSON strings for signal metadata."""
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the directory's own descriptor, closed by now
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    lines = Path("/proc/self/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines if ":" in line)
    return {
        "limits": Path("/proc/self/limits").read_text(),
        "fds": json.dumps(fds),
        "environ": json.dumps(sorted(os.environ)),
        "status": json.dumps({key: value.strip() for key, value in status.items()}),
        "host_sockets": json.dumps(_host_sockets(fds)),
    }


def _host_sockets(fds: dict[str, str]) -> list[str]:
    """The descriptors of sockets whose peer is the host (its parent): the link, and the data lane if any."""
    found = []
    for fd, target in fds.items():
        if not target.startswith("socket:"):
            continue
        with contextlib.suppress(OSError), socket.fromfd(int(fd), socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            pid, _, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if pid == os.getppid():
                found.append(fd)
    return sorted(found, key=int)


def _flood_results(size: int) -> None:
    """Write junk results for a seq nobody sent, ``size`` bytes each, on the runner's own stream, forever.

    Runs as a task on the runner's loop (same process, as hostile code could), so the runner
    still answers its batches between the junk.
    """
    import asyncio

    import runner.app
    from engine_proto import strategy_pb2 as pb

    stream = next(obj for obj in gc.get_objects() if isinstance(obj, runner.app._Stream))
    junk = pb.RunnerMessage(result=pb.BatchResult(seq=10**9, outputs=[pb.StrategyOutput(strategy="x" * size)]))

    # One write at a time on a gRPC stream: the runner's own replies and the junk take turns.
    lock = asyncio.Lock()
    write = stream.call.write

    async def locked_write(message: object) -> None:
        async with lock:
            await write(message)

    stream.call.write = locked_write

    async def flood() -> None:
        await asyncio.sleep(0.05)  # after Ready
        while True:
            await locked_write(junk)

    _KEEP.add(asyncio.get_running_loop().create_task(flood()))


def _flood_lane(how: str) -> None:
    """Write on the runner's own end of its data lane, from a task on the runner's loop, once the lane is open.

    ``frames``: valid result frames for a seq nobody sent, as fast as the loop lets it (the runner
    keeps answering its batches between them); ``huge``: one frame header announcing 4 GB;
    ``junk``: a frame of 100 bytes that are not a RunnerMessage.
    """
    import asyncio

    import runner.app
    from engine_proto import strategy_pb2 as pb

    stream = next(obj for obj in gc.get_objects() if isinstance(obj, runner.app._Stream))
    junk = pb.RunnerMessage(result=pb.BatchResult(seq=10**9)).SerializeToString()
    writes = {
        "frames": struct.pack(">I", len(junk)) + junk,
        "huge": struct.pack(">I", 2**32 - 1) + b"\0" * 64,
        "junk": struct.pack(">I", 100) + b"\xff" * 100,
    }
    data = writes[how]

    async def flood() -> None:
        while stream._lane is None:  # noqa: ASYNC110  (the lane opens after on_start, before Ready; no event says so)
            await asyncio.sleep(0.01)
        lane = stream._lane
        await asyncio.sleep(0.05)  # after Ready: the host is reading the lane
        while True:
            lane.write(data)
            await lane.drain()
            if how != "frames":
                return
            await asyncio.sleep(0)  # give the runner's own batches their turn

    _KEEP.add(asyncio.get_running_loop().create_task(flood()))


_KEEP: set[object] = set()


def _forge_outputs(victim: str) -> None:
    """Patch the runner's own dispatcher (same process) so every output claims ``victim``'s id."""
    import runner.dispatch

    original = runner.dispatch.Dispatcher._output

    def forged(self: object, sid: str, slot: object, output: object) -> object:
        message = original(self, sid, slot, output)  # type: ignore[arg-type]
        message.strategy = victim  # type: ignore[attr-defined]
        return message

    runner.dispatch.Dispatcher._output = forged  # type: ignore[assignment,method-assign]


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[ScriptedConfig]]]:
    # The hook sees no strategy params; the modes that act here are read off the runner's argv.
    argv = " ".join(sys.argv)
    if "sys_exit_in_hook" in argv:
        sys.exit()
    if "keyboard_interrupt_in_hook" in argv:
        raise KeyboardInterrupt
    return [Scripted]

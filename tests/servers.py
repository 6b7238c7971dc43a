"""Real redis-server and nats-server processes on free loopback ports, for integration tests.

Never the shared default ports (6379, 4222): each server gets a port of its own, its own data
directory, and can be stopped and started again on the same port to test reconnects.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["NatsServer", "RedisServer", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


class _Server:
    name = ""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / f"{self.name}.log"

    def argv(self) -> list[str]:
        raise NotImplementedError  # each server says how it is started

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        _wait_port(self.port, 10.0, self.proc)

    def stop(self) -> None:
        """Kill the server (as a crash would) and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisServer(_Server):
    name = "redis"

    def __init__(self, directory: Path, *, password: str = "") -> None:
        super().__init__(directory)
        self.password = password  # --requirepass when not empty

    def argv(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (bash .ci/run installs it)")
        argv = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--protected-mode", "yes",
        ]  # fmt: skip
        return [*argv, "--requirepass", self.password] if self.password else argv


class NatsServer(_Server):
    name = "nats"

    def __init__(self, directory: Path, *, jetstream: bool = False) -> None:
        super().__init__(directory)
        self.jetstream = jetstream

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        binary = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
        argv = [binary, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.jetstream:
            argv += ["-js", "-sd", str(self.directory / "jetstream")]
        return argv

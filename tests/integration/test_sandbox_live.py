"""The sandbox end to end: ``strategy-engine run --config`` live, a hostile plugin beside a normal one.

The engine runs as a subprocess against a real redis-server and nats-server (``OperatorStack``).
The hostile plugin (``tests/runners/hostile``) tries, on its first tick, to read the host's
secrets (``/etc/shadow``, the engine's ``/proc/<pid>/cmdline``, the config file), to connect to
its link socket and to another Unix socket, and to start processes; it reports each outcome with
``self.log.warning``, which reaches the engine's JSON log as a ``strategy_log`` event. The normal
one keeps trading, and after SIGTERM nothing of the hostile runner is left.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RUNNERS
from tests.integration.operator_stack import OperatorStack, live_stack, poll_until, runner_pid_alive
from tests.integration.test_sandbox_escapes import survivors
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    yield from live_stack(tmp_path / "project", redis_server, nats_server)


@pytest.fixture
def unix_listener(tmp_path: Path) -> Iterator[socket.socket]:
    """A local service on a Unix socket, as a Redis or a database might listen."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(tmp_path / "service.sock"))
        server.listen(8)
        server.setblocking(False)
        yield server


def _attempts(stack: OperatorStack) -> dict[str, str]:
    records = [r for r in stack.logs("strategy_log") if r.get("message") == "hostile_attempt"]
    return {r["fields"]["attempt"]: r["fields"]["outcome"] for r in records if r.get("strategy") == "hostile"}


def _with_hostile(stack: OperatorStack, listener: socket.socket) -> dict[str, Any]:
    shutil.copytree(RUNNERS / "hostile", stack.plugins / "hostile")
    shutil.rmtree(stack.plugins / "edited")
    strategies = stack.config["strategies"]
    del strategies["edited"]
    strategies["hostile"] = {
        "plugin": "hostile", "strategy": "hostile", "symbols": ["BTCUSDT"],
        "parameters": {"paths": str(stack.config_path), "sockets": listener.getsockname(), "forks": 20},
    }  # fmt: skip
    return dict(stack.config)


class TestSandboxLive:
    def test_hostile_plugin_gets_nothing_and_leaves_nothing(
        self, stack: OperatorStack, unix_listener: socket.socket
    ) -> None:
        """Secrets, sockets and processes are refused; the normal strategy trades on; nothing survives SIGTERM."""
        stack.write_config(_with_hostile(stack, unix_listener))
        stack.start(ready=("steady", "hostile"))
        attempts = poll_until(lambda: (a := _attempts(stack)) and "thread" in a and a, 30, "hostile attempts")
        engine = stack.engine
        assert engine is not None
        reads = ["/etc/shadow", f"/proc/{engine.pid}/cmdline", f"/proc/{engine.pid}/environ", str(stack.config_path)]
        refused = [f"read {path}" for path in reads] + ["socketpair", "setsid double fork", "subprocess"]
        refused += [a for a in attempts if a.startswith(("connect ", "fork "))]
        assert len([a for a in attempts if a.startswith("connect ")]) == 2
        assert {a: attempts[a] for a in refused if not attempts[a].startswith("PermissionError")} == {}
        assert attempts["thread"] == "ok: thread ran: True"
        with pytest.raises(BlockingIOError):
            unix_listener.accept()

        hostile = stack.strategy("hostile")
        assert hostile is not None and hostile["state"] == "running"
        assert {"landlock_read", "no_new_sockets", "no_processes"} <= set(hostile["sandbox"]["applied"])
        before = len(stack.orders("steady"))
        poll_until(lambda: len(stack.orders("steady")) > before + 3, 15, "steady trading on")

        for name in ("steady", "hostile"):  # runners run as batch work: a woken one does not preempt the host
            runner = stack.strategy(name)
            assert runner is not None and os.sched_getscheduler(runner["pid"]) == os.SCHED_BATCH

        pid = hostile["pid"]
        assert stack.stop() == 0
        assert not runner_pid_alive(pid)
        assert survivors(pid) == []

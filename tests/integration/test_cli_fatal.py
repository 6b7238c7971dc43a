"""What the operator sees when the engine cannot serve: one line naming the config key, exit code 3.

Each case runs the real command line (``strategy-engine``) as a subprocess with a port it must
listen on already taken by another socket of the test.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.integration.operator_stack import engine_command, environment
from tests.servers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def taken() -> Iterator[int]:
    """A port held by a listening socket for the whole test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield int(sock.getsockname()[1])
    sock.close()


def run(tmp_path: Path, *args: str, config: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return subprocess.run(
        [*engine_command(), *args, "--config", str(path)], cwd=tmp_path, env=environment(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def unreachable_brokers() -> str:
    return f"redis: {{port: {free_port()}}}\nnats: {{url: 'nats://127.0.0.1:{free_port()}'}}\n"


class TestCannotServe:
    def test_http_port_in_use(self, tmp_path: Path, taken: int) -> None:
        """server.port taken: exit 3, one line naming server.port and the address, no traceback."""
        config = f"server: {{port: {taken}}}\nengine: {{pluginsDir: {ROOT / 'plugins'}}}\n" + unreachable_brokers()
        result = run(tmp_path, "run", config=config)
        assert result.returncode == 3, result.stderr[-2000:]
        [line] = [x for x in result.stderr.splitlines() if x.startswith("strategy-engine: cannot serve")]
        assert line == f"strategy-engine: cannot serve: server.port: cannot listen on 127.0.0.1:{taken}: " \
                       "address already in use"  # fmt: skip
        assert "Traceback" not in result.stderr and "never awaited" not in result.stderr

    def test_paper_venue_port_in_use(self, tmp_path: Path, taken: int) -> None:
        """grpc.orderExecutionAddress taken: the paper venue exits 3 naming the key."""
        config = f"grpc: {{orderExecutionAddress: '127.0.0.1:{taken}'}}\n" + unreachable_brokers()
        result = run(tmp_path, "paper-venue", config=config)
        assert result.returncode == 3, result.stderr[-2000:]
        assert f"cannot serve: grpc.orderExecutionAddress: cannot listen on 127.0.0.1:{taken}" in result.stderr
        assert "Traceback" not in result.stderr and "never awaited" not in result.stderr

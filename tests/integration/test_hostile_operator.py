"""End to end: ``strategy-engine run`` with hostile plugins beside a normal one, as an operator sees it.

The engine and the paper venue run as subprocesses (``OperatorStack``) against real redis-server
and nats-server. Beside a normal COUNTER (``steady``) run a plugin that forges a new symbol for
every signal, so many that the signal queue overflows and every drop is counted by symbol, and
that prints a 1 MB line now and then (``forger``), and a plugin whose hook calls ``sys.exit()``
(``exiter``). The operator sees: /metrics stays bounded (forged symbols are counted as ``other``),
the long lines are cut and counted and the forger keeps serving, the exiter is one boot error on
/status that says why, and steady keeps trading.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.operator_stack import OperatorStack, poll_until, write_counter
from tests.servers import NatsServer, RedisServer

HOSTILE = '''"""Test plugin: forges a new symbol for every signal, and prints a 1 MB line every few ticks."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sdk import Signal, Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class HostileConfig(StrategyConfig):
    forge: int = 100  # signals per tick, each on a symbol never seen before
    long_line_every: int = 20  # ticks between 1 MB lines on stdout


class Hostile(Strategy[HostileConfig]):
    name = "hostile"
    Config = HostileConfig

    def __init__(self, config: HostileConfig) -> None:
        super().__init__(config)
        self.seen = 0

    def on_tick(self, tick: Tick) -> None:
        self.seen += 1
        if self.seen % self.config.long_line_every == 1:
            sys.stdout.write("x" * 1_000_000 + "\\n")
            sys.stdout.flush()
        for i in range(self.config.forge):
            self.emit(Signal(symbol=f"FORGED{self.seen}X{i}", side="buy", quantity=0.001))


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[HostileConfig]]]:
    return [Hostile]
'''

EXITER = '''"""Test plugin: its hook calls sys.exit()."""

import sys

from sdk import hookimpl


@hookimpl
def strategy_engine_strategies():
    sys.exit()
'''


def _write_plugin(plugins: Path, name: str, source: str) -> None:
    (plugins / name).mkdir()
    (plugins / name / "__init__.py").write_text(source)


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    stack = OperatorStack(tmp_path / "project", redis_server, nats_server)
    write_counter(stack.plugins, "steady", "s1")
    _write_plugin(stack.plugins, "hostile", HOSTILE)
    _write_plugin(stack.plugins, "exiter", EXITER)
    stack.config["engine"]["signalBufferSize"] = 50  # the forger's 100 a tick overflow it: drops by symbol
    stack.config["strategies"] = {
        "steady": {"plugin": "steady", "strategy": "counter", "symbols": ["ETHUSDT"]},
        "forger": {"plugin": "hostile", "strategy": "hostile", "symbols": ["BTCUSDT"]},
        "exiter": {"plugin": "exiter", "strategy": "exiter", "symbols": ["SOLUSDT"]},
    }
    try:
        stack.start(ready=("steady", "forger"))
        yield stack
    finally:
        stack.stop()


def _forged_dropped(stack: OperatorStack) -> float:
    return stack.metric("signals_dropped_total", strategy="forger", symbol="other", reason="queue_full")


def _truncated(stack: OperatorStack) -> float:
    return stack.metric("runner_output_truncated_total", strategy="forger")


class TestHostilePluginsLive:
    def test_hostile_plugins_are_contained_and_the_normal_one_trades(self, stack: OperatorStack) -> None:
        """Forged symbols keep /metrics bounded, 1 MB lines are not fatal, sys.exit in a hook is one boot
        error on /status, and the normal strategy keeps trading through all of it."""
        poll_until(lambda: _forged_dropped(stack) > 0, 20, f"forged signals dropped ({stack.tail()})")
        _, before = stack.get("/metrics")
        orders_before = len(stack.orders("steady"))
        dropped_before = _forged_dropped(stack)
        truncated_before = _truncated(stack)

        def went_on() -> bool:
            """Over a thousand more forged symbols dropped, two more 1 MB lines cut, steady 20 orders on."""
            return (
                _forged_dropped(stack) - dropped_before > 1000 and _truncated(stack) >= truncated_before + 2
                and len(stack.orders("steady")) > orders_before + 20
            )  # fmt: skip

        poll_until(went_on, 30, f"the forger forging and the steady trading on ({stack.tail()})", interval=0.1)
        _, after = stack.get("/metrics")
        dropped = _forged_dropped(stack)

        assert dropped - dropped_before > 1000, (dropped_before, dropped)  # that many new symbols, no new series
        assert "FORGED" not in after
        assert len(after) - len(before) < 3_000, (len(before), len(after))
        print(f"\n/metrics {len(before)} -> {len(after)} bytes while {dropped - dropped_before:.0f} forged "
              "signals were dropped")  # fmt: skip

        assert _truncated(stack) > 0
        forger = stack.strategy("forger")
        assert forger is not None and forger["state"] == "running" and forger["restarts"] == 0, forger

        exiter = stack.strategy("exiter")
        assert exiter is not None and exiter["state"] == "open", exiter
        assert exiter["restarts"] == 0 and exiter["breaker"]["failures_by_kind"]["boot"] == 1, exiter
        assert "sys.exit" in exiter["last_error"] and "closed the stream" not in exiter["last_error"], exiter

        assert len(stack.orders("steady")) > orders_before + 20, (orders_before, len(stack.orders("steady")))
        steady = stack.strategy("steady")
        assert steady is not None and steady["state"] == "running" and steady["restarts"] == 0, steady

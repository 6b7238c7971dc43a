"""``strategy-engine new-plugin NAME``: a plugin package that works and is tested from the start.

The generated package is what plugins/README.md describes: a hook in ``__init__.py``, a strategy,
its typed config and unit tests that run on the SDK alone (``sdk.testing``). The strategy shows
the current way of each part: the config declared once, as the type parameter; orders followed by
their client order id in ``on_order``; a timer (``self.every`` in ``on_start``, ``on_timer``);
state across a hot reload. The tests use fills, order updates and timers from ``sdk.testing``.
It type-checks under ``mypy --strict`` and passes the repository's ruff settings, like the
built-in plugins (tests/integration/test_cli.py checks both).
"""

from __future__ import annotations

import keyword
from pathlib import Path

__all__ = ["ScaffoldError", "new_plugin"]


class ScaffoldError(Exception):
    pass


_INIT = '''"""{title}: a Strategy Engine plugin package."""

from __future__ import annotations

from sdk import Strategy, hookimpl

from .config import {cls}Config
from .strategy import {cls}

__all__ = [
    "{cls}",
    "{cls}Config",
    "strategy_engine_strategies",
]


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[{cls}Config]]]:
    # classes, not instances: the runner builds each one from its validated config
    return [{cls}]
'''

_CONFIG = '''"""Parameters of {cls}: every field has a default; unknown keys are rejected."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import StrategyConfig


@dataclass(frozen=True)
class {cls}Config(StrategyConfig):
    quantity: float = 0.01
    """Order size, base asset."""
    min_move: float = 0.001
    """Fractional move of the mid since the last order that triggers a new one (0.001 = 0.1 %)."""
    report_seconds: float = 60.0
    """Log the position every this many seconds of engine time (0: never)."""

    def validate(self) -> None:
        """Rules beyond the types; run on every construction (from_mapping or a direct call)."""
        if self.quantity <= 0:
            self.fail("quantity", f"must be > 0, got {{self.quantity}}")
        if self.min_move <= 0:
            self.fail("min_move", f"must be > 0, got {{self.min_move}}")
        if self.report_seconds < 0:
            self.fail("report_seconds", f"must be >= 0, got {{self.report_seconds}}")
'''

_STRATEGY = '''"""{cls}: buys after the mid rises by ``min_move``, sells after it falls by as much.

One order per symbol at a time: ``emit`` returns the order's client order id, and ``on_order``
hears what became of it; until it is done (filled, cancelled, rejected, expired) no other order
goes for that symbol. A timer logs the position every ``report_seconds`` of engine time.

Replace the logic with yours; keep handlers fast (they share a deadline per batch), never read
the wall clock (use ``self.now_ns``) and never open sockets (the sandbox refuses them).
"""

from __future__ import annotations

import json

from sdk import OrderUpdate, OrderUpdateStatus, Side, Signal, Strategy, Tick, Timer

from .config import {cls}Config

_STATE_VERSION = 1


class {cls}(Strategy[{cls}Config]):
    """Buys after the mid rises by min_move, sells after it falls by as much."""

    name = "{name}"

    def __init__(self, config: {cls}Config) -> None:
        super().__init__(config)
        self.anchor: dict[str, float] = {{}}  # mid at the last order, per symbol
        self.in_flight: dict[str, str] = {{}}  # symbol -> client order id of the order not done yet

    def on_start(self) -> None:
        if self.config.report_seconds > 0:  # timers are the runner's: ask again in every on_start
            self.every("report", self.config.report_seconds)

    def on_tick(self, tick: Tick) -> None:
        anchor = self.anchor.setdefault(tick.symbol, tick.mid)
        move = tick.mid / anchor - 1
        if abs(move) >= self.config.min_move and tick.symbol not in self.in_flight:
            side = Side.BUY if move > 0 else Side.SELL
            metadata = {{"move": f"{{move:.6f}}"}}
            signal = Signal(symbol=tick.symbol, side=side, quantity=self.config.quantity, metadata=metadata)
            self.in_flight[tick.symbol] = self.emit(signal)
            self.anchor[tick.symbol] = tick.mid

    def on_order(self, update: OrderUpdate) -> None:
        if self.in_flight.get(update.symbol) != update.client_order_id or not update.done:
            return  # not ours (a previous runner's), or still working
        del self.in_flight[update.symbol]
        if update.status is OrderUpdateStatus.REJECTED:
            self.log.warning("order_rejected", symbol=update.symbol, rule=update.rule, reason=update.reason)

    def on_timer(self, timer: Timer) -> None:
        for symbol in sorted(self.anchor):
            self.log.info("position", symbol=symbol, quantity=self.position_quantity(symbol))

    def on_save(self) -> bytes:
        return json.dumps({{"version": _STATE_VERSION, "anchor": self.anchor}}).encode()

    def on_load(self, state: bytes) -> None:
        """Restore saved state; state this version cannot read is dropped with a warning."""
        try:
            data = json.loads(state)
            if data["version"] != _STATE_VERSION:
                raise ValueError(f"state version {{data['version']!r}}, expected {{_STATE_VERSION}}")
            self.anchor = {{str(symbol): float(mid) for symbol, mid in data["anchor"].items()}}
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            self.log.warning("state_discarded", reason=str(err))
            self.anchor = {{}}
'''

_TEST = '''"""Unit tests of {cls}, with no server: sdk.testing runs it over crafted events."""

from __future__ import annotations

import pytest

{imports}

SECOND = 1_000_000_000


def tick(mid: float, seq: int) -> Tick:
    """A BTCUSDT quote one unit wide around ``mid``, at second ``seq``."""
    return Tick(
        symbol="BTCUSDT",
        timestamp_ns=seq * SECOND,
        bid_price=mid - 0.5,
        bid_size=1.0,
        ask_price=mid + 0.5,
        ask_size=1.0,
        sequence=seq,
    )


def make(min_move: float = 0.001, report_seconds: float = 60.0) -> {cls}:
    """The strategy with these parameters, the others at their defaults."""
    return {cls}(
        {cls}Config(min_move=min_move, report_seconds=report_seconds),
    )


def rejected(client_order_id: str, seq: int) -> OrderUpdate:
    """What the engine says of an order its risk checks refused."""
    return OrderUpdate(
        client_order_id=client_order_id,
        symbol="BTCUSDT",
        side=Side.BUY,
        status=OrderUpdateStatus.REJECTED,
        quantity=0.01,
        rule="max_position_size",
        timestamp_ns=seq * SECOND,
    )


class Test{cls}:
    def test_buys_after_a_rise(self) -> None:
        """A rise of min_move from the first mid gives one buy."""
        result = run_strategy(make(min_move=0.01), [tick(100.0, 1), tick(101.0, 2)])
        assert [s.side for s in result.signals] == [Side.BUY]

    def test_quiet_market_gives_nothing(self) -> None:
        """Moves smaller than min_move give no signal."""
        result = run_strategy(make(min_move=0.01), [tick(100.0, i) for i in range(1, 50)])
        assert result.signals == []

    def test_no_second_order_while_one_is_on_its_way(self) -> None:
        """Unanswered (no fill model), the first order stays in flight: the next move sends nothing."""
        result = run_strategy(make(min_move=0.01), [tick(100.0, 1), tick(101.0, 2), tick(103.0, 3)])
        assert [s.side for s in result.signals] == [Side.BUY]

    def test_a_rejected_order_frees_the_symbol(self) -> None:
        """A rejection (an OrderUpdate in the events, by the id sdk.testing gives) lets the next move trade."""
        events: list[Event] = [tick(100.0, 1), tick(101.0, 2), rejected("order-1", 3), tick(103.0, 4)]
        result = run_strategy(make(min_move=0.01), events)
        assert [s.side for s in result.signals] == [Side.BUY, Side.BUY]
        assert [event for _, event, _ in result.logs] == ["order_rejected"]

    def test_fills_at_the_next_tick_and_moves_the_position(self) -> None:
        """With a fill model the buy fills at the next tick's ask and the position follows."""
        events = [tick(100.0, 1), tick(101.0, 2), tick(101.2, 3)]
        result = run_strategy(make(min_move=0.01), events, fills=FillModel())
        assert [(f.side, f.price) for f in result.fills] == [(Side.BUY, 101.7)]
        assert [u.status for u in result.orders] == [OrderUpdateStatus.ACCEPTED, OrderUpdateStatus.FILLED]
        assert result.positions["BTCUSDT"].quantity == pytest.approx(0.01)

    def test_the_timer_logs_the_position_on_a_quiet_market(self) -> None:
        """The report timer fires every report_seconds of engine time, here after the last tick (until_ns)."""
        events = [tick(100.0, 1), tick(101.0, 2), tick(101.2, 3)]
        result = run_strategy(make(min_move=0.01, report_seconds=30), events, fills=True, until_ns=70 * SECOND)
        assert [t.timestamp_ns for t in result.timers] == [31 * SECOND, 61 * SECOND]
        assert [data for _, event, data in result.logs if event == "position"] == [
            {{"symbol": "BTCUSDT", "quantity": pytest.approx(0.01)}},
        ] * 2

    def test_state_survives_a_reload(self) -> None:
        """on_save/on_load carry the anchor price into the next runner."""
        first = run_strategy(make(min_move=0.01), [tick(100.0, 1)])
        second = run_strategy(make(min_move=0.01), [tick(99.0, 2)], restore=first.state)
        assert [s.side for s in second.signals] == [Side.SELL]

    def test_unreadable_state_starts_fresh(self) -> None:
        """State it cannot read is dropped with a warning, not raised."""
        result = run_strategy(make(), [tick(100.0, 1)], restore=b"not json")
        assert [(level, event) for level, event, _ in result.logs] == [("warning", "state_discarded")]

    def test_rejects_a_bad_quantity(self) -> None:
        """The config names the field it rejects."""
        with pytest.raises(ConfigError, match="quantity"):
            {cls}Config.from_mapping({{"quantity": -1}})
'''


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _test_imports(name: str, cls: str) -> str:
    # sorted as ruff's isort sorts one first-party block, whatever the package is called
    lines = [
        "from sdk import ConfigError, Event, OrderUpdate, OrderUpdateStatus, Side, Tick",
        "from sdk.testing import FillModel, run_strategy",
        f"from {name}.config import {cls}Config",
        f"from {name}.strategy import {cls}",
    ]
    return "\n".join(sorted(lines, key=lambda line: line.split()[1]))


def new_plugin(name: str, plugins_dir: Path) -> Path:
    """Write plugins_dir/NAME with a strategy, its config and its tests; return the folder."""
    if not name.isidentifier() or keyword.iskeyword(name) or not name.islower():
        raise ScaffoldError(f"plugin name {name!r}: use a lower-case Python identifier, e.g. my_strategy")
    if name in {"sdk", "host", "runner", "protocol", "tests"}:
        raise ScaffoldError(f"plugin name {name!r}: taken by the engine's own packages, choose another")
    target = plugins_dir / name
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or remove it")
    cls = _class_name(name)
    values = {"name": name, "cls": cls, "title": name.replace("_", " ").capitalize()}
    (target / "tests").mkdir(parents=True)
    (target / "__init__.py").write_text(_INIT.format(**values))
    (target / "config.py").write_text(_CONFIG.format(**values))
    (target / "strategy.py").write_text(_STRATEGY.format(**values))
    (target / "tests" / "__init__.py").write_text("")
    (target / "tests" / f"test_{name}.py").write_text(_TEST.format(imports=_test_imports(name, cls), **values))
    return target

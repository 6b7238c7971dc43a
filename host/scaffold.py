"""``strategy-engine new-plugin NAME``: a plugin package that works and is tested from the start.

The generated package is what plugins/README.md describes: a hook in ``__init__.py``, a strategy,
its typed config and unit tests that run on the SDK alone (``sdk.testing``). It type-checks under
``mypy --strict`` and passes the repository's ruff settings, like the built-in plugins.
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

__all__ = ["{cls}", "{cls}Config", "strategy_engine_strategies"]


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[{cls}Config]]]:
    return [{cls}]  # classes, not instances: the runner builds each one from its validated config
'''

_CONFIG = '''"""Parameters of {cls}: every field has a default; unknown keys are rejected."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import StrategyConfig


@dataclass(frozen=True)
class {cls}Config(StrategyConfig):
    quantity: float = 0.01  # order size, base asset
    min_move: float = 0.001  # fractional move of the mid since the last order that triggers a new one

    def validate(self) -> None:
        """Rules beyond the types; run on every construction (from_mapping or a direct call)."""
        if self.quantity <= 0:
            self.fail("quantity", f"must be > 0, got {{self.quantity}}")
        if self.min_move <= 0:
            self.fail("min_move", f"must be > 0, got {{self.min_move}}")
'''

_STRATEGY = '''"""{cls}: buys after the mid rises by ``min_move``, sells after it falls by as much.

Replace the logic with yours; keep handlers fast (they share a deadline per batch), never read
the wall clock (use ``self.now_ns``) and never open sockets (the sandbox refuses them).
"""

from __future__ import annotations

import json

from sdk import Side, Signal, Strategy, Tick

from .config import {cls}Config

_STATE_VERSION = 1


class {cls}(Strategy[{cls}Config]):
    """Buys after the mid rises by min_move, sells after it falls by as much."""

    name = "{name}"

    def __init__(self, config: {cls}Config) -> None:
        super().__init__(config)
        self.anchor: dict[str, float] = {{}}  # mid at the last order, per symbol

    def on_tick(self, tick: Tick) -> None:
        anchor = self.anchor.setdefault(tick.symbol, tick.mid)
        move = tick.mid / anchor - 1
        if abs(move) >= self.config.min_move:
            side = Side.BUY if move > 0 else Side.SELL
            metadata = {{"move": f"{{move:.6f}}"}}
            self.emit(Signal(symbol=tick.symbol, side=side, quantity=self.config.quantity, metadata=metadata))
            self.anchor[tick.symbol] = tick.mid

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


def tick(mid: float, seq: int) -> Tick:
    return Tick(
        symbol="BTCUSDT",
        timestamp_ns=seq * 1_000_000,
        bid_price=mid - 0.5,
        bid_size=1.0,
        ask_price=mid + 0.5,
        ask_size=1.0,
        sequence=seq,
    )


class Test{cls}:
    def test_buys_after_a_rise(self) -> None:
        """A rise of min_move from the first mid gives one buy."""
        result = run_strategy({cls}({cls}Config(min_move=0.01)), [tick(100.0, 1), tick(101.0, 2)])
        assert [s.side for s in result.signals] == [Side.BUY]

    def test_quiet_market_gives_nothing(self) -> None:
        """Moves smaller than min_move give no signal."""
        result = run_strategy({cls}({cls}Config(min_move=0.01)), [tick(100.0, i) for i in range(1, 50)])
        assert result.signals == []

    def test_state_survives_a_reload(self) -> None:
        """on_save/on_load carry the anchor price into the next runner."""
        first = run_strategy({cls}({cls}Config(min_move=0.01)), [tick(100.0, 1)])
        second = run_strategy({cls}({cls}Config(min_move=0.01)), [tick(99.0, 2)], restore=first.state)
        assert [s.side for s in second.signals] == [Side.SELL]

    def test_unreadable_state_starts_fresh(self) -> None:
        """State it cannot read is dropped with a warning, not raised."""
        result = run_strategy({cls}({cls}Config()), [tick(100.0, 1)], restore=b"not json")
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
        "from sdk import ConfigError, Side, Tick",
        "from sdk.testing import run_strategy",
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

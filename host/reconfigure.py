"""Config watching: what a changed config file means for a running engine, and applying it.

Model. ``delta(running, new)`` is pure: it compares two whole, already validated ``Config``s key
by key and sorts every difference into what can be applied while the engine runs and what needs
a restart:

- applied live: ``strategies`` (each changed strategy is swapped to a new runner with its new
  parameters, an enabled one starts, a disabled or removed one stops, its working orders cancelled
  first), every ``risk`` limit except ``initialBalance`` (the book's starting balance), and
  ``logging.level``;
- restart required: everything else (ports, addresses, brokers, the engine's runner settings, the
  mode, ``risk.initialBalance``, the log destination). These are named in the log as camelCase key
  paths and left exactly as they run: never half-applied.

``Reconfigurer.apply(path)`` is the shell: it loads and validates the whole file first (a file that
does not load changes nothing and the error names the key), then applies the strategies, the risk
limits and the log level, and keeps as the running config the old one with the applied sections
replaced, so a key that needs a restart is reported again on the next change until the engine is
restarted with it. A strategy whose runner refuses its new parameters keeps serving on its old ones
and is named in the outcome; the rest of the file is still applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from host.config import Config, RiskConfig, load
from host.config._values import _camel
from host.supervisor.status import StrategyDefinition

__all__ = ["ConfigDelta", "ConfigOutcome", "Reconfigurer", "delta"]

log = structlog.get_logger("host.reconfigure")

# Risk keys that only mean something when the engine starts.
_RISK_AT_START = frozenset({"initial_balance"})


@dataclass(frozen=True)
class ConfigDelta:
    """What differs between the running config and a new one, sorted by how it can be applied."""

    strategies: bool  # the strategies section differs
    risk: RiskConfig | None  # new risk limits to apply, or None when they are the same
    log_level: str | None  # the new level, or None
    restart_required: tuple[str, ...]  # camelCase key paths that only a restart applies

    @property
    def applied_keys(self) -> tuple[str, ...]:
        keys = ["strategies"] if self.strategies else []
        if self.risk is not None:
            keys.append("risk")
        if self.log_level is not None:
            keys.append("logging.level")
        return tuple(keys)


def _differences(section: str, old: Any, new: Any) -> list[str]:
    return [
        f"{section}.{_camel(f.name)}" for f in dataclasses.fields(old) if getattr(old, f.name) != getattr(new, f.name)
    ]


def delta(running: Config, new: Config) -> ConfigDelta:
    """Sort the differences between ``running`` and ``new`` (both validated) by how they apply."""
    restart: list[str] = []
    for f in dataclasses.fields(Config):
        if f.name in ("strategies", "risk", "logging") or not f.compare:
            continue  # compare=False: what the file said about itself (key_report), not configuration
        restart += _differences(f.name, getattr(running, f.name), getattr(new, f.name))
    risk_keys = _differences("risk", running.risk, new.risk)
    restart += [key for key in risk_keys if key.split(".")[1] in {_camel(k) for k in _RISK_AT_START}]
    hot_risk = [key for key in risk_keys if key not in restart]
    logging_keys = _differences("logging", running.logging, new.logging)
    restart += [key for key in logging_keys if key != "logging.level"]
    risk = dataclasses.replace(new.risk, **{k: getattr(running.risk, k) for k in _RISK_AT_START})
    return ConfigDelta(
        strategies=dict(running.strategies) != dict(new.strategies),
        risk=risk if hot_risk else None,
        log_level=new.logging.level if "logging.level" in logging_keys else None,
        restart_required=tuple(restart),
    )


def applied(running: Config, new: Config, change: ConfigDelta) -> Config:
    """The config the engine runs after ``change``: ``running`` with the applied parts of ``new``."""
    return dataclasses.replace(
        running,
        strategies=new.strategies if change.strategies else running.strategies,
        risk=change.risk if change.risk is not None else running.risk,
        logging=dataclasses.replace(running.logging, level=new.logging.level),
    )


@dataclass(frozen=True)
class ConfigOutcome:
    """How applying one config file went."""

    applied: tuple[str, ...]  # the sections or keys that took effect
    restart_required: tuple[str, ...]  # changed keys left as they run until a restart
    refused: Mapping[str, str]  # strategy id -> why it keeps its old definition

    @property
    def ok(self) -> bool:
        return not self.refused


class StrategyTarget(Protocol):
    """What a new strategy list is applied to (``Supervisor``)."""

    async def set_definitions(self, definitions: Iterable[StrategyDefinition]) -> Mapping[str, str]: ...


class Reconfigurer:
    """Loads a changed config file and applies what can be applied to the running engine."""

    def __init__(
        self,
        running: Config,
        *,
        strategies: StrategyTarget,
        definitions: Callable[[Config], list[StrategyDefinition]],
        set_risk: Callable[[RiskConfig], None],
        set_log_level: Callable[[str], None],
        loader: Callable[[Path], Config] = load,
    ) -> None:
        self.running = running
        self._strategies = strategies
        self._definitions = definitions
        self._set_risk = set_risk
        self._set_log_level = set_log_level
        self._loader = loader

    async def apply(self, path: Path) -> ConfigOutcome:
        """Validate the whole file at ``path``, then apply it; raises ``ConfigError`` for a bad file."""
        new = self._loader(path)  # raises before anything is touched
        change = delta(self.running, new)
        refused: Mapping[str, str] = {}
        if change.strategies:
            refused = await self._apply_strategies(new)
        if change.risk is not None:
            self._set_risk(change.risk)
        if change.log_level is not None:
            self._set_log_level(change.log_level)
        self.running = applied(self.running, new, change)
        if change.restart_required:
            log.warning("config_restart_required", path=str(path), keys=list(change.restart_required))
        return ConfigOutcome(change.applied_keys, change.restart_required, refused)

    def _apply_strategies(self, new: Config) -> Awaitable[Mapping[str, str]]:
        return self._strategies.set_definitions(self._definitions(new))

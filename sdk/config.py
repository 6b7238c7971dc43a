"""Typed, frozen per-strategy configs that reject unknown keys.

A strategy declares its parameters as a frozen dataclass deriving from ``StrategyConfig``;
``from_mapping`` builds it from plain data (YAML, JSON) and reports every problem with the full
key path: ``strategies.momentum.threshold: expected a number, got str '0.02'``. Further rules go
in ``validate()`` (run on every construction), which raises ``ConfigError`` via ``self.fail(field, reason)``.
A subclass needs no ``__post_init__``: the base's runs ``validate()``. A strategy names its config
class once, as its type parameter: ``class Momentum(Strategy[MomentumConfig])``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping, TypeVar, Union

from sdk.errors import ConfigError

__all__ = ["StrategyConfig"]

C = TypeVar("C", bound="StrategyConfig")


@dataclasses.dataclass(frozen=True)
class StrategyConfig:
    """Base of every strategy config: a frozen dataclass; ``symbols`` limits market data to these symbols (empty: all).

    Subclass it as ``@dataclass(frozen=True) class MyConfig(StrategyConfig)`` with a default for
    every field, and put rules across fields in ``validate()``.
    """

    symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Rules hold however the config is built: from_mapping or a direct constructor call.
        self.validate()

    def validate(self) -> None:
        """Check rules across fields; call ``self.fail(field, reason)`` on a violation."""

    def fail(self, field: str, reason: str) -> typing.NoReturn:
        raise ConfigError(field, reason)

    @classmethod
    def from_mapping(cls: type[C], data: Mapping[str, Any] | None, *, path: str = "") -> C:
        """Build the config from plain data; raise ConfigError naming the key path on any bad value."""
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"expected a mapping of parameters, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        unknown = sorted(map(str, set(data) - set(fields)))
        if unknown:
            raise ConfigError(_join(path, unknown[0]), _unknown_reason(unknown[0], fields))
        missing = [name for name, f in fields.items() if f.init and name not in data and _required(f)]
        if missing:
            raise ConfigError(_join(path, missing[0]), "required")
        values = {name: _coerce(hints[name], value, _join(path, name)) for name, value in data.items()}
        try:
            config = cls(**values)
        except ConfigError as err:
            raise ConfigError(_join(path, err.path), err.reason) from None
        return config

    def to_mapping(self) -> dict[str, Any]:
        """Plain data that ``from_mapping`` turns back into an equal config."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key


def _unknown_reason(key: str, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, fields, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key (known: {', '.join(sorted(fields))}){hint}"


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(inner[0], value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {type(value).__name__} {value!r}")
        if args and args[-1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(path, f"expected a list of {len(args)} items, got {len(value)}")
        items = args if args and args[-1] is not Ellipsis else (args[0] if args else Any,) * len(value)
        return tuple(_coerce(item, v, f"{path}[{i}]") for i, (item, v) in enumerate(zip(items, value, strict=True)))
    return _scalar(hint, value, path)


def _scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected true or false, got {type(value).__name__} {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, f"expected a number, got {type(value).__name__} {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected an integer, got {type(value).__name__} {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, f"expected a string, got {type(value).__name__} {value!r}")
    raise ConfigError(path, f"unsupported parameter type {hint!r} in the strategy's config class")

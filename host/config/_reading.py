"""Reading a config: YAML file or plain data -> ``Config``, then the ``STRATEGY_ENGINE_*`` overrides.

Every value is checked here, once, against its field's declaration; the first problem raises
``ConfigError`` naming the full key path (or the env var, or the file and line for bad YAML).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, get_type_hints

import yaml

from host.config._go import KeyUse, go_only_keys, translate
from host.config._sections import _STRATEGY_ID, Config, LoggingConfig, StrategySpec, _Section
from host.config._values import ConfigError, _camel, _join, _kind, _show, _suggest, parse_duration

S = TypeVar("S", bound=_Section)


# --- environment overrides ------------------------------------------------------------------------

ENV_OVERRIDES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "STRATEGY_ENGINE_REDIS_HOST": ("redis", "host"),
        "STRATEGY_ENGINE_REDIS_PORT": ("redis", "port"),
        "STRATEGY_ENGINE_REDIS_PASSWORD": ("redis", "password"),
        "STRATEGY_ENGINE_NATS_URL": ("nats", "url"),
        "STRATEGY_ENGINE_GRPC_ORDER_EXECUTION_ADDRESS": ("grpc", "order_execution_address"),
        "STRATEGY_ENGINE_SERVER_PORT": ("server", "port"),
        "STRATEGY_ENGINE_SERVER_AUTH_TOKEN": ("server", "auth_token"),
        "STRATEGY_ENGINE_ENGINE_MODE": ("engine", "mode"),
        "STRATEGY_ENGINE_LOG_LEVEL": ("logging", "level"),
    }
)
"""Environment variable -> (section, field) it overrides, after the file."""


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for var, (section, name) in ENV_OVERRIDES.items():
        if var in environ:
            found.setdefault(section, {})[name] = (var, environ[var])
    return found


def _from_env(hint: Any, text: str, path: str) -> object:
    if hint is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ConfigError(path, f"expected an integer, got {text!r}") from None
    return text


# --- loading ----------------------------------------------------------------------------------------


def load(path: str | Path | None, *, environ: Mapping[str, str] | None = None) -> Config:
    """The config in the YAML file at ``path`` (None: the embedded defaults), then env overrides."""
    if path is None:
        return parse({}, environ=environ)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(file), "no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(str(file), "not a UTF-8 text file") from None
    except OSError as err:
        raise ConfigError(str(file), f"cannot read the config file: {err.strerror or err}") from None
    data = _yaml(text, str(file))
    if data is None:
        data = {}  # an empty file: all defaults
    if not isinstance(data, Mapping):
        raise ConfigError(str(file), f"expected a mapping of sections at the top level, got {_kind(data)}")
    return parse(data, environ=environ)


def parse(data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> Config:
    """The config in plain data (camelCase keys, as in the YAML file), then env overrides."""
    if not isinstance(data, Mapping):
        raise ConfigError("", f"expected a mapping of sections at the top level, got {_kind(data)}")
    fields = {f.name: f for f in dataclasses.fields(Config) if f.compare}
    _reject_unknown(data, fields, "")
    original, (data, notes) = data, translate(data)
    overrides = _env_overrides(os.environ if environ is None else environ)
    hints = get_type_hints(Config)
    sections: dict[str, Any] = {
        name: _section(hints[name], data.get(name), name, overrides.get(name, {}))
        for name in fields
        if name != "strategies"
    }
    if data.get("strategies") is not None:
        sections["strategies"] = _strategies(data["strategies"], "strategies")
    metrics = data.get("metrics")
    if not (isinstance(metrics, Mapping) and "port" in metrics):  # unset: follows server.port (and its env)
        sections["metrics"] = dataclasses.replace(sections["metrics"], port=sections["server"].port)
    return Config(**sections, key_report=_key_report(original, notes, sections["logging"]))


def _key_report(data: Mapping[str, Any], notes: list[KeyUse], logging: LoggingConfig) -> tuple[KeyUse, ...]:
    """How each key of the file was taken, in file order: the translation's notes, else used as it is."""
    if logging.destination != "file" and logging.file:
        why = f"logging.output is {logging.output}: the file is written only with output: file"
        notes = [*notes, KeyUse("logging.file", "ignored", why)]
    report: list[KeyUse] = []
    for section, values in data.items():
        for key in values if isinstance(values, Mapping) else ():
            path = _join(section, str(key))
            taken = [use for use in notes if use.key == path or use.key.startswith((f"{path}.", f"{path}["))]
            report += taken or [KeyUse(path, "used")]
    return tuple(report)


def _section(cls: type[S], data: object, path: str, env: Mapping[str, tuple[str, str]], **fixed: Any) -> S:
    mapping = _mapping({} if data is None else data, path)
    fields = {_camel(f.name): f for f in dataclasses.fields(cls) if f.name not in fixed}  # type: ignore[arg-type]
    _reject_unknown(mapping, fields, path, also=go_only_keys(path))
    hints = get_type_hints(cls)
    values = {
        f.name: _value(f, hints[f.name], mapping[key], _join(path, key)) for key, f in fields.items() if key in mapping
    }
    for f in fields.values():
        if f.name in env:
            var, text = env[f.name]
            values[f.name] = _value(f, hints[f.name], _from_env(hints[f.name], text, f"env {var}"), f"env {var}")
    section = cls(**values, **fixed)
    for key, reason in section._problems():
        raise ConfigError(_join(path, key), reason)
    return section


def _strategies(data: object, path: str) -> Mapping[str, StrategySpec]:
    specs: dict[str, StrategySpec] = {}
    for sid, entry in _mapping(data, path).items():
        if not isinstance(sid, str) or _STRATEGY_ID.fullmatch(sid) is None:
            reason = "a strategy id must be letters, digits, '_', '-' or '.', starting with a letter or digit"
            raise ConfigError(_join(path, str(sid)), reason)
        specs[sid] = _section(StrategySpec, entry, _join(path, sid), {}, id=sid)
    return MappingProxyType(specs)


def _value(f: dataclasses.Field[Any], hint: Any, raw: object, path: str) -> Any:
    value = parse_duration(raw, path) if f.metadata.get("duration") else _typed(hint, raw, path, secret=not f.repr)
    normalize = f.metadata.get("normalize")
    if normalize is not None:
        value = normalize(value)
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        hint = _suggest(str(value), choices)
        raise ConfigError(path, f"must be one of {', '.join(choices)}, got {_show(raw)}{hint}")
    check = f.metadata.get("check")
    broken = check(value) if check is not None else None
    if broken:
        raise ConfigError(path, f"{broken}, got {_show(raw)}")
    return value


def _typed(hint: Any, raw: object, path: str, *, secret: bool = False) -> Any:
    if hint is bool and isinstance(raw, bool):
        return raw
    if hint is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if hint is float and isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        return float(raw)
    if hint is str and isinstance(raw, str):
        return raw
    if hint == tuple[str, ...] and isinstance(raw, list | tuple):
        for i, item in enumerate(raw):
            _typed(str, item, f"{path}[{i}]")
        return tuple(raw)
    if hint == Mapping[str, Any] and isinstance(raw, Mapping | None):
        return _parameters(raw or {}, path)
    if hint == Mapping[str, str] and isinstance(raw, Mapping | None):
        for key, item in (raw or {}).items():
            _typed(str, key, _join(path, str(key)))
            _typed(str, item, _join(path, key))
        return MappingProxyType(dict(raw or {}))
    if secret:  # a secret's value stays out of messages and logs
        raise ConfigError(path, f"expected {_EXPECTED[hint]}, got {_kind(raw)} (value hidden; quote it)")
    raise ConfigError(path, f"expected {_EXPECTED[hint]}, got {_show(raw)}{_quote_hint(hint, raw)}")


_EXPECTED: dict[Any, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a finite number",
    str: "a string",
    tuple[str, ...]: "a list of strings",
    Mapping[str, Any]: "a mapping",
    Mapping[str, str]: "a mapping of strings to strings",
}


def _quote_hint(hint: Any, raw: object) -> str:
    scalar = isinstance(raw, int | float | bool)
    return f" (quote it if it is meant as text: '{_show(raw)}')" if hint is str and scalar else ""


def _parameters(raw: Mapping[Any, Any], path: str) -> Mapping[str, Any]:
    for key in raw:
        if not isinstance(key, str):
            raise ConfigError(_join(path, str(key)), "parameter names must be strings")
    return MappingProxyType(copy.deepcopy(dict(raw)))  # nothing the caller holds stays shared


def _mapping(data: object, path: str) -> Mapping[Any, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping of keys, got {_kind(data)} {_show(data)}")
    return data


def _reject_unknown(data: Mapping[Any, Any], known: Mapping[str, Any], path: str, also: tuple[str, ...] = ()) -> None:
    """Refuse a key that is not ``known``; ``also``: the Go service's keys, offered as suggestions too."""
    for key in data:
        if key not in known:
            hint = _suggest(str(key), [*known, *also])
            reason = f"unknown key{hint}" if hint else f"unknown key (known: {', '.join(known)})"
            raise ConfigError(_join(path, str(key)), reason)


# --- YAML ---------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects a duplicate key, which PyYAML would silently resolve to the last value."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in with << may be overridden: that is what merging is for
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            continue  # construct_mapping reports an unhashable key
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml(text: str, file: str) -> object:
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as err:
        problem = f"{err.problem}{_at(err.problem_mark)}" if err.problem else ""
        context = f"{err.context}{_at(err.context_mark)}" if err.context else ""
        detail = f"{problem} ({context})" if problem and context else problem or context
        raise ConfigError(file, f"invalid YAML: {detail}") from None
    except yaml.YAMLError as err:
        raise ConfigError(file, f"invalid YAML: {err}") from None


def _at(mark: yaml.Mark | None) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""

"""The Go service's own keys: each one mapped onto the engine's, or accepted and reported as ignored.

Model. ``translate(data)`` runs before the sections are read. It takes the plain data of a file
and returns the same data in the engine's own shape plus one ``KeyUse`` per Go-only key it took:

- *mapped*: the key means something here under another name or shape, and its value is moved
  there (``grpc.orderExecutionAddr`` -> ``grpc.orderExecutionAddress``; ``strategies.enabled`` +
  ``strategies.configs`` -> one strategy entry per name; ``logging.maxSize`` MB -> ``maxBytes``);
- *ignored*: the key has no meaning in this engine; its value is still type-checked the way the Go
  service read it, and the reason is reported once at start (``Config.notes``).

A key neither service knows is left in place, so the section reader refuses it with a
did-you-mean. Pure: nothing here reads files or the environment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from host.config._values import ConfigError, _join, _kind, _show, _suggest, parse_duration

__all__ = ["KeyUse", "go_only_keys", "translate"]

How = Literal["used", "mapped", "ignored"]


@dataclass(frozen=True)
class KeyUse:
    """How one key of the file was taken: used as it is, mapped onto another key, or ignored."""

    key: str  # camelCase key path, e.g. "grpc.orderExecutionAddr"
    how: How
    detail: str = ""  # mapped: what it became; ignored: why

    def __str__(self) -> str:
        return f"{self.key} {self.how}" + (f": {self.detail}" if self.detail else "")


# --- ignored keys ------------------------------------------------------------------------------------

_ONE_CONNECTION = "market data arrives on one Redis pub/sub connection; the engine keeps no connection pool"
_OWN_PYTHON = "runners run on the engine's own Python (its interpreter and environment); install plugin "

# key -> (the type the Go service read it as, why it means nothing here)
_IGNORED: Mapping[str, tuple[str, str]] = {
    "server.mode": ("str", "the Go HTTP framework's debug/release switch; the engine's log level is logging.level"),
    "server.idleTimeout": ("duration", "idle keep-alive connections are closed after server.readTimeout"),
    "server.maxHeaderBytes": ("int", "the HTTP server's own header limits apply: 8190 bytes a line"),
    "redis.poolSize": ("int", _ONE_CONNECTION),
    "redis.minIdleConns": ("int", _ONE_CONNECTION),
    "engine.maxConcurrent": (
        "int",
        "every strategy runs at once in a runner process of its own; there is no worker pool to size",
    ),
    "engine.reloadInterval": (
        "duration",
        "hot reload is event-driven: plugin and config files are reloaded when they change, not polled",
    ),
    "strategies.pythonPath": ("str", _OWN_PYTHON + "dependencies there"),
    "strategies.pythonVenv": ("str", _OWN_PYTHON + "dependencies there"),
}


_MAPPED = ("grpc.orderExecutionAddr", "server.apiKey", "server.enableAuth", "risk.enabled", "logging.maxSize",
           "logging.maxBackups")  # fmt: skip


def go_only_keys(section: str) -> tuple[str, ...]:
    """The Go service's keys of ``section`` that the engine calls otherwise, for did-you-mean hints."""
    return tuple(path.split(".")[1] for path in (*_IGNORED, *_MAPPED) if path.startswith(f"{section}."))


def _check(kind: str, value: object, path: str) -> None:
    """The value must be what the Go service would have parsed; its meaning is dropped."""
    if kind == "duration":
        parse_duration(value, path)
        return
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }[kind]
    if not ok:
        expected = {"str": "a string", "int": "an integer", "bool": "true or false"}[kind]
        raise ConfigError(path, f"expected {expected}, got {_show(value)}")


# --- the translation ---------------------------------------------------------------------------------


def translate(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[KeyUse]]:
    """``data`` in the engine's shape, and how each Go-only key was taken. ``data`` is not changed."""
    out: dict[str, Any] = {name: dict(v) if isinstance(v, Mapping) else v for name, v in data.items()}
    notes: list[KeyUse] = []
    for path, (kind, reason) in _IGNORED.items():
        section, key = path.split(".")
        values = out.get(section)
        if isinstance(values, dict) and key in values and not _strategy_entry(section, values):
            _check(kind, values.pop(key), path)
            notes.append(KeyUse(path, "ignored", reason))
    for step in (_order_execution_addr, _api_key, _risk_enabled, _log_rotation, _strategies):
        step(out, notes)
    return out, notes


def _section(out: dict[str, Any], name: str) -> dict[str, Any]:
    values = out.get(name)
    return values if isinstance(values, dict) else {}  # a bad section is reported by the reader


def _move(values: dict[str, Any], go_key: str, key: str, section: str) -> object:
    """Pop ``go_key``; refuse it when the engine's own ``key`` is set too."""
    if key in values:
        reason = f"the Go service's name for {section}.{key}, which is set too; keep one"
        raise ConfigError(_join(section, go_key), reason)
    return values.pop(go_key)


def _order_execution_addr(out: dict[str, Any], notes: list[KeyUse]) -> None:
    grpc = _section(out, "grpc")
    if "orderExecutionAddr" in grpc:
        grpc["orderExecutionAddress"] = _move(grpc, "orderExecutionAddr", "orderExecutionAddress", "grpc")
        notes.append(KeyUse("grpc.orderExecutionAddr", "mapped", "-> grpc.orderExecutionAddress"))


def _api_key(out: dict[str, Any], notes: list[KeyUse]) -> None:
    """``enableAuth: true`` + ``apiKey`` -> ``authToken``; without enableAuth the Go service ignored the key."""
    server = _section(out, "server")
    enable = server.pop("enableAuth", None)
    if enable is not None:
        _check("bool", enable, "server.enableAuth")
        notes.append(KeyUse("server.enableAuth", "mapped", "on: server.apiKey -> server.authToken" if enable else
                            "off: no token required unless server.authToken is set"))  # fmt: skip
    if "apiKey" not in server:
        if enable:
            raise ConfigError("server.enableAuth", "is true but server.apiKey is not set")
        return
    if not isinstance(server["apiKey"], str):
        raise ConfigError("server.apiKey", f"expected a string, got {_kind(server['apiKey'])} (value hidden; quote it)")
    if not enable:
        server.pop("apiKey")
        notes.append(KeyUse("server.apiKey", "ignored", "server.enableAuth is not true, as in the Go service"))
        return
    if not server["apiKey"].strip():
        raise ConfigError("server.apiKey", "must not be empty while server.enableAuth is true")
    server["authToken"] = _move(server, "apiKey", "authToken", "server")
    notes.append(KeyUse("server.apiKey", "mapped", "-> server.authToken, sent as 'Authorization: Bearer <key>'"))


def _risk_enabled(out: dict[str, Any], notes: list[KeyUse]) -> None:
    # The engine's rule is that every order passes risk: there is no path around the checks, so
    # `false` cannot be honoured. Loading it with a warning would leave an operator believing
    # orders go out unchecked while they are rejected; refusing names the choice at start (and a
    # live edit to false is refused while the engine keeps running on its limits).
    risk = _section(out, "risk")
    if "enabled" not in risk:
        return
    enabled = risk.pop("enabled")
    _check("bool", enabled, "risk.enabled")
    if not enabled:
        raise ConfigError(
            "risk.enabled",
            "risk checks cannot be turned off: every order passes risk in this engine; widen the risk limits, "
            "or set engine.mode: observation to send no orders",
        )
    notes.append(KeyUse("risk.enabled", "mapped", "risk checks on, as always (false is refused)"))


_MB = 1024 * 1024
_LUMBERJACK_MAX_SIZE_MB = 100  # lumberjack, whose keys these are: maxSize 0 means 100 MB
_KEEP_ALL_BACKUPS = 1000  # lumberjack's maxBackups 0 keeps every backup; numbered files need a bound


def _log_rotation(out: dict[str, Any], notes: list[KeyUse]) -> None:
    logging = _section(out, "logging")
    if "maxSize" in logging:
        megabytes = _count(_move(logging, "maxSize", "maxBytes", "logging"), "logging.maxSize")
        size = megabytes or _LUMBERJACK_MAX_SIZE_MB
        logging["maxBytes"] = size * _MB
        default = " (0: lumberjack's default)" if not megabytes else ""
        notes.append(KeyUse("logging.maxSize", "mapped", f"-> logging.maxBytes = {size} MiB{default}"))
    if "maxBackups" in logging:
        count = _count(_move(logging, "maxBackups", "backupCount", "logging"), "logging.maxBackups")
        logging["backupCount"] = count or _KEEP_ALL_BACKUPS
        kept = f"{count}" if count else f"{_KEEP_ALL_BACKUPS} (0: keep them all; logging.maxAge prunes by age)"
        notes.append(KeyUse("logging.maxBackups", "mapped", f"-> logging.backupCount = {kept}"))


def _count(value: Any, path: str) -> int:
    _check("int", value, path)
    if value < 0:
        raise ConfigError(path, f"must be >= 0, got {value}")
    return int(value)


# --- strategies: enabled + configs -> one entry per strategy -----------------------------------------

_GO_STRATEGY_KEYS = frozenset({"enabled", "configs", "pythonPath", "pythonVenv"})


def _strategy_entry(section: str, values: Mapping[str, Any]) -> bool:
    """True for the engine's own shape of ``strategies`` (whose keys are strategy ids)."""
    return section == "strategies" and not _go_shape(values)


def _go_shape(values: Mapping[str, Any]) -> bool:
    """``strategies`` written the Go service's way: only its keys, and ``enabled`` (if any) a list."""
    if isinstance(values.get("enabled"), list):  # a list of names: the Go shape, so other keys are its typos
        for key in values:
            if key not in _GO_STRATEGY_KEYS:
                hint = _suggest(str(key), sorted(_GO_STRATEGY_KEYS))
                raise ConfigError(f"strategies.{key}", f"unknown key{hint or ' (known: ' + _known() + ')'}")
        return True
    if not values or not set(values) <= _GO_STRATEGY_KEYS:
        return False
    return not isinstance(values.get("enabled"), Mapping) and not isinstance(values.get("configs"), list)


def _known() -> str:
    return ", ".join(sorted(_GO_STRATEGY_KEYS))


def _strategies(out: dict[str, Any], notes: list[KeyUse]) -> None:
    values = out.get("strategies")
    if not isinstance(values, dict) or not _go_shape(values):
        return
    names = _enabled_names(values.get("enabled"))
    configs = values.get("configs") or {}
    if not isinstance(configs, Mapping):
        reason = f"expected a mapping of strategy name to parameters, got {_kind(configs)}"
        raise ConfigError("strategies.configs", reason)
    shown = ", ".join(names) if names else "none"
    notes.append(KeyUse("strategies.enabled", "mapped", f"-> strategies {shown}, each running the plugin of its name"))
    entries: dict[str, Any] = {}
    for name in [*names, *(n for n in configs if n not in names)]:
        taken: list[KeyUse] = []
        parameters = _parameters(name, configs.get(name), taken)
        entries[str(name)] = {"enabled": name in names, "plugin": name, "parameters": parameters}
        if name in configs:
            run = "" if name in names else " (not in strategies.enabled: configured, not run)"
            notes.append(KeyUse(f"strategies.configs.{name}", "mapped", f"-> strategies.{name}.parameters{run}"))
            notes += taken
    out["strategies"] = entries


def _enabled_names(raw: object) -> list[str]:
    names = [] if raw is None else raw
    if not isinstance(names, list):
        raise ConfigError("strategies.enabled", f"expected a list of strategy names, got {_kind(raw)} {_show(raw)}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.isidentifier():
            reason = "a strategy name must be a plugin package name (a Python identifier)"
            raise ConfigError(f"strategies.enabled[{i}]", f"{reason}, got {_show(name)}")
        if name in names[:i]:
            raise ConfigError(f"strategies.enabled[{i}]", f"{name!r} is listed twice")
    return names


def _parameters(name: object, raw: object, notes: list[KeyUse]) -> dict[str, Any]:
    path = f"strategies.configs.{name}"
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(path, "a strategy name must be a plugin package name (a Python identifier)")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(path, f"expected a mapping of parameters, got {_kind(raw)} {_show(raw)}")
    parameters = dict(raw)
    rewrite = _GO_PARAMETERS.get(name)
    return rewrite(parameters, path, notes) if rewrite is not None else parameters


# The Go market maker quoted bid = mid * (1 - spread * (1 + skew)) and ask = mid * (1 + spread * (1 -
# skew)), skew = inventory_skew * inventory / max_inventory: its spread is the offset of *each* side
# and its skew scales that offset. The built-in's spread is the full quote width and its
# inventory_skew the shift of both quotes as a fraction of the mid, so the same quotes are
# spread' = 2 * spread and inventory_skew' = spread * inventory_skew.
_GO_MM_SPREAD, _GO_MM_SKEW = 0.001, 0.5  # the Go service's defaults, for the one of the two left out


def _market_making(parameters: dict[str, Any], path: str, notes: list[KeyUse]) -> dict[str, Any]:
    if "spread" not in parameters and "inventory_skew" not in parameters:
        return parameters
    spread = _fraction(parameters.get("spread", _GO_MM_SPREAD), f"{path}.spread")
    skew = _fraction(parameters.get("inventory_skew", _GO_MM_SKEW), f"{path}.inventory_skew")
    parameters["spread"], parameters["inventory_skew"] = 2 * spread, spread * skew
    width = f"-> spread {2 * spread:g}: the Go offset per side, as the full width"
    shift = f"-> inventory_skew {spread * skew:g}: the Go skew of that offset, as a fraction of the mid"
    notes += [KeyUse(f"{path}.spread", "mapped", width), KeyUse(f"{path}.inventory_skew", "mapped", shift)]
    return parameters


def _fraction(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(path, f"expected a finite number, got {_show(value)}")
    return float(value)


_GO_PARAMETERS: Mapping[str, Callable[[dict[str, Any], str, list[KeyUse]], dict[str, Any]]] = {
    "market_making": _market_making,
}

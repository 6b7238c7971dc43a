"""The vocabulary of config values: ``ConfigError``, Go durations, field declarations and their rules.

A section field is declared with ``_opt(default, check, ...)``: the check (and ``choices``,
``normalize``, ``duration``) ride in the field's metadata and ``host.config._reading`` applies them
while it reads a file. The text helpers name values in error messages the same way everywhere.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from host.errors import EngineError

T = TypeVar("T")
Check = Callable[[Any], str | None]  # a rule: None when the value keeps it, else "must be ..."


class ConfigError(EngineError):
    """A config file or value is not acceptable; ``path`` is the key path (or the file, or the env var)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


# --- durations ----------------------------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_HELP = "expected a duration such as 500us, 10ms, 1.5s, 5m, 1h30m or a number of seconds"


def parse_duration(value: object, path: str) -> float:
    """Seconds from a Go duration string or a plain number of seconds; ConfigError naming ``path``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration_text(value.strip())
    else:
        seconds = math.nan
    if not math.isfinite(seconds):
        unit = f" (add a unit: '{value.strip()}s')" if isinstance(value, str) and _is_number(value) else ""
        raise ConfigError(path, f"{_DURATION_HELP}, got {_show(value)}{unit}")
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _duration_text(text: str) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            return math.nan
        total += float(match[1]) * _UNITS[match[2]]
        pos = match.end()
    return sign * total if body else math.nan


# --- field declarations and rules ---------------------------------------------------------------


def _opt(
    default: T,
    check: Check | None = None,
    *,
    duration: bool = False,
    choices: tuple[str, ...] = (),
    normalize: Callable[[str], str] | None = None,
    secret: bool = False,
) -> T:
    meta = {"check": check, "duration": duration, "choices": choices, "normalize": normalize}
    return field(default=default, repr=not secret, metadata=meta)


def _above(bound: float) -> Check:
    return lambda value: None if value > bound else f"must be > {bound:g}"


def _at_least(bound: float) -> Check:
    return lambda value: None if value >= bound else f"must be >= {bound:g}"


def _fraction(value: float) -> str | None:
    return None if 0 < value < 1 else "must be a fraction in (0, 1) such as 0.05"


def _fraction_or_one(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be a fraction in (0, 1] such as 0.2"


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be a port number in 1..65535"


def _listen_port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number in 0..65535 (0: any free port)"


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _names(value: tuple[str, ...]) -> str | None:
    ok = all(item.strip() for item in value) and len(set(value)) == len(value)
    return None if ok else "entries must be non-empty and distinct"


def _nats_urls(value: str) -> str | None:
    parts = [urlsplit(part.strip()) for part in value.split(",")]
    ok = all(part.scheme in ("nats", "tls", "ws", "wss") and part.netloc for part in parts)
    return None if ok else "must be a nats://host:port URL (or a comma-separated list of them)"


def _url_path(value: str) -> str | None:
    return None if value.startswith("/") else "must start with '/'"


def _identifier(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) is not None
    return None if ok else "must be a Prometheus name: letters, digits and '_', not starting with a digit"


def _log_level(value: str) -> str:
    return {"warn": "warning"}.get(value.lower(), value.lower())


# --- naming values in messages ------------------------------------------------------------------


def _suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    folded = {_fold(option): option for option in options}
    close = [folded[_fold(word)]] if _fold(word) in folded else difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _fold(word: str) -> str:
    return word.lower().replace("_", "").replace("-", "")


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }
    return "nothing" if value is None else kinds.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(dict(value)) if isinstance(value, Mapping) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

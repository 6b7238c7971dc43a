"""``strategy-engine reproduce FILE``: a crash capture run again in-process, where a debugger can reach it.

The one host module that imports ``runner`` (``runner.loader``, on purpose: a plugin is loaded and
its strategy built exactly as a runner does, so there is one loader; tests/unit/test_layering.py
names this exception). Nothing of the engine imports this module but the command line.

Model. A capture (``host.supervisor.capture``) holds the last events a strategy's runner was sent,
the state that runner started from and the strategy's plugin, registered name and parameters.
``load_capture`` reads and checks the file; ``reproduce`` loads the plugin package as the runner
does (``runner.loader``: pluggy, ``check_pending``, the config validated) but in this process and
without the sandbox, builds the strategy with the captured parameters and runs it over the events
under ``sdk.testing.run_strategy`` with the captured state restored and ``raise_errors=True``. The
first handler that raises propagates with its full traceback; ``Reproduction.index`` says which
event was being handled. Positions come from the capture (the host sent them after each fill), so
none are derived from fills here, and timers fire as the capture recorded them, not again.

What cannot come back this way: a capture whose ring overflowed starts mid-run, so the strategy
starts from its restored state without the events before the ring (said in ``warnings``); a
runner that crashed (``os._exit``, a segfault) takes this process down the same way; a strategy
that hung hangs here too (Ctrl-C shows where). Step through with ``python -m pdb -m host.cli
reproduce FILE`` (set a breakpoint in the plugin, then ``continue``) or ``--pdb`` for a
post-mortem at the exception.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host.errors import EngineError
from host.supervisor.capture import CAPTURE_FORMAT
from runner.errors import RunnerError
from runner.loader import StrategySpec, build_strategies, load_plugin
from sdk._codec import decode_event
from sdk.errors import ValidationError
from sdk.events import Event
from sdk.testing import RunResult, run_strategy

__all__ = ["Capture", "CaptureFileError", "PluginNotBuilt", "Reproduction", "load_capture", "reproduce"]


class CaptureFileError(EngineError):
    """A capture file that cannot be read: names the file and what is wrong with it."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class PluginNotBuilt(EngineError):
    """The capture's plugin does not load, or its strategy cannot be built from the captured parameters."""


@dataclass(frozen=True)
class Capture:
    """A capture file, read and checked."""

    path: Path
    kind: str
    strategy_id: str
    plugin: str
    name: str
    params: Mapping[str, Any]
    plugins_dir: Path | None
    error: Mapping[str, Any]
    restore: bytes
    events: list[Event]
    overflowed: bool
    sdk_version: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class Reproduction:
    """How far a reproduction got: the event index being handled when it raised (-1: on_start)."""

    capture: Capture
    index: int = -1
    result: RunResult | None = None

    @property
    def event(self) -> Event | None:
        return self.capture.events[self.index] if 0 <= self.index < len(self.capture.events) else None


def load_capture(path: Path) -> Capture:
    """The capture at ``path``; CaptureFileError naming the file and the field that is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CaptureFileError(path, f"cannot be read: {err.strerror or err}") from None
    except ValueError as err:
        raise CaptureFileError(path, f"not JSON: {err}") from None
    if not isinstance(document, dict) or document.get("format") != CAPTURE_FORMAT:
        got = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise CaptureFileError(path, f"format: expected {CAPTURE_FORMAT!r}, got {got!r} (not a capture file?)")
    strategy = _mapping(path, document, "strategy")
    events, warnings = _events(path, document.get("events"))
    ring = _optional_mapping(document, "ring")
    overflowed = bool(ring.get("overflowed"))
    if overflowed:
        warnings.append(
            f"the ring overflowed: the events start after {int(ring.get('sent', 0)) - len(events)} earlier ones, "
            "so the strategy may not reach the state it failed in"
        )
    plugins_dir = strategy.get("plugins_dir")
    return Capture(
        path=path, kind=str(document.get("kind") or ""), strategy_id=_text(path, strategy, "strategy.id"),
        plugin=_text(path, strategy, "strategy.plugin"), name=_text(path, strategy, "strategy.name"),
        params=_mapping(path, strategy, "params", "strategy.params"),
        plugins_dir=Path(plugins_dir) if isinstance(plugins_dir, str) and plugins_dir else None,
        error=_optional_mapping(document, "error"),
        restore=_restore(path, document.get("restore")), events=events, overflowed=overflowed,
        sdk_version=str(document.get("sdk_version") or ""), warnings=warnings,
    )  # fmt: skip


def _mapping(path: Path, data: Mapping[str, Any], key: str, name: str | None = None) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise CaptureFileError(path, f"{name or key}: expected an object, got {type(value).__name__}")
    return value


def _optional_mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text(path: Path, data: Mapping[str, Any], name: str) -> str:
    value = data.get(name.rpartition(".")[2])
    if not isinstance(value, str) or not value:
        raise CaptureFileError(path, f"{name}: expected a non-empty string, got {value!r}")
    return value


def _restore(path: Path, value: object) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise CaptureFileError(path, f"restore: expected base64 text or null, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as err:
        raise CaptureFileError(path, f"restore: not base64: {err}") from None


def _events(path: Path, value: object) -> tuple[list[Event], list[str]]:
    if not isinstance(value, list):
        raise CaptureFileError(path, f"events: expected a list, got {type(value).__name__}")
    events, warnings = [], []
    for number, item in enumerate(value):
        if isinstance(item, dict) and item.get("type") == "unreadable":
            warnings.append(f"events[{number}] was not readable when captured ({item.get('error')}); skipped")
            continue
        try:
            events.append(decode_event(item))
        except ValidationError as err:
            raise CaptureFileError(path, f"events[{number}]: {err}") from None
    return events, warnings


def reproduce(capture: Capture, plugins_dir: Path | None = None, into: Reproduction | None = None) -> Reproduction:
    """Run the capture's strategy over its events in this process; the strategy's exception propagates.

    ``plugins_dir`` overrides the folder the capture names. Raises ``CaptureFileError`` when the
    plugin folder is missing, ``PluginNotBuilt`` when the plugin does not load or the strategy
    cannot be built, and whatever the strategy raises; ``into`` (returned on success)
    says by then which event was being handled.
    """
    reproduction = into or Reproduction(capture)
    folder = plugins_dir or capture.plugins_dir
    if folder is None:
        raise CaptureFileError(capture.path, "names no plugins folder: pass --plugins DIR")
    package = folder / capture.plugin
    if not package.is_dir():
        raise CaptureFileError(capture.path, f"plugin {capture.plugin!r}: no folder {package} (pass --plugins DIR)")
    try:
        plugin = load_plugin(package)
        [(_, strategy)] = build_strategies(plugin, [StrategySpec(capture.strategy_id, capture.name, capture.params)])
    except RunnerError as err:
        raise PluginNotBuilt(str(err)) from err
    reproduction.result = run_strategy(
        strategy, _counted(reproduction), strategy_id=capture.strategy_id, restore=capture.restore,
        raise_errors=True, positions_from_fills=False, drive_timers=False,
    )  # fmt: skip
    return reproduction


def _counted(reproduction: Reproduction) -> Iterator[Event]:
    for index, event in enumerate(reproduction.capture.events):
        reproduction.index = index
        yield event
    reproduction.index = len(reproduction.capture.events)

"""Operator controls as the HTTP surface sees them: the ``Controls`` seam and the kill-switch request.

Model. ``Controls`` is what the server calls for ``POST /strategies/{id}/pause|resume|restart``
and ``POST /kill-switch``; the engine's implementation lives in ``host.http.engine``. A control
either does what it was asked and returns what the operator should see next (the strategy's
state, or the risk status after a kill-switch change), or raises: ``UnknownStrategy`` (answered
404), ``ControlRefused`` (409: it exists but the action does not apply to it now) or
``BadRequest`` (400). Nothing here does I/O; parsing is pure and names the field it rejects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from host.errors import EngineError

__all__ = ["BadRequest", "ControlRefused", "Controls", "KillSwitchAction", "KillSwitchRequest"]

KillSwitchAction = Literal["engage", "release"]
_ACTIONS: tuple[KillSwitchAction, ...] = ("engage", "release")
_FIELDS = ("action", "strategy")


class BadRequest(EngineError):
    """A control request whose body is not acceptable; ``field`` names what was wrong."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class ControlRefused(EngineError):
    """The strategy exists but the action does not apply to it in its current state."""


class Controls(Protocol):
    """The operator actions behind the HTTP controls."""

    def pause(self, strategy: str) -> str:
        """Stop feeding ``strategy`` and end its runner until resumed; its state afterwards."""

    def resume(self, strategy: str) -> str:
        """Let a paused or open strategy start again (clears its breaker); its state afterwards."""

    def restart(self, strategy: str) -> str:
        """Replace a running strategy's runner with a fresh one; its state afterwards."""

    def kill_switch(self, action: KillSwitchAction, strategy: str | None) -> Mapping[str, Any]:
        """Engage or release the global switch (``strategy`` None) or one strategy's; the risk status."""


@dataclass(frozen=True)
class KillSwitchRequest:
    """The body of ``POST /kill-switch``: ``{"action": "engage"|"release", "strategy": optional}``."""

    action: KillSwitchAction
    strategy: str | None = None

    @classmethod
    def parse(cls, body: bytes) -> KillSwitchRequest:
        """Read the JSON body; ``BadRequest`` names the field at fault (unknown keys are refused too,
        so a misspelt ``strategy`` can never turn a one-strategy release into a global one)."""
        try:
            data = orjson.loads(body) if body.strip() else None
        except orjson.JSONDecodeError as err:
            raise BadRequest("body", f"not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise BadRequest("body", f'expected a JSON object such as {{"action": "engage"}}, got {_kind(data)}')
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise BadRequest(unknown[0], f"unknown field; expected {', '.join(_FIELDS)}")
        action = data.get("action")
        if action not in _ACTIONS:
            got = "nothing" if action is None else repr(action)
            raise BadRequest("action", f'must be "engage" or "release", got {got}')
        strategy = data.get("strategy")
        if strategy is not None and (not isinstance(strategy, str) or not strategy.strip()):
            raise BadRequest("strategy", f"must be a strategy id or absent (all strategies), got {strategy!r}")
        return cls(action, strategy)


def _kind(value: object) -> str:
    return "an empty body" if value is None else f"a JSON {type(value).__name__}"

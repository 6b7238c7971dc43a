"""Errors the SDK raises: one base, subclasses that carry the field or key they are about."""

from __future__ import annotations

__all__ = ["ConfigError", "SdkError", "ValidationError"]


class SdkError(Exception):
    """Base of every error the SDK raises."""


class ValidationError(SdkError, ValueError):
    """A value given to an event, signal or config is not acceptable.

    The message names the type and field: ``Signal.quantity: must be > 0, got -1``.
    """

    def __init__(self, owner: str, field: str, reason: str) -> None:
        self.owner = owner
        self.field = field
        self.reason = reason
        super().__init__(f"{owner}.{field}: {reason}")


class ConfigError(SdkError, ValueError):
    """A strategy config is not acceptable; ``path`` is the full key path (``strategies.mm.spread``)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)

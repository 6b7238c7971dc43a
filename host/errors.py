"""Errors the host raises: one base, subclasses (in their own modules) carry the fields they are about."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

__all__ = ["EngineError", "ListenError", "leaves"]

E = TypeVar("E", bound=Exception)


class EngineError(Exception):
    """Base of every error the host raises on purpose; the message names the thing and the rule."""


class ListenError(EngineError):
    """A port the engine must serve cannot be bound: ``key`` is the config key that names it."""

    def __init__(self, key: str, address: str, reason: str) -> None:
        self.key = key
        self.address = address
        self.reason = reason
        super().__init__(f"{key}: cannot listen on {address}: {reason}")


def leaves(group: ExceptionGroup[E]) -> Iterator[E]:
    """The exceptions of ``group`` and of the groups inside it (what a TaskGroup's failure holds)."""
    for err in group.exceptions:
        if isinstance(err, ExceptionGroup):
            yield from leaves(err)
        else:
            yield err

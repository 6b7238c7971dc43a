"""A constructor that skips validation, for the engine's per-tick path only (not public API).

Market data reaching a runner was decoded and validated by the host; rebuilding each event
through its checks again costs about 4x an unchecked build. ``unchecked(Tick)`` gives a builder
that takes every field positionally, in the dataclass's field order, and sets them directly.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, TypeVar

__all__ = ["unchecked"]

T = TypeVar("T")


def unchecked(cls: type[T]) -> Callable[..., T]:
    """A constructor for the dataclass ``cls`` that skips validation, every field positional in field order.

    Only for values already validated on the other side of a trusted boundary (the runner
    rebuilding events the host decoded and checked).
    """
    setters = [getattr(cls, f.name).__set__ for f in fields(cls)]  # type: ignore[arg-type]
    new = object.__new__

    def build(*values: Any) -> T:
        obj = new(cls)
        for setter, value in zip(setters, values, strict=True):
            setter(obj, value)
        return obj

    return build

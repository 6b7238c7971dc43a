"""Small validators shared by events, signals and configs: each raises ValidationError naming the field."""

from __future__ import annotations

import math
from enum import Enum
from typing import TypeVar

from sdk.errors import ValidationError

E = TypeVar("E", bound=Enum)


def number(owner: str, field: str, value: object) -> float:
    """A finite real number (bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(owner, field, f"expected a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValidationError(owner, field, f"must be finite, got {value!r}")
    return float(value)


def positive(owner: str, field: str, value: object) -> float:
    result = number(owner, field, value)
    if result <= 0:
        raise ValidationError(owner, field, f"must be > 0, got {value!r}")
    return result


def non_negative(owner: str, field: str, value: object) -> float:
    result = number(owner, field, value)
    if result < 0:
        raise ValidationError(owner, field, f"must be >= 0, got {value!r}")
    return result


def optional_positive(owner: str, field: str, value: object) -> float | None:
    return None if value is None else positive(owner, field, value)


def optional_non_negative(owner: str, field: str, value: object) -> float | None:
    return None if value is None else non_negative(owner, field, value)


def text(owner: str, field: str, value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValidationError(owner, field, f"expected a non-empty string, got {value!r}")
    return value


def string(owner: str, field: str, value: object) -> str:
    """A string, possibly empty."""
    if not isinstance(value, str):
        raise ValidationError(owner, field, f"expected a string, got {value!r}")
    return value


def integer(owner: str, field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(owner, field, f"expected an integer, got {type(value).__name__} {value!r}")
    return value


def member(owner: str, field: str, enum: type[E], value: object) -> E:
    """An enum member, also accepted as its value in any letter case ("BUY" for Side.BUY)."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.lower())
        except ValueError:
            pass
    allowed = ", ".join(str(m.value) for m in enum)
    raise ValidationError(owner, field, f"expected one of {allowed}, got {value!r}")

"""A constructor that skips validation, for the engine's per-tick path only (not public API).

Market data reaching a runner was decoded and validated by the host; rebuilding each event
through its checks again costs about 4x an unchecked build. ``unchecked(Tick)`` gives a builder
that takes every field positionally, in the dataclass's field order, and sets them directly.

How: a frozen dataclass refuses plain attribute stores, and setting each slot through its
descriptor (``Tick.bid_price.__set__``) costs a C call a field. So the builder fills an instance
of a *twin*: a plain class with the same ``__slots__`` in the same order and nothing else, whose
stores compile to the interpreter's fast slot store, then makes the object a ``Tick`` by
``__class__`` assignment. Python allows that only between classes of the same layout (same
slots, same base, same size) and checks it on every assignment; the object is then exactly what
the dataclass's own ``__init__`` would have left, minus ``__post_init__``. The builder's source
is generated once per class (as ``dataclasses`` generates ``__init__``), from field names that
are identifiers by construction.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, Callable, TypeVar

__all__ = ["unchecked"]

T = TypeVar("T")


def unchecked(cls: type[T]) -> Callable[..., T]:
    """A constructor for the dataclass ``cls`` that skips validation, every field positional in field order.

    Only for values already validated on the other side of a trusted boundary (the runner
    rebuilding events the host decoded and checked). ``cls`` must be a slotted dataclass
    deriving from ``object`` alone, every field a slot (``@dataclass(slots=True)``).
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    if not is_dataclass(cls) or cls.__bases__ != (object,) or tuple(getattr(cls, "__slots__", ())) != tuple(names):
        raise TypeError(f"unchecked({cls.__name__}): needs a slotted dataclass with object as its only base")
    twin = type(f"_Unchecked{cls.__name__}", (), {"__slots__": tuple(names), "__module__": __name__})
    body = "".join(f"    obj.{name} = {name}\n" for name in names)
    source = f"def build({', '.join(names)}):\n    obj = new(twin)\n{body}    obj.__class__ = cls\n    return obj\n"
    namespace: dict[str, Any] = {"new": object.__new__, "twin": twin, "cls": cls}
    exec(source, namespace)  # generated from field names, as dataclasses builds __init__
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = f"unchecked({cls.__name__})"
    return build

"""``Signal``'s one-expression fast path (``Signal._plain``) accepts only what its full checks accept,
and leaves the same object: the same values through both, compared, over a generated pool."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest

from sdk.errors import ValidationError
from sdk.events import OrderType, Side, Signal, TimeInForce

POOL: dict[str, list[Any]] = {
    "symbol": ["BTCUSDT", "", 7, None],
    "side": [Side.BUY, Side.SELL, "buy", "SELL", "hold", None],
    "quantity": [0.5, 1, 0.0, -1.0, math.inf, math.nan, True, "1"],
    "order_type": [OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT, "limit", "iceberg"],
    "price": [None, 100.0, 100, 0.0, -5.0, math.inf, math.nan],
    "stop_price": [None, 99.0, 0.0],
    "time_in_force": [TimeInForce.GTC, TimeInForce.IOC, "fok", "day?"],
    "priority": [5, 1, 10, 0, 11, 5.0, True],
    "max_slippage": [None, 0.01, -0.1],
    "confidence": [1.0, 0.0, 0.5, 1, 1.5, -0.1, math.nan],
    "metadata": [{}, {"ts": "1"}, {"k": 2}, MappingProxyType({"a": "b"}), ["x"]],
    "slot": ["", "bid", 3],
    "client_order_id": ["", "abc-123", "x" * 36, "x" * 37, "bad id", 5],
}


# How many of each pool's first values are ones the checks accept (drawn 9 times in 10, so that
# about a third of the generated signals are valid, and the rest fail on one field or a few).
VALID = {"symbol": 1, "side": 4, "quantity": 2, "order_type": 1, "price": 1, "stop_price": 1, "time_in_force": 3,
         "priority": 3, "max_slippage": 2, "confidence": 4, "metadata": 4, "slot": 2, "client_order_id": 3}  # fmt: skip


def _cases(count: int) -> Iterator[dict[str, Any]]:
    draw = random.Random(20261205)
    for _ in range(count):
        yield {
            name: draw.choice(values[: VALID[name]] if draw.random() < 0.9 else values) for name, values in POOL.items()
        }
    # Every value of each field once beside a valid rest (the edges of each check on their own).
    base = {"symbol": "BTCUSDT", "side": Side.BUY, "quantity": 1.0}
    for name, values in POOL.items():
        for value in values:
            yield {**base, name: value}


def _outcome(kwargs: dict[str, Any]) -> tuple[str, str]:
    try:
        signal = Signal(**kwargs)
    except ValidationError as err:
        return "error", str(err)
    except TypeError as err:
        return "type", str(err)
    return "ok", f"{signal!r} {type(signal.metadata).__name__}"


def test_the_fast_path_answers_as_the_full_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = list(_cases(6000))
    fast = [_outcome(kwargs) for kwargs in cases]
    monkeypatch.setattr(Signal, "_plain", lambda self: False)
    full = [_outcome(kwargs) for kwargs in cases]
    for kwargs, one, other in zip(cases, fast, full, strict=True):
        assert one == other, kwargs
    accepted = sum(1 for kind, _ in fast if kind == "ok")
    assert 100 < accepted < len(cases) - 100  # both sides of the checks are exercised


def test_the_fast_path_is_taken_for_the_common_shapes() -> None:
    for order_type, price in itertools.product([OrderType.MARKET, OrderType.LIMIT], [None, 101.5]):
        if (order_type is OrderType.LIMIT) is (price is not None):
            signal = Signal(symbol="BTCUSDT", side=Side.SELL, quantity=0.25, order_type=order_type, price=price,
                            metadata={"ts": "1"}, client_order_id="c-1")  # fmt: skip
            assert signal._plain()
            assert isinstance(signal.metadata, MappingProxyType) and dict(signal.metadata) == {"ts": "1"}

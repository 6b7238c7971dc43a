"""sdk._unchecked: the runner's builder for market events, field for field what the checked constructor makes."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from sdk import Book, Candle, Side, Signal, Tick, Trade
from sdk._unchecked import unchecked

TS = 1_704_164_645_000_000_000

# Every field given a value unlike its default, so a field left unset or set from the wrong
# argument shows.
VALUES: list[tuple[type[Any], dict[str, Any]]] = [
    (Tick, {"symbol": "BTCUSDT", "timestamp_ns": TS, "bid_price": 100.0, "bid_size": 1.5, "ask_price": 101.0,
            "ask_size": 2.5, "last_price": 100.5, "sequence": 7}),
    (Trade, {"symbol": "ETHUSDT", "timestamp_ns": TS + 1, "last_price": 2000.0, "volume": 0.25,
             "volume_quote": 500.0, "side": Side.SELL, "sequence": 8}),
    (Book, {"symbol": "SOLUSDT", "timestamp_ns": TS + 2, "bids": ((10.0, 1.0), (9.0, 2.0)),
            "asks": ((11.0, 3.0),), "last_price": 10.5, "sequence": 9}),
    (Candle, {"symbol": "XRPUSDT", "timestamp_ns": TS + 3, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5,
              "volume": 10.0, "volume_quote": 15.0, "sequence": 10}),
]  # fmt: skip
IDS = [cls.__name__ for cls, _ in VALUES]


def _build(cls: type[Any], values: dict[str, Any]) -> Any:
    return unchecked(cls)(*(values[f.name] for f in dataclasses.fields(cls)))


class TestUnchecked:
    @pytest.mark.parametrize(("cls", "values"), VALUES, ids=IDS)
    def test_every_field_is_the_checked_constructors(self, cls: type[Any], values: dict[str, Any]) -> None:
        """Each field is the value given, equal to (and of the type of) the checked constructor's; the events equal."""
        built, checked = _build(cls, values), cls(**values)
        for f in dataclasses.fields(cls):
            mine, theirs = getattr(built, f.name), getattr(checked, f.name)
            assert mine is values[f.name], f.name
            assert (type(mine), mine) == (type(theirs), theirs), f.name
        assert built == checked
        assert hash(built) == hash(checked)

    @pytest.mark.parametrize(("cls", "values"), VALUES, ids=IDS)
    def test_is_an_instance_of_the_class_itself(self, cls: type[Any], values: dict[str, Any]) -> None:
        """The built object's type is the event class (handlers are chosen by type(event)), not a stand-in."""
        built = _build(cls, values)
        assert type(built) is cls
        assert built.kind == cls.kind
        assert repr(built) == repr(cls(**values))

    @pytest.mark.parametrize(("cls", "values"), VALUES, ids=IDS)
    def test_is_frozen(self, cls: type[Any], values: dict[str, Any]) -> None:
        """Storing into a built event raises as it does for a checked one."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            _build(cls, values).symbol = "OTHER"

    @pytest.mark.parametrize(("cls", "values"), VALUES, ids=IDS)
    def test_copies_and_pickles_as_the_checked_one(self, cls: type[Any], values: dict[str, Any]) -> None:
        """copy, replace and pickle give events equal to the checked constructor's."""
        built, checked = _build(cls, values), cls(**values)
        assert copy.copy(built) == checked
        assert dataclasses.replace(built) == checked
        assert pickle.loads(pickle.dumps(built)) == checked

    def test_too_many_values_is_an_error(self) -> None:
        """One value a field, no more."""
        values = [v for f in dataclasses.fields(Tick) for v in [VALUES[0][1][f.name]]]
        with pytest.raises(TypeError):
            unchecked(Tick)(*values, 0)

    def test_refuses_a_class_without_slots(self) -> None:
        """A dataclass whose fields are not slots cannot be built this way: refused when the builder is made."""

        @dataclasses.dataclass(frozen=True)
        class Plain:
            a: int

        with pytest.raises(TypeError, match="slotted dataclass"):
            unchecked(Plain)

    def test_refuses_a_subclass(self) -> None:
        """A slotted dataclass deriving from another class is refused (its layout is not the builder's)."""

        @dataclasses.dataclass(frozen=True, slots=True)
        class Base:
            a: int

        @dataclasses.dataclass(frozen=True, slots=True)
        class Derived(Base):
            b: int

        with pytest.raises(TypeError, match="slotted dataclass"):
            unchecked(Derived)

    def test_other_slotted_dataclasses_build_too(self) -> None:
        """Not only market data: any slotted dataclass on object, here a Signal, fields as given."""
        checked = Signal(symbol="BTCUSDT", side=Side.BUY, quantity=1.0)
        built = unchecked(Signal)(*(getattr(checked, f.name) for f in dataclasses.fields(Signal)))
        assert built == checked
        assert type(built) is Signal

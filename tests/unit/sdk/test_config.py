"""StrategyConfig.from_mapping: typed, frozen configs that name the full key path of every problem."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sdk import ConfigError, StrategyConfig

PATH = "strategies.mm"


@dataclasses.dataclass(frozen=True)
class MMConfig(StrategyConfig):
    spread: float = 0.001
    levels: int = 3
    post_only: bool = False
    venue: str = "paper"
    max_position: float | None = None
    sizes: tuple[float, ...] = (1.0,)
    band: tuple[float, int] = (0.5, 2)

    def validate(self) -> None:
        if self.levels > 10:
            self.fail("levels", "must be <= 10")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RequiredConfig(StrategyConfig):
    threshold: float


@dataclasses.dataclass(frozen=True)
class UnsupportedConfig(StrategyConfig):
    weights: dict[str, float] = dataclasses.field(default_factory=dict)


def load(data: Any, cls: type[StrategyConfig] = MMConfig) -> Any:
    return cls.from_mapping(data, path=PATH)


def expect_error(data: Any, cls: type[StrategyConfig] = MMConfig) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(data, cls)
    return caught.value


class TestFromMapping:
    @pytest.mark.parametrize("data", [{}, None])
    def test_empty_or_none_gives_defaults(self, data: Any) -> None:
        """No parameters at all builds the config from its defaults."""
        assert load(data) == MMConfig()

    def test_values_are_applied(self) -> None:
        """Given parameters override the defaults and the result is the subclass."""
        config = load({"spread": 0.002, "levels": 5, "post_only": True, "venue": "binance"})
        assert isinstance(config, MMConfig)
        assert (config.spread, config.levels, config.post_only, config.venue) == (0.002, 5, True, "binance")

    def test_result_is_frozen(self) -> None:
        """A loaded config cannot be changed."""
        config = load({})
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.spread = 1.0

    def test_int_is_accepted_for_float(self) -> None:
        """An integer given for a float parameter becomes a float."""
        config = load({"spread": 1})
        assert config.spread == 1.0
        assert type(config.spread) is float

    def test_list_becomes_tuple(self) -> None:
        """A list for a tuple parameter becomes a tuple, each item coerced."""
        config = load({"sizes": [1, 2.5], "symbols": ["BTCUSDT", "ETHUSDT"]})
        assert config.sizes == (1.0, 2.5)
        assert all(type(size) is float for size in config.sizes)
        assert config.symbols == ("BTCUSDT", "ETHUSDT")

    def test_fixed_tuple_is_coerced_per_position(self) -> None:
        """A fixed-length tuple coerces each item to its own position's type."""
        assert load({"band": [1, 4]}).band == (1.0, 4)

    @pytest.mark.parametrize("value", [None, 2.5])
    def test_optional_accepts_none_or_value(self, value: float | None) -> None:
        """An optional parameter takes null or a value of its type."""
        assert load({"max_position": value}).max_position == value

    def test_optional_int_given_for_float(self) -> None:
        """An optional float given an int becomes a float."""
        assert type(load({"max_position": 3}).max_position) is float

    def test_no_path_reports_the_bare_key(self) -> None:
        """Without a path the message starts with the key itself."""
        with pytest.raises(ConfigError, match=r"^spread: expected a number"):
            MMConfig.from_mapping({"spread": "x"})


class TestUnknownKeys:
    def test_unknown_key_suggests_the_close_one(self) -> None:
        """A misspelt key is rejected with its full path, the known keys and a did-you-mean."""
        err = expect_error({"spred": 0.1})
        assert err.path == "strategies.mm.spred"
        assert str(err).startswith("strategies.mm.spred: unknown key (known: band, levels, max_position, ")
        assert str(err).endswith("; did you mean 'spread'?")

    def test_unknown_key_without_close_match(self) -> None:
        """A key like nothing known gets no suggestion."""
        err = expect_error({"zzzzzz": 1})
        assert "did you mean" not in str(err)

    def test_first_unknown_key_in_order_is_reported(self) -> None:
        """With several unknown keys the alphabetically first is named."""
        assert expect_error({"zeta": 1, "alpha": 2}).path == "strategies.mm.alpha"

    def test_non_string_key_is_reported(self) -> None:
        """A non-string key (YAML allows them) is reported as unknown, not a crash."""
        err = expect_error({1: "x", "b": 2})
        assert err.path == "strategies.mm.1"


# (key, value, path under strategies.mm, message after the path)
BAD_VALUES = [
    ("spread", "0.02", "spread", "expected a number, got str '0.02'"),
    ("spread", True, "spread", "expected a number, got bool True"),
    ("spread", None, "spread", "expected a number, got NoneType None"),
    ("levels", 2.0, "levels", "expected an integer, got float 2.0"),
    ("levels", True, "levels", "expected an integer, got bool True"),
    ("levels", "3", "levels", "expected an integer, got str '3'"),
    ("post_only", 1, "post_only", "expected true or false, got int 1"),
    ("post_only", "true", "post_only", "expected true or false, got str 'true'"),
    ("venue", 5, "venue", "expected a string, got int 5"),
    ("max_position", "big", "max_position", "expected a number, got str 'big'"),
    ("sizes", "1,2", "sizes", "expected a list, got str '1,2'"),
    ("sizes", 1.0, "sizes", "expected a list, got float 1.0"),
    ("sizes", [1.0, "x"], "sizes[1]", "expected a number, got str 'x'"),
    ("symbols", ["BTCUSDT", 5], "symbols[1]", "expected a string, got int 5"),
    ("band", [1.0], "band", "expected a list of 2 items, got 1"),
    ("band", [1.0, 2, 3], "band", "expected a list of 2 items, got 3"),
    ("band", [1.0, 2.5], "band[1]", "expected an integer, got float 2.5"),
]


class TestBadValues:
    @pytest.mark.parametrize(
        ("key", "value", "path", "message"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _, _ in BAD_VALUES]
    )
    def test_bad_value_names_full_path(self, key: str, value: Any, path: str, message: str) -> None:
        """A value of the wrong type is rejected as `<path>.<key>: <rule>, got <type> <value>`."""
        err = expect_error({key: value})
        assert err.path == f"{PATH}.{path}"
        assert str(err) == f"{PATH}.{path}: {message}"

    @pytest.mark.parametrize("data", [[("spread", 1)], "spread=1", 5])
    def test_non_mapping_is_rejected_at_the_path(self, data: Any) -> None:
        """Parameters that are not a mapping are rejected naming the strategy's path."""
        err = expect_error(data)
        assert str(err).startswith("strategies.mm: expected a mapping of parameters, got ")

    def test_missing_required_parameter(self) -> None:
        """A parameter without a default must be given."""
        err = expect_error({}, RequiredConfig)
        assert str(err) == "strategies.mm.threshold: required"

    def test_required_parameter_given(self) -> None:
        """A config with a required parameter loads when it is given."""
        assert load({"threshold": 2}, RequiredConfig).threshold == 2.0

    def test_unsupported_parameter_type(self) -> None:
        """A config class using a type the loader cannot build says so, naming the key."""
        err = expect_error({"weights": {"a": 1.0}}, UnsupportedConfig)
        assert err.path == "strategies.mm.weights"
        assert "unsupported parameter type" in err.reason

    def test_config_error_is_a_value_error(self) -> None:
        """ConfigError is a ValueError."""
        assert isinstance(expect_error({"spread": "x"}), ValueError)


class TestValidate:
    def test_validate_failure_carries_full_path(self) -> None:
        """A rule broken in validate() is reported under the strategy's path."""
        err = expect_error({"levels": 11})
        assert (err.path, err.reason) == ("strategies.mm.levels", "must be <= 10")
        assert str(err) == "strategies.mm.levels: must be <= 10"

    def test_validate_passes(self) -> None:
        """A config satisfying validate() loads."""
        assert load({"levels": 10}).levels == 10

    def test_fail_without_path(self) -> None:
        """fail() on its own raises ConfigError naming just the field."""
        with pytest.raises(ConfigError) as caught:
            MMConfig(levels=11).validate()
        assert str(caught.value) == "levels: must be <= 10"

    def test_base_validate_accepts_anything(self) -> None:
        """The base config has no cross-field rules."""
        StrategyConfig().validate()


class TestToMapping:
    def test_round_trip(self) -> None:
        """from_mapping(to_mapping(c)) gives back an equal config."""
        config = load({"spread": 0.5, "sizes": [1, 2], "symbols": ["BTCUSDT"], "max_position": 4, "band": [2, 3]})
        assert MMConfig.from_mapping(config.to_mapping()) == config

    def test_tuples_become_lists(self) -> None:
        """to_mapping gives plain data: tuples as lists."""
        mapping = MMConfig(sizes=(1.0, 2.0)).to_mapping()
        assert mapping["sizes"] == [1.0, 2.0]
        assert mapping["symbols"] == []

    def test_every_field_is_present(self) -> None:
        """to_mapping lists every field, defaults included."""
        assert set(MMConfig().to_mapping()) == {f.name for f in dataclasses.fields(MMConfig)}

"""Strategy's config is declared once, as its type parameter; Config follows from it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Generic, TypeVar

import pytest

from sdk import ConfigError, Strategy, StrategyConfig


@dataclasses.dataclass(frozen=True)
class SizeConfig(StrategyConfig):
    size: float = 1.0

    def validate(self) -> None:
        if self.size <= 0:
            self.fail("size", f"must be > 0, got {self.size}")


@dataclasses.dataclass(frozen=True)
class OtherConfig(StrategyConfig):
    other: int = 0


class Sized(Strategy[SizeConfig]):
    name = "sized"


C = TypeVar("C", bound=StrategyConfig)


class Base(Strategy[C], Generic[C]):
    """A generic intermediate class, as a package of several strategies might share."""


class Concrete(Base[OtherConfig]):
    name = "concrete"


class TestConfigDeclaration:
    def test_type_parameter_sets_config(self) -> None:
        """Strategy[SizeConfig] alone makes SizeConfig the class's Config."""
        assert Sized.Config is SizeConfig

    def test_runner_builds_the_declared_config(self) -> None:
        """What the runner does (Config.from_mapping) gives the declared type, validated."""
        config = Sized.Config.from_mapping({"size": 2.5}, path="strategies.sized")
        assert isinstance(config, SizeConfig) and Sized(config).config.size == 2.5
        with pytest.raises(ConfigError, match=r"strategies\.sized\.size: must be > 0, got -1"):
            Sized.Config.from_mapping({"size": -1.0}, path="strategies.sized")

    def test_subclass_of_a_strategy_inherits_its_config(self) -> None:
        """A subclass without a type parameter of its own keeps its parent's Config."""

        class Tuned(Sized):
            name = "tuned"

        assert Tuned.Config is SizeConfig

    def test_generic_intermediate_class(self) -> None:
        """Base[C] (a TypeVar) declares nothing; Concrete(Base[OtherConfig]) declares OtherConfig."""
        assert Base.Config is StrategyConfig
        assert Concrete.Config is OtherConfig

    def test_no_type_parameter_means_the_base_config(self) -> None:
        """A bare Strategy subclass has the base StrategyConfig (symbols only)."""

        class Bare(Strategy):  # type: ignore[type-arg]
            name = "bare"

        assert Bare.Config is StrategyConfig

    def test_an_agreeing_config_attribute_is_accepted(self) -> None:
        """Code written for SDK 0.1 (Config = X next to Strategy[X]) still loads."""

        class Old(Strategy[SizeConfig]):
            name = "old"
            Config = SizeConfig

        assert Old.Config is SizeConfig

    def test_a_contradicting_config_attribute_is_refused(self) -> None:
        """Config = Y next to Strategy[X] raises at class definition, naming both and the fix."""
        with pytest.raises(TypeError, match=r"Config = OtherConfig contradicts Strategy\[SizeConfig\]"):

            class Confused(Strategy[SizeConfig]):
                Config = OtherConfig

    def test_a_type_parameter_that_is_not_a_config_is_refused(self) -> None:
        """Strategy[int] raises at class definition: the parameter must derive from StrategyConfig."""
        with pytest.raises(TypeError, match="must be a StrategyConfig subclass, got <class 'int'>"):

            class Wrong(Strategy[int]):  # type: ignore[type-var]
                pass


class TestBuiltinConfigs:
    @pytest.mark.parametrize("package", ["momentum", "market_making", "scalping"])
    def test_builtins_declare_the_config_once(self, package: str) -> None:
        """The built-ins (what authors copy) set neither Config nor a __post_init__ of their own."""
        root = Path(__file__).resolve().parents[3] / "plugins" / package
        assert "__post_init__" not in (root / "config.py").read_text()
        assert "    Config = " not in (root / "strategy.py").read_text()


class TestTyping:
    def test_self_config_is_typed_by_the_parameter(self, tmp_path: Path) -> None:
        """mypy --strict types self.config by the type parameter: a missing field is an error."""
        source = tmp_path / "typed.py"
        source.write_text(
            textwrap.dedent(
                """
                from __future__ import annotations
                from dataclasses import dataclass
                from sdk import Strategy, StrategyConfig, Tick

                @dataclass(frozen=True)
                class MyConfig(StrategyConfig):
                    size: float = 1.0

                class Mine(Strategy[MyConfig]):
                    name = "mine"

                    def on_tick(self, tick: Tick) -> None:
                        ok: float = self.config.size
                        self.config.sise
                """
            )
        )
        root = Path(__file__).resolve().parents[3]
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(source)],
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
        )
        assert result.returncode == 1, result.stdout
        assert '"MyConfig" has no attribute "sise"' in result.stdout
        assert result.stdout.count("error:") == 1, result.stdout

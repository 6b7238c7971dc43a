"""The SDK's public API is what sdk/__init__.py exports: documented, complete, versioned once."""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import sdk

SDK_DIR = Path(sdk.__file__).resolve().parent
README = SDK_DIR / "README.md"


def readme_section(title: str) -> str:
    """The text of sdk/README.md's ``## title`` section."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def documented_names() -> list[str]:
    """The names listed under "Public API" in sdk/README.md (its bullet list, in backticks)."""
    bullets = [line for line in readme_section("Public API").splitlines() if line.startswith(("- ", "  "))]
    return sorted({name for line in bullets for name in re.findall(r"`([A-Za-z_]+)`", line)})


def variable_docstring(name: str) -> str:
    """The string literal right after ``name = ...`` at the top of an sdk module (what pdoc shows)."""
    for path in sorted(SDK_DIR.glob("*.py")):
        body = ast.parse(path.read_text()).body
        for statement, following in itertools.pairwise(body):
            targets = statement.targets if isinstance(statement, ast.Assign) else []
            named = any(isinstance(t, ast.Name) and t.id == name for t in targets)
            if named and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                return str(following.value.value)
    return ""


def undocumented(name: str) -> list[str]:
    """``name`` and its public methods and properties that have no docstring of their own."""
    obj = getattr(sdk, name)
    if inspect.isfunction(obj):
        return [] if obj.__doc__ else [name]
    if not inspect.isclass(obj):  # an alias (Event = Tick | ...) or a marker instance
        return [] if variable_docstring(name) else [name]
    missing = []
    own = obj.__dict__.get("__doc__") or ""
    if not own.strip() or own.startswith(f"{obj.__name__}("):  # a dataclass's generated signature
        missing.append(name)
    for attr, member in vars(obj).items():
        documented = bool((getattr(member, "__doc__", None) or "").strip())
        if not attr.startswith("_") and (isinstance(member, property) or inspect.isfunction(member)) and not documented:
            missing.append(f"{name}.{attr}")
    return missing


class TestPublicNames:
    def test_all_is_exactly_the_documented_list(self) -> None:
        """sdk.__all__ is the list under "Public API" in sdk/README.md, no more and no less."""
        assert sorted(sdk.__all__) == documented_names()

    def test_the_package_docstring_names_every_public_name(self) -> None:
        """sdk's own docstring (what help(sdk) and the reference docs show) names each exported name."""
        assert sdk.__doc__ is not None
        assert [name for name in sdk.__all__ if f"``{name}``" not in sdk.__doc__] == []

    @pytest.mark.parametrize("name", sdk.__all__)
    def test_every_public_name_has_a_docstring(self, name: str) -> None:
        """A class, its public methods and properties, and each alias or marker carry a docstring."""
        assert undocumented(name) == []

    def test_every_name_is_importable_from_sdk(self) -> None:
        """from sdk import * gives exactly __all__."""
        namespace: dict[str, Any] = {}
        exec("from sdk import *", namespace)
        assert sorted(k for k in namespace if k != "__builtins__") == sorted(sdk.__all__)


class TestInternals:
    @pytest.mark.parametrize("module", ["sdk.codec", "sdk.positions"])
    def test_internal_modules_left_the_public_names(self, module: str) -> None:
        """The Go service's JSON codec and the position book are private modules now."""
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(module)

    @pytest.mark.parametrize("module", ["sdk._codec", "sdk._positions", "sdk._unchecked"])
    def test_internals_live_in_underscored_modules(self, module: str) -> None:
        """The engine imports its internals from underscored modules."""
        assert importlib.import_module(module).__all__

    def test_unchecked_is_not_in_the_events_module(self) -> None:
        """The unvalidated constructor is no longer reachable from the module of the public events."""
        assert not hasattr(importlib.import_module("sdk.events"), "unchecked")

    def test_hookspec_is_not_exported(self) -> None:
        """Plugins only implement hooks: the spec marker is the engine's, not part of the API."""
        assert "hookspec" not in sdk.__all__ and not hasattr(sdk, "hookspec")


class TestVersion:
    def test_version_is_semantic_and_1_0_0(self) -> None:
        """sdk.__version__ is MAJOR.MINOR.PATCH; this round's stable API is 1.0.0."""
        assert re.fullmatch(r"\d+\.\d+\.\d+", sdk.__version__)
        assert sdk.__version__ == "1.0.0"

    def test_the_wheel_reads_the_version_from_sdk(self) -> None:
        """sdk/pyproject.toml writes no version of its own: setuptools reads sdk.__version__."""
        project = tomllib.loads((SDK_DIR / "pyproject.toml").read_text())
        assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
        assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sdk.__version__"}

    def test_the_readme_is_the_long_description(self) -> None:
        """The wheel's long description is sdk/README.md, which states the version's promise."""
        project = tomllib.loads((SDK_DIR / "pyproject.toml").read_text())
        assert project["project"]["readme"] == "README.md"
        assert "nothing public is removed or renamed" in readme_section("Versioning")

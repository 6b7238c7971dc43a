"""Loading one plugin package through pluggy and building its configured strategies.

A plugin package is a folder with an ``__init__.py``; it is imported under its folder name with
the folder's parent on ``sys.path``, registered with a ``PluginManager`` for project
``strategy_engine`` and checked (``check_pending``). Its ``strategy_engine_strategies`` hook
must return Strategy subclasses with unique names. Every failure is a ``PluginLoadError`` naming
the plugin, the hook (or ``import``) and the reason; a bad strategy config is a
``StrategyBuildError`` naming the strategy and the key path.

Plugin code that raises ``SystemExit`` or ``KeyboardInterrupt`` (``sys.exit()`` in a hook, an
import or a constructor) fails the load the same way: it is plugin code refusing to load, a boot
error the host reports once, never a crash to restart in a loop.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from runner.errors import PluginLoadError, StrategyBuildError
from sdk.config import StrategyConfig
from sdk.errors import ConfigError
from sdk.hooks import PROJECT, StrategyEngineSpec
from sdk.strategy import Strategy

__all__ = ["LoadedPlugin", "StrategySpec", "build_strategies", "load_plugin"]

HOOK = "strategy_engine_strategies"
# What plugin code may raise to leave the process; while loading it is a failure to load.
_EXITS = (SystemExit, KeyboardInterrupt)


def _raised(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return f"raised {type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class StrategySpec:
    """One strategy instance to build: its id (given by the host), registered name and parameters."""

    id: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedPlugin:
    name: str
    path: Path
    classes: Mapping[str, type[Strategy[Any]]]


def load_plugin(path: Path) -> LoadedPlugin:
    """Import the package at ``path``, call its hook and return the strategy classes by name."""
    name = path.name
    module = _import(name, path)
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(StrategyEngineSpec)
    try:
        manager.register(module, name=name)
        manager.check_pending()
    except pluggy.PluginValidationError as err:
        raise PluginLoadError(name, HOOK, f"invalid hook implementation: {err}") from None
    if not manager.hook.strategy_engine_strategies.get_hookimpls():
        raise PluginLoadError(name, HOOK, "implements no strategy_engine_strategies hook (is it marked @hookimpl?)")
    try:
        results = manager.hook.strategy_engine_strategies()
    except (Exception, *_EXITS) as exc:
        raise PluginLoadError(name, HOOK, _raised(exc), traceback.format_exc()) from None
    return LoadedPlugin(name, path, _classes(name, results))


def _import(name: str, path: Path) -> ModuleType:
    init = path / "__init__.py"
    if not init.is_file():
        raise PluginLoadError(name, "import", f"{path} is not a plugin package: no __init__.py")
    parent = str(path.parent.resolve())
    if parent not in sys.path:
        sys.path.insert(0, parent)
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(path)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except _EXITS as exc:
        del sys.modules[name]
        raise PluginLoadError(name, "import", _raised(exc), traceback.format_exc()) from None
    except Exception as exc:
        del sys.modules[name]
        raise PluginLoadError(name, "import", f"{type(exc).__name__}: {exc}", traceback.format_exc()) from None
    return module


def _classes(plugin: str, results: Sequence[Any]) -> dict[str, type[Strategy[Any]]]:
    classes: dict[str, type[Strategy[Any]]] = {}
    for result in results:
        if not isinstance(result, (list, tuple)):
            raise PluginLoadError(plugin, HOOK, f"returned {result!r}, expected a list of Strategy subclasses")
        for item in result:
            cls = _strategy_class(plugin, item)
            if cls.name in classes:
                raise PluginLoadError(plugin, HOOK, f"two strategies are named {cls.name!r}")
            classes[cls.name] = cls
    if not classes:
        raise PluginLoadError(plugin, HOOK, "returned no strategies")
    return classes


def _strategy_class(plugin: str, item: Any) -> type[Strategy[Any]]:
    if isinstance(item, Strategy):
        raise PluginLoadError(plugin, HOOK, f"returned {type(item).__name__} instance, expected the class")
    if not isinstance(item, type) or not issubclass(item, Strategy):
        raise PluginLoadError(plugin, HOOK, f"returned {item!r}, expected a Strategy subclass")
    if not isinstance(item.name, str) or not item.name:
        raise PluginLoadError(plugin, HOOK, f"{item.__name__} has no name (set name = '...' on the class)")
    if not isinstance(item.Config, type) or not issubclass(item.Config, StrategyConfig):
        raise PluginLoadError(plugin, HOOK, f"{item.__name__}.Config must derive from StrategyConfig")
    return item


def build_strategies(plugin: LoadedPlugin, specs: Sequence[StrategySpec]) -> list[tuple[str, Strategy[Any]]]:
    """Instances for each spec, configs validated; the first failure raises StrategyBuildError."""
    built = []
    for spec in specs:
        cls = plugin.classes.get(spec.name)
        if cls is None:
            known = ", ".join(sorted(plugin.classes))
            raise StrategyBuildError(spec.id, f"plugin {plugin.name!r} has no strategy {spec.name!r} (it has: {known})")
        try:
            config = cls.Config.from_mapping(spec.params, path=f"strategies.{spec.id}")
        except ConfigError as err:
            raise StrategyBuildError(spec.id, str(err)) from None
        try:
            built.append((spec.id, cls(config)))
        except (Exception, *_EXITS) as exc:
            raise StrategyBuildError(
                spec.id, f"{cls.__name__}(config) {_raised(exc)}", traceback.format_exc()
            ) from None
    return built

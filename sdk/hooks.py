"""pluggy hook specifications and the marker plugin packages use to register strategies.

A plugin package is a folder under ``plugins/`` whose ``__init__.py`` implements the hooks::

    from sdk import hookimpl
    from .strategy import Momentum

    @hookimpl
    def strategy_engine_strategies():
        return [Momentum]

The runner registers the package with a ``pluggy.PluginManager`` for project ``strategy_engine``,
calls ``check_pending()`` and then the hooks, always with keyword arguments.
"""

from __future__ import annotations

from typing import Any, Sequence

import pluggy

__all__ = ["PROJECT", "StrategyEngineSpec", "hookimpl", "hookspec"]

PROJECT = "strategy_engine"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class StrategyEngineSpec:
    """The hooks a plugin package may implement."""

    @hookspec
    def strategy_engine_strategies(self) -> Sequence[type[Any]]:
        """Return the Strategy subclasses this plugin package provides.

        Called once, when the runner loads the package, before any strategy is built. Not
        ``firstresult``: every plugin's list is collected. Each class needs a unique, non-empty
        ``name`` (what configs refer to); its config is its type parameter
        (``Strategy[MyConfig]``). Return classes, not instances: the runner builds each instance
        from its validated config.
        """
        raise AssertionError("hook specification; implemented by plugins")

"""Errors a runner reports to the host before it exits with a named code."""

from __future__ import annotations

from protocol import ExitCode

__all__ = ["PluginLoadError", "RunnerError", "StrategyBuildError"]


class RunnerError(Exception):
    """Base of runner errors; ``exit_code`` is what the runner exits with."""

    exit_code = ExitCode.BOOT_ERROR


class PluginLoadError(RunnerError):
    """A plugin package could not be imported or its hook returned something unusable."""

    exit_code = ExitCode.PLUGIN_LOAD_ERROR

    def __init__(self, plugin: str, hook: str, reason: str, traceback: str = "") -> None:
        self.plugin = plugin
        self.hook = hook
        self.reason = reason
        self.traceback = traceback
        super().__init__(f"plugin {plugin!r} (hook {hook}): {reason}")


class StrategyBuildError(RunnerError):
    """A strategy instance could not be built from its config."""

    exit_code = ExitCode.CONFIG_ERROR

    def __init__(self, strategy: str, reason: str, traceback: str = "") -> None:
        self.strategy = strategy
        self.reason = reason
        self.traceback = traceback
        super().__init__(f"strategy {strategy!r}: {reason}")

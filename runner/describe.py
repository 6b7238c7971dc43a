"""``python -m runner.describe --plugin PATH``: load a plugin package in a sandboxed process and say
what it registers, or why it cannot load. What ``strategy-engine check-plugin`` runs.

The plugin's code runs only here, behind the same sandbox layers as a serving runner (no
network, limits, death with the parent); the answer is one JSON object on stdout:
``{"plugin", "ok": true, "strategies": [{"name", "class", "doc", "config": [{"name", "type",
"default"}]}], "sandbox": [...]}`` or ``{"plugin", "ok": false, "hook", "reason"}`` with exit
code PLUGIN_LOAD_ERROR.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from pathlib import Path
from typing import Any

from protocol import ExitCode
from runner import sandbox
from runner.errors import PluginLoadError
from runner.loader import load_plugin
from sdk.strategy import Strategy

__all__ = ["describe", "main"]


def _config_fields(cls: type[Strategy[Any]]) -> list[dict[str, Any]]:
    hints = typing.get_type_hints(cls.Config)
    fields = []
    for f in dataclasses.fields(cls.Config):
        default: Any = f.default
        if default is dataclasses.MISSING:
            factory = f.default_factory
            default = factory() if callable(factory) else None
        fields.append({"name": f.name, "type": _type_name(hints.get(f.name)), "default": _plain(default)})
    return fields


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe(plugin: Path) -> dict[str, Any]:
    """What the package registers (raises PluginLoadError when it cannot load)."""
    loaded = load_plugin(plugin)
    strategies = [
        {
            "name": name,
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "config": _config_fields(cls),
        }
        for name, cls in sorted(loaded.classes.items())
    ]
    return {"plugin": loaded.name, "ok": True, "strategies": strategies}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.describe", description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", type=Path, required=True)
    parser.add_argument("--host-pid", type=int, default=os.getppid())
    parser.add_argument("--memory-mb", type=int, default=1024)
    args = parser.parse_args(argv)
    try:
        policy = sandbox.SandboxPolicy(host_pid=args.host_pid, memory_mb=args.memory_mb, plugin=args.plugin)
        report = sandbox.apply(policy)
    except sandbox.HostGone:
        return ExitCode.HOST_GONE
    sandbox.seal(report)  # no link to keep: no sockets at all
    try:
        answer = describe(args.plugin)
    except PluginLoadError as err:
        answer = {"plugin": err.plugin, "ok": False, "hook": err.hook, "reason": err.reason}
        code = ExitCode.PLUGIN_LOAD_ERROR
    else:
        code = ExitCode.OK
    answer["sandbox"] = report.applied
    json.dump(answer, sys.stdout)
    sys.stdout.write("\n")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())

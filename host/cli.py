"""``strategy-engine``: the command line.

strategy-engine run                        replay the generated demo feed through the built-in strategies
strategy-engine run --replay FILE [FILE]   replay recorded market data (JSON lines, seed format)
strategy-engine check-plugin PATH          load a plugin package in a sandboxed runner; say what it registers
strategy-engine new-plugin NAME            scaffold a plugin package with a strategy, a config and tests
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import structlog

from host import app
from host.config import Config, ConfigError, load
from host.demo import demo_feed
from host.logs import configure_logging
from host.scaffold import ScaffoldError, new_plugin
from host.supervisor.process import runner_environment
from host.supervisor.sandbox import make_host_undumpable
from runner.exitcodes import describe_exit
from sdk.codec import load_events
from sdk.errors import ValidationError
from sdk.events import Event

__all__ = ["main"]

EXIT_USAGE = 2


def _version() -> str:
    try:
        return version("strategy-engine")
    except PackageNotFoundError:
        return "0.1.0 (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strategy-engine", description="Sandboxed plugin host for Python trading strategies."
    )
    parser.add_argument("--version", action="version", version=f"strategy-engine {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the engine (no config: replay the generated demo feed)")
    run.add_argument("--config", type=Path, help="config.yaml (seed format); default: the embedded defaults")
    run.add_argument("--replay", type=Path, nargs="+", metavar="FILE", help="JSON-lines market data to replay")
    run.add_argument("--minutes", type=float, default=20.0, help="length of the generated demo feed (default 20)")
    run.add_argument("--seed", type=int, default=7, help="seed of the generated demo feed (default 7)")
    check = commands.add_parser("check-plugin", help="load a plugin package in a sandboxed runner")
    check.add_argument("path", type=Path)
    scaffold = commands.add_parser("new-plugin", help="scaffold a plugin package with a test")
    scaffold.add_argument("name")
    scaffold.add_argument("--dir", type=Path, default=Path("plugins"), help="plugins folder (default ./plugins)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    make_host_undumpable()  # before any runner exists: none may read the host's memory or environment
    handlers = {"run": _run, "check-plugin": _check_plugin, "new-plugin": _new_plugin}
    return handlers[args.command](args)


def _merged(paths: Iterable[Path]) -> Iterator[Event]:
    """Several recorded files as one feed, in timestamp order."""
    return heapq.merge(*(load_events(path) for path in paths), key=lambda event: event.timestamp_ns)


def _run(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as err:
        print(f"strategy-engine: config error: {err}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.logging)
    log = structlog.get_logger("host.cli")
    for warning in config.warnings:
        log.warning("config_warning", detail=warning)
    root = args.config.resolve().parent if args.config else _default_root()
    if args.replay:
        events: Iterable[Event] = _merged(args.replay)
        total = None
        source = ", ".join(str(p) for p in args.replay)
    elif args.config is None:
        feed = list(demo_feed(minutes=args.minutes, seed=args.seed))
        events, total, source = feed, len(feed), f"generated demo feed ({args.minutes:g} min, seed {args.seed})"
    else:
        print(
            "strategy-engine: live feeds (Redis market data, NATS fills) are not available in this version; "
            "pass --replay FILE to replay recorded market data",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return _replay(config, events, total, source, root)


def _default_root() -> Path:
    """Where plugins/ is when no config says: the working directory, else the source checkout."""
    here = Path.cwd()
    if (here / "plugins").is_dir():
        return here
    return Path(__file__).resolve().parent.parent


def _replay(config: Config, events: Iterable[Event], total: int | None, source: str, root: Path) -> int:
    strategies = ", ".join(spec.id for spec in config.enabled_strategies())
    print(f"strategy-engine: replaying {source} through {strategies} ({config.engine.mode} mode)", flush=True)
    try:
        report = asyncio.run(app.run(config, events, progress=sys.stderr, total=total, root=root))
    except ValidationError as err:
        print(f"\nstrategy-engine: bad market data: {err}", file=sys.stderr)
        return 1
    app.summary(report)
    return 0


def _check_plugin(args: argparse.Namespace) -> int:
    path = args.path.resolve()
    if not path.is_dir():
        print(f"strategy-engine: {path} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    proc = subprocess.run(
        [sys.executable, "-B", "-s", "-m", "runner.describe", "--plugin", str(path), "--host-pid", str(os.getpid())],
        env=runner_environment(), cwd=str(path.parent), capture_output=True, text=True, timeout=60,
        start_new_session=True,
    )  # fmt: skip
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"strategy-engine: the sandboxed runner {describe_exit(proc.returncode)}", file=sys.stderr)
        print(proc.stderr[-2000:], file=sys.stderr)
        return 1
    _print_description(answer)
    return 0 if answer.get("ok") else 1


def _print_description(answer: dict[str, object]) -> None:
    plugin = answer.get("plugin")
    if not answer.get("ok"):
        print(f"plugin {plugin!r} does not load (hook {answer.get('hook')}): {answer.get('reason')}")
        return
    strategies = answer.get("strategies")
    assert isinstance(strategies, list)
    print(f"plugin {plugin!r} registers {len(strategies)} strategy(ies):")
    for strategy in strategies:
        print(f"\n  {strategy['name']}  ({strategy['class']})")
        if strategy["doc"]:
            print(f"    {strategy['doc']}")
        for field in strategy["config"]:
            print(f"    {field['name']}: {field['type']} = {field['default']!r}")
    print(f"\nsandbox layers applied: {', '.join(answer.get('sandbox') or [])}")  # type: ignore[arg-type]


def _new_plugin(args: argparse.Namespace) -> int:
    try:
        target = new_plugin(args.name, args.dir)
    except ScaffoldError as err:
        print(f"strategy-engine: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"created {target}/ — test it with: python -m pytest {target}")
    print(f"check it loads in a sandboxed runner: strategy-engine check-plugin {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``strategy-engine``: the command line.

strategy-engine run                        replay the generated demo feed through the built-in strategies
strategy-engine run --replay FILE [FILE]   replay recorded market data (JSON lines, seed format)
strategy-engine run --config CONFIG --replay FILE
                                           your strategies; a relative engine.pluginsDir is resolved
                                           against the folder of CONFIG, not the working directory
strategy-engine run --config CONFIG        live: Redis market data, NATS fills, orders per engine.mode;
                                           until SIGINT/SIGTERM; plugins and CONFIG are watched
  --ledger PATH                            the ledger file (default engine.ledgerPath; a replay: a temp file)
  --http                                   a replay also serves the HTTP port (a live run always does)
strategy-engine paper-venue [--config C] [--protocol orderexecution|order-service]
                                           the paper order-execution service (gRPC + Redis + NATS);
                                           the protocol defaults to grpc.protocol
strategy-engine check-config FILE          say how each key of FILE is taken: used, mapped (to what), ignored (why)
strategy-engine check-plugin PATH          load a plugin package in a sandboxed runner; say what it registers
strategy-engine new-plugin NAME            scaffold a plugin package with a strategy, a config and tests
strategy-engine ledger compact --before DATE [--ledger PATH | --config C] [--vacuum]
                                           remove finished orders, their events and fills last changed
                                           before DATE from the ledger (working orders, positions and
                                           daily P&L are never touched)
strategy-engine ledger archive --before DATE --to FILE [...]
                                           the same, after copying those rows into the sqlite FILE
strategy-engine reproduce FILE [--plugins DIR] [--pdb]
                                           run a crash capture's events into its strategy in this process
                                           (no sandbox): its exception with the full traceback, exit 1;
                                           exit 0 when no error is reproduced. Step through it with
                                           python -m pdb -m host.cli reproduce FILE

Exit codes: 0 done; 1 a plugin that does not load, a strategy stopped by its circuit breaker or a
line of market data that cannot be read; 2 a usage or config error, reported before anything starts;
3 the engine cannot serve (a port it must listen on is taken, a JetStream stream or consumer set up
in a way it cannot use), said in one line naming the config key. A broker outage is not an exit: the
engine keeps reconnecting while /ready says what is down.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import pdb
import subprocess
import sys
import traceback
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

import sdk
from host.app import default_root, default_shutdown, resolve, settings
from host.backtest.cli import add_backtest, backtest_command
from host.backtest.optimize_cli import add_optimize, optimize_command
from host.config import LOG_FORMATS, LOG_LEVELS, VENUE_PROTOCOLS, Config, ConfigError, LoggingConfig, load
from host.demo import demo_feed
from host.errors import EngineError, leaves
from host.ledger import LedgerError
from host.ledger.retention import compact
from host.logs import configure_logging
from host.replay import run_replay, summary
from host.scaffold import ScaffoldError, new_plugin
from host.supervisor.managed import StrategyState
from host.supervisor.process import runner_environment
from host.supervisor.sandbox import make_host_undumpable
from protocol import describe_exit, wire
from sdk._codec import format_timestamp, load_events
from sdk.errors import ValidationError
from sdk.events import Event

if TYPE_CHECKING:
    from host.reproduce import Reproduction

__all__ = ["main"]


EXIT_USAGE = 2
EXIT_CANNOT_SERVE = 3


def _version() -> str:
    try:
        return version("strategy-engine")
    except PackageNotFoundError:
        return "0.1.0 (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strategy-engine", description="Sandboxed plugin host for Python trading strategies."
    )
    versions = f"strategy-engine {_version()} (SDK {sdk.__version__}, strategy protocol {wire.PROTOCOL_VERSION})"
    parser.add_argument("--version", action="version", version=versions)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the engine: live with --config alone, a replay with --replay, else the demo",
        description="Without --config: replay the generated demo feed through the built-in strategies. "
        "With --config and no --replay: run LIVE (Redis market data, NATS fills, orders as engine.mode "
        "says) until SIGINT/SIGTERM. With --replay FILE: replay recorded market data (a backtest).",
    )
    run.add_argument("--config", type=Path, help="config.yaml (seed format); default: the embedded defaults")
    run.add_argument("--replay", type=Path, nargs="+", metavar="FILE", help="JSON-lines market data to replay")
    run.add_argument("--minutes", type=float, help="length of the generated demo feed (default 20)")
    run.add_argument("--seed", type=int, help="seed of the generated demo feed (default 7)")
    run.add_argument("--ledger", type=Path, metavar="PATH", help="the ledger file (default engine.ledgerPath)")
    run.add_argument("--http", action="store_true", help="a replay also serves the HTTP port (server.host/port)")
    _log_options(run)
    venue = commands.add_parser(
        "paper-venue", help="serve orderexecution.OrderExecution or order.OrderService with paper matching"
    )
    _log_options(venue)
    venue.add_argument("--config", type=Path, help="config.yaml: grpc, redis and nats sections are used")
    venue.add_argument(
        "--protocol", choices=VENUE_PROTOCOLS,
        help="orderexecution: orderexecution.OrderExecution; order-service: b25's order.OrderService "
        "(default grpc.protocol)",
    )  # fmt: skip
    venue.add_argument("--fee-rate", type=float, help="fee as a fraction of notional (default engine.paperFeeRate)")
    venue.add_argument("--slippage-bps", type=float, help="market order slippage (default engine.paperSlippageBps)")
    check_config = commands.add_parser("check-config", help="say how each key of a config file is taken")
    check_config.add_argument("file", type=Path)
    check = commands.add_parser("check-plugin", help="load a plugin package in a sandboxed runner")
    check.add_argument("path", type=Path)
    scaffold = commands.add_parser("new-plugin", help="scaffold a plugin package with a test")
    scaffold.add_argument("name")
    scaffold.add_argument("--dir", type=Path, default=Path("plugins"), help="plugins folder (default ./plugins)")
    add_backtest(commands)
    add_optimize(commands)
    _ledger_commands(commands)
    _reproduce_command(commands)
    return parser


def _reproduce_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reproduce = commands.add_parser(
        "reproduce", help="run a crash capture into its strategy in-process, for its traceback and a debugger",
        description="Replay the events of a crash capture (written under the ledger's folder, captures/, when a "
        "strategy raises, misses a deadline or crashes) into the strategy in this process, under sdk.testing. "
        "Exit 1 with the traceback when it raises, 0 when no error is reproduced. To step through it: "
        "python -m pdb -m host.cli reproduce FILE (set a breakpoint in your plugin, then continue).",
    )  # fmt: skip
    reproduce.add_argument("file", type=Path, help="the capture file (.json)")
    reproduce.add_argument("--plugins", type=Path, metavar="DIR", help="plugins folder (default: the capture's)")
    reproduce.add_argument("--pdb", action="store_true", help="a post-mortem debugger at the exception")


def _ledger_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = commands.add_parser("ledger", help="ledger retention: compact or archive finished history")
    actions = ledger.add_subparsers(dest="action", required=True, metavar="ACTION")
    compact = actions.add_parser("compact", help="remove finished orders, their events and fills before DATE")
    archive = actions.add_parser("archive", help="copy them into another sqlite file, then remove them")
    archive.add_argument("--to", type=Path, required=True, metavar="FILE", help="the archive (created if missing)")
    for action in (compact, archive):
        action.add_argument(
            "--before",
            required=True,
            metavar="DATE",
            help="ISO date or time, UTC unless it names a zone (2026-01-01, 2026-01-01T12:00:00Z)",
        )
        action.add_argument("--ledger", type=Path, metavar="PATH", help="the ledger file")
        action.add_argument("--config", type=Path, help="take the ledger file from engine.ledgerPath of this config")
        action.add_argument(
            "--vacuum",
            action="store_true",
            help="then shrink the file (VACUUM: needs the file to itself, so stop the engine first)",
        )


def _log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="overrides logging.level for this run")
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="overrides logging.format for this run")


def _logging(config: Config, args: argparse.Namespace) -> LoggingConfig:
    """The config's logging with the command line's overrides. Only logging is configured with them:
    the config the engine runs keeps the file's values, so the config watcher compares like with like."""
    overrides = {"level": args.log_level, "format": args.log_format}
    return replace(config.logging, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {
        "run": _run, "paper-venue": _paper_venue, "check-config": _check_config, "check-plugin": _check_plugin,
        "new-plugin": _new_plugin, "ledger": _ledger, "reproduce": _reproduce, "backtest": backtest_command,
        "optimize": optimize_command,
    }  # fmt: skip
    return handlers[args.command](args)


def _merged(paths: Iterable[Path]) -> Iterator[Event]:
    """Several recorded files as one feed, in timestamp order."""
    return heapq.merge(*(load_events(path) for path in paths), key=lambda event: event.timestamp_ns)


def _load_config(path: Path | None) -> Config | None:
    """The config at ``path`` (None: the embedded default); None after printing why it is not usable."""
    try:
        return load(path)
    except ConfigError as err:
        print(f"strategy-engine: config error: {err}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    if config is None:
        return EXIT_USAGE
    root = args.config.resolve().parent if args.config else default_root(config)
    live = args.config is not None and not args.replay
    problem = _usage_problem(args, live) or _missing_input(args.replay or [], config, root, live=live,
                                                           from_config=args.config is not None)  # fmt: skip
    if problem:
        print(f"strategy-engine: {problem}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(_logging(config, args))
    make_host_undumpable()  # before any runner exists: none may read the host's memory or environment
    log = structlog.get_logger("host.cli")
    for warning in config.warnings:
        log.warning("config_warning", detail=warning)
    for use in config.notes:
        event = "config_key_ignored" if use.how == "ignored" else "config_key_mapped"
        log.info(event, key=use.key, detail=use.detail)
    plugins_dir = settings(config, root=root)[0].plugins_dir
    for spec in config.enabled_strategies():
        if not (plugins_dir / spec.plugin).is_dir():
            log.warning("plugin_missing", strategy=spec.id, folder=str(plugins_dir / spec.plugin),
                        detail="the strategy starts when its package appears")  # fmt: skip
    # --ledger is not written into the config: the config watcher compares the file with what runs.
    ledger = args.ledger.resolve() if args.ledger else None
    if live:
        from host.live import run_live  # here: its NATS client (and aiohttp) cost every other command ~0.14 s

        print(f"strategy-engine: {_live_banner(config, args.config)}; SIGINT/SIGTERM stops it", flush=True)
        return _serve(run_live(config, root=root, config_path=args.config.resolve(), ledger_path=ledger))
    if args.replay:
        events: Iterable[Event] = _merged(args.replay)
        total = None
        source = ", ".join(str(p) for p in args.replay)
    else:
        minutes = 20.0 if args.minutes is None else args.minutes
        seed = 7 if args.seed is None else args.seed
        feed = list(demo_feed(minutes=minutes, seed=seed))
        events, total, source = feed, len(feed), f"generated demo feed ({minutes:g} min, seed {seed})"
    return _replay(config, events, total, source, root, args, ledger)


def _usage_problem(args: argparse.Namespace, live: bool) -> str | None:
    """Options that contradict each other (said before anything starts), or None."""
    demo_options = [name for name in ("minutes", "seed") if getattr(args, name) is not None]
    if demo_options and (live or args.replay):
        flags = " and ".join(f"--{name}" for name in demo_options)
        why = "a run with --config and no --replay is live" if live else "--replay replays the files given"
        return f"{flags} shape(s) the generated demo feed, but {why}; drop {flags}"
    return None


def _live_banner(config: Config, path: Path) -> str:
    """What a live run does, in words an operator checks before walking away."""
    from host.live import VENUES

    mode = config.engine.mode
    orders = {
        "grpc": f"orders to the order-execution service at {config.grpc.order_execution_address} "
        f"({config.grpc.protocol})",
        "paper": "orders filled by the in-process paper venue, no real orders",
        None: "orders recorded by risk, never sent",
    }[VENUES[mode]]
    watching = ("hot reload on" if config.engine.hot_reload else "hot reload off") + (
        ", config watched" if config.engine.watch_config else ""
    )
    return (
        f"serving market data from redis {config.redis.host}:{config.redis.port} in {mode} mode ({orders}); "
        f"config {path}; {watching}; HTTP on {config.server.host}:{config.server.port}"
    )


def _paper_venue(args: argparse.Namespace) -> int:
    from host.paper_service import SERVICES, PaperVenueService  # here, as run_live: NATS is for these two

    config = _load_config(args.config)
    if config is None:
        return EXIT_USAGE
    configure_logging(_logging(config, args))
    fee = config.engine.paper_fee_rate if args.fee_rate is None else args.fee_rate
    slippage = config.engine.paper_slippage_bps if args.slippage_bps is None else args.slippage_bps
    service = PaperVenueService(config, fee_rate=fee, slippage_bps=slippage, protocol=args.protocol)
    where = f"redis {config.redis.host}:{config.redis.port}"
    updates = "; order updates to orders.updates.<SYMBOL>" if service.protocol == "order-service" else ""
    print(f"strategy-engine paper-venue: serving {SERVICES[service.protocol]} on "
          f"{config.grpc.order_execution_address}; market data from {where}; fills to {config.nats.url}{updates}",
          flush=True)  # fmt: skip

    async def serve() -> None:
        await service.run(default_shutdown())

    return _serve(serve())


def _serve(main: Coroutine[object, object, None]) -> int:
    """Run a serving command to its end: 0, or 3 with one line per reason it could not serve."""
    failed = False
    try:
        asyncio.run(main)
    except* EngineError as group:
        failed = True
        for err in leaves(group):
            print(f"strategy-engine: cannot serve: {err}", file=sys.stderr)
    return EXIT_CANNOT_SERVE if failed else 0


def _missing_input(replay: list[Path], config: Config, root: Path, *, live: bool, from_config: bool) -> str | None:
    """Why the run cannot start (a replay file or a plugin folder is missing), or None.

    A live run with hot reload on starts without a configured plugin's folder: that strategy waits
    (held open) until its package is dropped into the plugins folder, and the log says so. A replay
    is over too soon for that to be a plan, so there a missing folder is an error.
    """
    for path in replay:
        if not path.is_file():
            return f"--replay {path}: no such file"
    plugins_dir = settings(config, root=root)[0].plugins_dir
    for spec in config.enabled_strategies():
        folder = plugins_dir / spec.plugin
        if folder.is_dir():
            continue
        if live and config.engine.hot_reload and plugins_dir.is_dir():
            continue  # logged as plugin_missing once logging is configured
        setting = config.engine.plugins_dir
        resolved = "" if Path(setting).is_absolute() else f", resolved against {root}"
        whose = " (the config file's folder)" if resolved and from_config else ""
        return f"strategies.{spec.id}: no plugin folder {folder} (engine.pluginsDir {setting!r}{resolved}{whose})"
    return None


def _replay(
    config: Config, events: Iterable[Event], total: int | None, source: str, root: Path, args: argparse.Namespace,
    ledger: Path | None,
) -> int:  # fmt: skip
    strategies = ", ".join(spec.id for spec in config.enabled_strategies())
    print(f"strategy-engine: replaying {source} through {strategies} ({config.engine.mode} mode)", flush=True)
    if ledger is None and config.engine.ledger_path:
        ledger = resolve(config.engine.ledger_path, root)
    config_path = args.config.resolve() if args.config else None
    try:
        replay = run_replay(
            config, events, progress=sys.stderr if sys.stderr.isatty() else None, total=total, root=root,
            config_path=config_path,
            ledger_path=ledger, http=args.http,
        )  # fmt: skip
        report = asyncio.run(replay)
    except* ValidationError as group:
        # raised by the feed inside the engine's TaskGroup; owner is "FILE:LINE" for a bad line
        for err in leaves(group):
            where = err.owner if err.field == "line" else f"{err.owner}.{err.field}"
            print(f"\nstrategy-engine: bad market data: {where}: {err.reason}", file=sys.stderr)
        report = None
    if report is None:
        return 1
    summary(report)
    stopped = [r.status.id for r in report.strategies if r.status.state is StrategyState.OPEN]
    if stopped:
        print(f"strategy-engine: stopped by its circuit breaker: {', '.join(stopped)}", file=sys.stderr)
        return 1
    return 0


def _check_config(args: argparse.Namespace) -> int:
    """Print how each key of the file is taken and what is wrong; 0 when it loads, 2 when it does not."""
    try:
        config = load(args.file)
    except ConfigError as err:
        print(f"{args.file}: does not load\n\n  error: {err}")
        return EXIT_USAGE
    counts = {how: sum(use.how == how for use in config.key_report) for how in ("used", "mapped", "ignored")}
    print(f"{args.file}: loads ({', '.join(f'{n} {how}' for how, n in counts.items())})\n")
    width = min(48, max((len(use.key) for use in config.key_report), default=0))
    for use in config.key_report:
        detail = f"{' ' if use.detail.startswith('->') else ': '}{use.detail}" if use.detail else ""
        print(f"  {use.key:<{width}}  {use.how}{detail}")
    warnings = [*config.warnings, *_missing_plugins(config, args.file.resolve().parent)]
    if warnings:
        print("\nwarnings:")
        for warning in warnings:
            print(f"  {warning}")
    return 0


def _missing_plugins(config: Config, root: Path) -> Iterator[str]:
    plugins_dir = settings(config, root=root)[0].plugins_dir
    for spec in config.enabled_strategies():
        if not (plugins_dir / spec.plugin).is_dir():
            yield f"strategies.{spec.id}: no plugin folder {plugins_dir / spec.plugin}; it starts when one appears"


def _check_plugin(args: argparse.Namespace) -> int:
    configure_logging(LoggingConfig(level="warning", format="console"))
    path = args.path.resolve()
    if not path.is_dir():
        print(f"strategy-engine: {path} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    make_host_undumpable()  # before the runner exists: it may not read the host's memory or environment
    proc = subprocess.run(
        # -P: not the plugins folder first on sys.path (host.supervisor.process._argv says why)
        [sys.executable, "-B", "-s", "-P", "-m", "runner.describe", "--plugin", str(path),
         "--host-pid", str(os.getpid())],
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


def _ledger(args: argparse.Namespace) -> int:
    """``ledger compact`` / ``ledger archive``: 0 done, 2 a usage error, 1 the ledger could not be compacted."""
    try:
        before = datetime.fromisoformat(args.before)
    except ValueError:
        print(f"strategy-engine: --before {args.before!r}: expected an ISO date or time such as 2026-01-01 or "
              "2026-01-01T12:00:00Z", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    path = _ledger_path(args)
    if path is None:
        return EXIT_USAGE
    before_ns = int((before if before.tzinfo else before.replace(tzinfo=UTC)).timestamp() * 1e9)
    try:
        report = compact(path, before_ns, archive=getattr(args, "to", None), vacuum=args.vacuum)
    except LedgerError as err:
        print(f"strategy-engine: {err}", file=sys.stderr)
        return 1
    print(report.line())
    return 0


def _ledger_path(args: argparse.Namespace) -> Path | None:
    """--ledger, else the config's engine.ledgerPath (as a live run resolves it); None after saying why not."""
    if args.ledger is not None:
        return Path(args.ledger)
    if args.config is None:
        print("strategy-engine: name the ledger: --ledger PATH, or --config CONFIG for its engine.ledgerPath",
              file=sys.stderr)  # fmt: skip
        return None
    config = _load_config(args.config)
    if config is None:
        return None
    return resolve(config.engine.ledger_path or "var/ledger.sqlite", args.config.resolve().parent)


def _new_plugin(args: argparse.Namespace) -> int:
    try:
        target = new_plugin(args.name, args.dir)
    except ScaffoldError as err:
        print(f"strategy-engine: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"created {target}/")
    print(f"  test it:        python -m pytest {target}")
    print(f"  load it:        strategy-engine check-plugin {target}")
    print("  replay into it: strategy-engine run --config CONFIG --replay FILE.jsonl, with in CONFIG")
    print(f"                    engine: {{pluginsDir: {target.parent}}}  # relative to CONFIG's folder")
    print(f"                    strategies: {{{args.name}: {{symbols: [BTCUSDT]}}}}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    """0 when the run is clean, 1 with the traceback when the strategy raises, 2 when it cannot be run."""
    # Imported here: host.reproduce loads plugins with the runner's loader, which no engine process needs.
    from host.reproduce import CaptureFileError, PluginNotBuilt, Reproduction, load_capture, reproduce

    try:
        capture = load_capture(args.file)
    except CaptureFileError as err:
        print(f"strategy-engine: reproduce: {err}", file=sys.stderr)
        return EXIT_USAGE
    captured = capture.error.get("text") or "(no error text)"
    print(f"reproducing the {capture.kind} capture of strategy {capture.strategy_id!r} (plugin {capture.plugin!r}, "
          f"{len(capture.events)} events{', state restored' if capture.restore else ''})\n"
          f"captured: {captured}", flush=True)  # fmt: skip
    for warning in capture.warnings:
        print(f"warning: {warning}", flush=True)
    reproduction = Reproduction(capture)
    try:
        reproduce(capture, args.plugins.resolve() if args.plugins else None, into=reproduction)
    except (CaptureFileError, PluginNotBuilt) as err:
        print(f"strategy-engine: reproduce: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        return _reproduced(exc, reproduction, args.pdb)
    print(f"no error reproduced: {len(capture.events)} events ran clean", flush=True)
    return 0


def _reproduced(exc: Exception, reproduction: Reproduction, post_mortem: bool) -> int:
    """The strategy's exception as Python prints it, then where in the capture it came and whether it is the same."""
    traceback.print_exception(exc)
    capture, event = reproduction.capture, reproduction.event
    where = "in on_start" if reproduction.index < 0 else "in on_save/on_stop"
    if event is not None:
        at = format_timestamp(event.timestamp_ns)  # as the capture's events write their time
        where = f"on event {reproduction.index + 1} of {len(capture.events)} ({event.kind} at {at})"
    text = f"{type(exc).__name__}: {exc}"
    same = "the captured error" if text == capture.error.get("text") else "not the captured error"
    print(f"strategy-engine: reproduced {where}: {text} ({same})", file=sys.stderr, flush=True)
    if post_mortem:
        pdb.post_mortem(exc.__traceback__)
    return 1


if __name__ == "__main__":
    sys.exit(main())

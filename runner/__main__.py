"""``python -m runner``: one runner process. The host starts it; it can be run by hand to debug.

    echo "$TOKEN" | python -m runner --socket /run/se/link.sock --plugin plugins/momentum \\
        --strategies '[{"id": "momentum-btc", "name": "momentum", "params": {"symbols": ["BTCUSDT"]}}]'

argv -> token (first line of stdin) -> sandbox -> logging -> serve (connect, seal the sandbox, load
the plugin, Ready). Exit codes are named in
``protocol.exitcodes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import structlog

from protocol import ExitCode
from runner import sandbox
from runner.app import RunnerOptions, serve
from runner.loader import StrategySpec


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m runner", description="Strategy Engine runner process")
    parser.add_argument("--socket", type=Path, required=True, help="the host's RunnerLink Unix socket")
    parser.add_argument("--plugin", type=Path, required=True, help="plugin package folder")
    parser.add_argument(
        "--strategies", required=True, help='JSON list of {"id", "name", "params"}, or @FILE holding it'
    )
    parser.add_argument("--host-pid", type=int, default=os.getppid(), help="die when this process dies")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address-space limit (0: none)")
    parser.add_argument("--cpu-seconds", type=int, default=0, help="CPU time limit (0: none)")
    parser.add_argument("--open-files", type=int, default=256)
    parser.add_argument("--file-size-mb", type=int, default=64)
    parser.add_argument("--handshake-timeout", type=float, default=30.0)
    parser.add_argument("--user", default="", help="UID:GID to switch to when started as root")
    parser.add_argument("--cgroup", default="", help="the cgroup folder the host put this runner in")
    parser.add_argument("--cgroup-skipped", default="not configured", help="why there is no --cgroup")
    parser.add_argument("--lane-fd", type=int, default=None, help="inherited data-lane socket for batches")
    return parser.parse_args(argv)


def _specs(text: str) -> list[StrategySpec]:
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    data = json.loads(raw)
    if not isinstance(data, list) or not data:
        raise ValueError("--strategies: expected a non-empty JSON list")
    specs = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not item.get("id") or not item.get("name"):
            raise ValueError(f"--strategies[{i}]: expected an object with id, name and optional params")
        specs.append(StrategySpec(id=str(item["id"]), name=str(item["name"]), params=item.get("params") or {}))
    return specs


def _user(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    uid, _, gid = text.partition(":")
    return int(uid), int(gid or uid)


def _configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _yield_to_host() -> str:
    """Run this process under ``SCHED_BATCH``: the empty string, or why not.

    A runner woken by a batch then does not preempt the host's event loop on the core it wakes on
    (CFS skips wake-up preemption for batch tasks); it runs when that core is free or on another.
    Its share of CPU is unchanged. Measured with ``bench_feed`` on 2 cores, 3 runners, 50k ticks/s:
    tick -> signal p50 1.19-1.35 ms against 1.66-1.71 ms, and the feed's arrival p50 0.56-0.60 ms
    against 0.72-0.75 ms (bench/results/data-lane.md, round 3). Not a sandbox layer: strategy code
    could set its policy back, which only costs the host that edge again.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError) as err:  # not Linux, or a kernel that refuses it
        return f"{type(err).__name__}: {err}"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    log = structlog.get_logger("runner")
    refused = _yield_to_host()
    if refused:
        log.info("runner_sched_batch_unavailable", reason=refused)
    try:
        specs = _specs(args.strategies)
        _user(args.user)
        lane = None if args.lane_fd is None else socket.socket(fileno=args.lane_fd)
    except (ValueError, OSError) as err:
        log.error("runner_bad_arguments", reason=str(err))
        return ExitCode.BOOT_ERROR
    token = sys.stdin.readline().strip()
    if not token:
        log.error("runner_no_token", reason="expected the host's token on the first line of stdin")
        return ExitCode.BOOT_ERROR
    policy = sandbox.SandboxPolicy(
        host_pid=args.host_pid, memory_mb=args.memory_mb, cpu_seconds=args.cpu_seconds,
        open_files=args.open_files, file_size_mb=args.file_size_mb, plugin=args.plugin, socket=args.socket,
        user=_user(args.user), cgroup=args.cgroup, cgroup_skipped=args.cgroup_skipped,
    )  # fmt: skip
    try:
        report = sandbox.apply(policy)
    except sandbox.HostGone as err:
        log.error("runner_host_gone", reason=str(err))
        return ExitCode.HOST_GONE
    structlog.contextvars.bind_contextvars(runner_pid=os.getpid(), plugin=args.plugin.name)
    if report.skipped:
        log.warning("runner_sandbox_partial", applied=report.applied, skipped=report.skipped)
    options = RunnerOptions(
        socket=args.socket, plugin=args.plugin, strategies=specs, token=token,
        sandbox=report, handshake_timeout_s=args.handshake_timeout, lane=lane,
    )  # fmt: skip
    return int(asyncio.run(serve(options)))


if __name__ == "__main__":
    sys.exit(main())

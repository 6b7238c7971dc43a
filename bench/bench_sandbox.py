"""What the sandbox layers cost a runner's start: spawn -> Ready with and without them.

    python -m bench.bench_sandbox [--runs 20]

``with``: ``spawn_runner`` as the supervisor calls it (cgroup made and joined, every layer of
``runner.sandbox``: ``apply`` before the link, ``seal`` after it). ``without``: the same argv,
environment and handshake, but the runner is started through a stub that replaces ``apply`` and
``seal`` with no-ops (in the runner process only: nothing in the product can turn layers off),
and no cgroup. Runs alternate so that machine noise falls on both. ``layers``: the time of
``apply`` + ``seal`` themselves, measured inside a runner-like process. Figures go to stdout and
to bench/results/sandbox.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.measure import percentile
from host.link import Inbound, LinkServer
from host.session import RunnerSession
from host.supervisor import process as runner_process
from host.supervisor.process import RunnerLaunch, end_runner, spawn_runner
from tests.helpers import RUNNERS

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox.json"
_STUB = (
    "import sys, runner.sandbox as s; s.apply = lambda policy: s.SandboxReport(); s.seal = lambda report: None; "
    "import runner.app as a; a.seal = s.seal; from runner.__main__ import main; sys.exit(main())"
)
_LAYERS_ONLY = (
    "import os, sys, time, pathlib, runner.app; from runner import sandbox as s; t = time.perf_counter(); "
    "r = s.apply(s.SandboxPolicy(host_pid=os.getppid(), plugin=pathlib.Path(sys.argv[1]))); s.seal(r); "
    "print(time.perf_counter() - t, len(r.applied))"
)


def _launch(i: int) -> RunnerLaunch:
    return RunnerLaunch(f"bench{i}", RUNNERS / "scripted", [{"id": "s1", "name": "scripted"}])


async def _unsandboxed(launch: RunnerLaunch, link: LinkServer, inbox: asyncio.Queue[Inbound]) -> tuple[object, object]:
    registration = link.register(launch.runner_id, inbox)
    argv = runner_process._argv(launch, link.socket_path, "bench: no cgroup")
    argv[argv.index("-m") : argv.index("-m") + 2] = ["-c", _STUB]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env=runner_process.runner_environment(), cwd=str(launch.plugin.parent), start_new_session=True,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(registration.token.encode() + b"\n")
    await proc.stdin.drain()
    proc.stdin.close()
    return proc, registration


async def _once(link: LinkServer, i: int, sandboxed: bool) -> tuple[float, list[str]]:
    inbox: asyncio.Queue[Inbound] = asyncio.Queue()
    launch = _launch(i)
    start = time.perf_counter()
    if sandboxed:
        process, registration = await spawn_runner(launch, link, inbox)
    else:
        raw, registration = await _unsandboxed(launch, link, inbox)
    session = RunnerSession(launch.runner_id, inbox, await asyncio.wait_for(registration.connected, 20))
    hello = await session.handshake({}, 20)
    elapsed = time.perf_counter() - start
    if sandboxed:
        await end_runner(process, session, 2.0)
        await process.aclose()
    else:
        session.request_stop("bench")
        await asyncio.wait_for(raw.wait(), 5)  # type: ignore[attr-defined]
    return elapsed, list(hello.sandbox)


def _layers_only(runs: int) -> list[float]:
    env = runner_process.runner_environment()
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-B", "-s", "-c", _LAYERS_ONLY, str(RUNNERS / "scripted")],
            env=env, capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        times.append(float(out.stdout.split()[0]))
    return times


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(percentile(ordered, 0.9), 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def main(runs: int) -> None:
    link = LinkServer()
    await link.start()
    samples: dict[str, list[float]] = {"with": [], "without": []}
    report: list[str] = []
    try:
        for i in range(runs):
            for sandboxed in (i % 2 == 0, i % 2 == 1):
                elapsed, layers = await _once(link, 2 * i + sandboxed, sandboxed)
                samples["with" if sandboxed else "without"].append(elapsed)
                report = layers if sandboxed else report
    finally:
        await link.stop()
    result = {name: _summary(values) for name, values in samples.items()}
    result["layers"] = _summary(_layers_only(runs))
    result["extra_p50_ms"] = round(result["with"]["p50_ms"] - result["without"]["p50_ms"], 1)
    result["machine"] = {"cpus": os.cpu_count(), "kernel": platform.release(), "runs": runs}
    result["sandbox"] = report  # type: ignore[assignment]
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))

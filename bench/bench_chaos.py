"""Random SIGKILLs of the engine and the paper venue under a steady feed, many more than the suite's 20.

    python -m bench.bench_chaos [--kills 100] [--seeds 1 2 3] [--settle 20]

Each seed is one run of ``tests.integration.chaos.run_chaos``: ``strategy-engine run`` and
``strategy-engine paper-venue`` as subprocesses against a real redis-server and a JetStream
nats-server on free ports, one strategy trading market and limit orders, slot replacements and
cancels on every fourth tick, and the engine, the venue or both SIGKILLed at random moments (seeded)
and restarted. After each recovery the feed pauses and the books are checked (see that module):
every published fill stored once, no order filled past its quantity, the ledger's position equal to
the venue's published fills, no order revived at a restarted venue, every working order known to
the venue. Prints each run's counts and writes bench/results/chaos.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

from tests.integration.chaos import ChaosReport, ChaosStack, run_chaos
from tests.servers import NatsServer, RedisServer

RESULTS = Path(__file__).parent / "results"


def one_run(seed: int, kills: int, settle: float, protocol: str) -> tuple[ChaosReport, float]:
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as temp:
        folder = Path(temp)
        redis_server = RedisServer(folder / "redis")
        nats_server = NatsServer(folder / "nats", jetstream=True)
        redis_server.start()
        nats_server.start()
        stack = ChaosStack(folder / "project", redis_server, nats_server, protocol=protocol)
        started = time.monotonic()
        try:
            report = run_chaos(stack, seed=seed, kills=kills, settle_timeout=settle,
                               progress=lambda line: print(f"  {line}", file=sys.stderr))  # fmt: skip
        finally:
            stack.stop()
            nats_server.stop()
            redis_server.stop()
        return report, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="kills per run (default 100)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="one run per seed (default 1)")
    parser.add_argument("--settle", type=float, default=20.0, help="longest wait for the books to settle, s")
    parser.add_argument(
        "--protocol",
        choices=("orderexecution", "order-service"),
        default="orderexecution",
        help="the venue's protocol (grpc.protocol), engine and paper venue alike",
    )
    args = parser.parse_args()
    lines = [
        "# Random kills of the engine and the paper venue (bench/bench_chaos.py)",
        "",
        f"{platform.node()}, {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"`python -m bench.bench_chaos --kills {args.kills} --seeds {' '.join(map(str, args.seeds))} "
        f"--protocol {args.protocol}`",
        "",
    ]
    failed = 0
    for seed in args.seeds:
        report, took = one_run(seed, args.kills, args.settle, args.protocol)
        print(report.summary())
        lines.append(f"- {report.summary()} ({took:.0f} s)")
        for violation in report.violations[:20]:
            print(f"  VIOLATION {violation}")
            lines.append(f"  - violation: {violation}")
        failed += bool(report.violations)
    written = RESULTS / f"chaos-{args.protocol}.md"
    written.write_text("\n".join(lines) + "\n")
    print(f"written {written}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

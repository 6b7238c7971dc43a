"""Round trip of one event batch through a real runner process over the RunnerLink Unix socket.

    python -m bench.bench_roundtrip [--batches 2000] [--sizes 1 16 256 1024] [--fanout 1 3] [--lanes socket grpc]

Every engine row is measured on both paths for batches, side by side: the data lane (``socket``,
a socket pair per runner, ``engine.dataLane: socket``) and the gRPC stream (``grpc``), with the
ratios socket / grpc. For each batch size: the host encodes N ticks once, sends them as one batch
and waits for the result; a runner of the built-in-style `scripted` strategy (no signals) answers. Reported per
size: p50/p90/p99/max of the round trip and the implied ticks/s of one runner. Also run with a
strategy that emits a signal for every 2nd tick, to show the cost of signals. Then the fan-out
round: a one-tick batch to 1 and 3 runners at once, with the host's and a runner's CPU per round
(the floor under bench_feed's tick -> signal latency), and the same round over bare grpc.aio to
echo processes ("echo" rows): what gRPC alone costs, with no engine code on either end; and over
plain asyncio Unix sockets with length-prefixed frames ("uds" rows), the floor of any transport in
Python, for comparison. Figures go to stdout as tables and to bench/results/roundtrip.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from bench.measure import cpu_seconds, percentile
from host.link import Inbound, LinkServer
from host.session import RunnerSession
from host.supervisor.process import RunnerLaunch, end_runner, spawn_runner
from tests.helpers import RUNNERS, payload, tick_events

RESULTS = Path(__file__).resolve().parent / "results" / "roundtrip.json"


async def _measure(size: int, batches: int, every: int, lane: str) -> dict[str, Any]:
    link = LinkServer()
    await link.start()
    inbox: asyncio.Queue[Inbound] = asyncio.Queue()
    spec = [{"id": "s1", "name": "scripted", "params": {"every": every}}]
    launch = RunnerLaunch("bench", RUNNERS / "scripted", spec, data_lane=lane == "socket")
    process, registration = await spawn_runner(launch, link, inbox)
    try:
        connection = await asyncio.wait_for(registration.connected, 10)
        session = RunnerSession("bench", inbox, connection, lane=process.lane)
        await session.handshake({}, 10)
        assert session.on_lane == (lane == "socket")
        data = payload(tick_events(size))
        for _ in range(50):  # warm up
            await session.call(data, size, 5.0)
        samples = []
        for _ in range(batches):
            started = time.perf_counter_ns()
            await session.call(data, size, 5.0)
            samples.append(time.perf_counter_ns() - started)
    finally:
        await end_runner(process, None, 2.0)
        await process.aclose()
        await link.stop()
    samples.sort()

    def pct(q: float) -> float:
        return percentile(samples, q) / 1000

    p50 = pct(0.50)
    return {
        "lane": lane, "batch": size, "signals_every": every, "batches": batches, "p50_us": round(p50, 1),
        "p90_us": round(pct(0.9), 1), "p99_us": round(pct(0.99), 1), "max_us": round(samples[-1] / 1000, 1),
        "mean_us": round(statistics.fmean(samples) / 1000, 1), "ticks_per_s_at_p50": round(size / (p50 / 1e6)),
    }  # fmt: skip


async def _rounds(
    label: str | int, sends: list[Callable[[], Awaitable[None]]], pids: list[int], rounds: int, lane: str = "-"
) -> dict[str, Any]:
    """Time ``rounds`` fan-out rounds (every send at once, a round ends when all are answered): one table row."""

    async def round_trip() -> int:
        started = time.perf_counter_ns()
        await asyncio.gather(*(send() for send in sends))
        return time.perf_counter_ns() - started

    for _ in range(50):  # warm up
        await round_trip()
    cpu_before = time.process_time(), [cpu_seconds(pid) for pid in pids]
    samples = sorted([await round_trip() for _ in range(rounds)])
    host_cpu_us = (time.process_time() - cpu_before[0]) / rounds * 1e6
    peer_cpu_s = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before[1], strict=True)]

    def pct(q: float) -> float:
        return percentile(samples, q) / 1000

    return {
        "lane": lane, "runners": len(sends), "batch": label, "rounds": rounds, "p50_us": round(pct(0.5), 1),
        "p90_us": round(pct(0.9), 1), "p99_us": round(pct(0.99), 1), "host_cpu_us_per_round": round(host_cpu_us, 1),
        "runner_cpu_us_per_round": round(sum(peer_cpu_s) / len(peer_cpu_s) / rounds * 1e6, 1),
    }  # fmt: skip


async def _measure_fanout(runners: int, size: int, rounds: int, lane: str) -> dict[str, Any]:
    """The same batch to ``runners`` runners at once, as the host fans out one tick; a round ends when all answered.

    This is the floor under tick -> signal latency with that many runners (no Redis, no queueing):
    what the transport and the two ends cost per round, in wall time and in host CPU.
    """
    link = LinkServer()
    await link.start()
    spawned = []
    sessions = []
    try:
        for i in range(runners):
            inbox: asyncio.Queue[Inbound] = asyncio.Queue()
            spec = [{"id": f"s{i}", "name": "scripted", "params": {"every": 1_000_000_000}}]
            launch = RunnerLaunch(f"bench{i}", RUNNERS / "scripted", spec, data_lane=lane == "socket")
            process, registration = await spawn_runner(launch, link, inbox)
            spawned.append(process)
            connection = await asyncio.wait_for(registration.connected, 10)
            session = RunnerSession(f"bench{i}", inbox, connection, lane=process.lane)
            await session.handshake({}, 10)
            assert session.on_lane == (lane == "socket")
            sessions.append(session)
        data = payload(tick_events(size))

        def sender(session: RunnerSession) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                await session.call(data, size, 5.0)

            return send

        sends = [sender(session) for session in sessions]
        return await _rounds(size, sends, [p.pid for p in spawned], rounds, lane)
    finally:
        for process in spawned:
            await end_runner(process, None, 2.0)
            await process.aclose()
        await link.stop()


_ECHO_CLIENT = r"""
import asyncio, sys, grpc
async def main():
    async with grpc.aio.insecure_channel("unix://" + sys.argv[1]) as channel:
        call = channel.stream_stream("/bench.Echo/Connect", request_serializer=bytes, response_deserializer=bytes)()
        while (message := await call.read()) is not grpc.aio.EOF:
            await call.write(message)
asyncio.run(main())
"""


async def _measure_transport(clients: int, rounds: int) -> dict[str, Any]:
    """gRPC alone: the same fan-out round with echo clients and no engine code on either end.

    A 150-byte message to each of ``clients`` echo processes over grpc.aio on a Unix socket, as
    the host's link does; what is left of bench_feed's latency floor once the engine is gone.
    """
    connected: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue()
    finished = asyncio.get_running_loop().create_future()

    async def connect(requests: Any, context: Any) -> None:
        await connected.put((context, requests.__aiter__()))
        await asyncio.shield(finished)

    handler = grpc.stream_stream_rpc_method_handler(connect, request_deserializer=bytes, response_serializer=bytes)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Echo", {"Connect": handler})])
    with tempfile.TemporaryDirectory() as tmp:
        socket_path = f"{tmp}/echo.sock"
        server.add_insecure_port(f"unix://{socket_path}")
        await server.start()
        procs = [
            await asyncio.create_subprocess_exec(sys.executable, "-c", _ECHO_CLIENT, socket_path)
            for _ in range(clients)
        ]
        try:
            streams = [await asyncio.wait_for(connected.get(), 10) for _ in range(clients)]

            def sender(context: Any, replies: Any) -> Callable[[], Awaitable[None]]:
                async def send() -> None:
                    await context.write(b"x" * 150)
                    await replies.__anext__()

                return send

            return await _rounds("echo", [sender(*stream) for stream in streams], [p.pid for p in procs], rounds)
        finally:
            finished.set_result(None)
            for proc in procs:
                proc.kill()
                await proc.wait()
            await server.stop(0)


_UNIX_ECHO_CLIENT = r"""
import asyncio, struct, sys
async def main():
    reader, writer = await asyncio.open_unix_connection(sys.argv[1])
    while True:
        head = await reader.readexactly(4)
        writer.write(head + await reader.readexactly(struct.unpack("<I", head)[0]))
asyncio.run(main())
"""


async def _measure_unix_socket(clients: int, rounds: int) -> dict[str, Any]:
    """The fan-out round over plain asyncio Unix sockets with length-prefixed frames, for comparison.

    No engine code on either end: the floor under the engine's data lane, which frames its batches
    the same way.
    """
    connected: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await connected.put((reader, writer))

    with tempfile.TemporaryDirectory() as tmp:
        socket_path = f"{tmp}/echo.sock"
        server = await asyncio.start_unix_server(accept, socket_path)
        procs = [
            await asyncio.create_subprocess_exec(sys.executable, "-c", _UNIX_ECHO_CLIENT, socket_path)
            for _ in range(clients)
        ]
        try:
            streams = [await asyncio.wait_for(connected.get(), 10) for _ in range(clients)]
            frame = (150).to_bytes(4, "little") + b"x" * 150

            def sender(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Callable[[], Awaitable[None]]:
                async def send() -> None:
                    writer.write(frame)
                    head = await reader.readexactly(4)
                    await reader.readexactly(int.from_bytes(head, "little"))

                return send

            return await _rounds("uds", [sender(*stream) for stream in streams], [p.pid for p in procs], rounds)
        finally:
            for proc in procs:
                proc.kill()
                await proc.wait()
            server.close()


def _ratios(rows: list[dict[str, Any]], fanout: list[dict[str, Any]]) -> dict[str, float]:
    """socket / grpc for each figure measured on both lanes (below 1: the data lane is cheaper)."""
    out: dict[str, float] = {}
    for r in rows:
        other = [
            g
            for g in rows
            if g["lane"] == "grpc" and (g["batch"], g["signals_every"]) == (r["batch"], r["signals_every"])
        ]
        if r["lane"] == "socket" and other:
            signals = "none" if r["signals_every"] > 1_000_000 else f"1/{r['signals_every']}"
            out[f"batch {r['batch']} signals {signals} p50"] = round(r["p50_us"] / other[0]["p50_us"], 2)
    for r in fanout:
        other = [g for g in fanout if g["lane"] == "grpc" and g["runners"] == r["runners"]]
        if r["lane"] == "socket" and other:
            out[f"{r['runners']}-runner round p50"] = round(r["p50_us"] / other[0]["p50_us"], 2)
            key = f"{r['runners']}-runner round host CPU"
            out[key] = round(r["host_cpu_us_per_round"] / other[0]["host_cpu_us_per_round"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 256, 1024])
    parser.add_argument("--fanout", type=int, nargs="*", default=[1, 3], help="runners per round (one-tick batches)")
    parser.add_argument("--lanes", nargs="+", default=["socket", "grpc"], choices=["socket", "grpc"])
    args = parser.parse_args()
    rows = []
    for every in (1_000_000_000, 2):
        for size in args.sizes:
            for lane in args.lanes:
                batches = args.batches if size < 1024 else args.batches // 4
                rows.append(asyncio.run(_measure(size, batches, every, lane)))
    print(
        f"{'lane':>6} {'batch':>6} {'signals':>8} {'p50 us':>9} {'p90 us':>9} {'p99 us':>9} {'max us':>9} "
        f"{'ticks/s':>10}"
    )
    for r in rows:
        signals = "none" if r["signals_every"] > 1_000_000 else f"1/{r['signals_every']}"
        print(
            f"{r['lane']:>6} {r['batch']:>6} {signals:>8} {r['p50_us']:>9} {r['p90_us']:>9} {r['p99_us']:>9} "
            f"{r['max_us']:>9} {r['ticks_per_s_at_p50']:>10,}"
        )
    fanout = [asyncio.run(_measure_fanout(n, 1, args.batches, lane)) for n in args.fanout for lane in args.lanes]
    fanout += [asyncio.run(_measure_transport(n, args.batches)) for n in args.fanout]
    fanout += [asyncio.run(_measure_unix_socket(n, args.batches)) for n in args.fanout]
    print(
        f"\n{'lane':>6} {'runners':>7} {'batch':>6} {'p50 us':>9} {'p90 us':>9} {'p99 us':>9} "
        f"{'host CPU us/round':>18} {'runner CPU us/round':>20}"
    )
    for r in fanout:
        print(
            f"{r['lane']:>6} {r['runners']:>7} {r['batch']:>6} {r['p50_us']:>9} {r['p90_us']:>9} {r['p99_us']:>9} "
            f"{r['host_cpu_us_per_round']:>18} {r['runner_cpu_us_per_round']:>20}"
        )
    ratios = _ratios(rows, fanout)
    for name, value in ratios.items():
        print(f"socket / grpc, {name}: {value}")
    RESULTS.parent.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows, "fanout": fanout, "ratios": ratios}, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

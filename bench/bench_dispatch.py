"""The runner's CPU per market event, in-process: protocol event -> SDK event -> strategy handler.

    python -m bench.bench_dispatch [--batch 256] [--rounds 400] [--repeat 5]

What a runner does with a batch, without the transport: ``decode`` rows time
``wire.event_from_pb`` on one parsed ``Event`` of each market type (us an event); ``batch``
rows time ``Dispatcher.handle_batch`` on an already parsed ``EventBatch`` of ``--batch`` ticks
(us a tick, the batch's parse excluded) with: 1 slot of bench/plugins/echo_sample (a signal
every 100th tick, as in bench_feed), 1 slot of a strategy with no handlers (the dispatch
floor), 3 echo slots, and 3 slots of which 2 filter the batch's symbol out (``symbols``).
Best of ``--repeat``; to stdout only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.plugins.echo_sample import EchoSample, EchoSampleConfig
from engine_proto import strategy_pb2 as pb
from protocol import wire
from runner.dispatch import Dispatcher
from sdk import Strategy, StrategyConfig
from sdk.dispatch import StrategySlot
from sdk.events import Book, Candle, Side, Tick, Trade
from tests.helpers import payload, tick_events


class _Idle(Strategy[StrategyConfig]):
    name = "idle"


def _best(repeat: int, run: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        run()
        best = min(best, time.perf_counter_ns() - started)
    return best


def _decode_rows(repeat: int) -> list[tuple[str, float]]:
    ts = 1_700_000_000_000_000_000
    samples = {
        "tick": Tick(symbol="BTCUSDT", timestamp_ns=ts, bid_price=100.0, bid_size=1.0, ask_price=100.1,
                     ask_size=2.0, sequence=7),
        "trade": Trade(symbol="BTCUSDT", timestamp_ns=ts, last_price=100.0, volume=0.5, volume_quote=50.0,
                       side=Side.BUY, sequence=7),
        "book": Book(symbol="BTCUSDT", timestamp_ns=ts, bids=tuple((100.0 - i, 1.0) for i in range(10)),
                     asks=tuple((101.0 + i, 1.0) for i in range(10)), sequence=7),
        "candle": Candle(symbol="BTCUSDT", timestamp_ns=ts, open=100.0, high=101.0, low=99.0, close=100.5,
                         volume=3.0, sequence=7),
    }  # fmt: skip
    rows = []
    n = 20_000
    for name, event in samples.items():
        message = wire.event_to_pb(event)

        def run(message: pb.Event = message, decode: Callable[[pb.Event], Any] = wire.event_from_pb) -> None:
            for _ in range(n):
                decode(message)

        rows.append((f"decode {name}", _best(repeat, run) / n / 1000))
    return rows


def _dispatcher(kinds: list[tuple[str, tuple[str, ...]]]) -> Dispatcher:
    slots = []
    for i, (kind, symbols) in enumerate(kinds):
        strategy: Strategy[Any] = (
            EchoSample(EchoSampleConfig(symbols=symbols)) if kind == "echo" else _Idle(StrategyConfig(symbols=symbols))
        )
        slots.append(StrategySlot(f"s{i}", strategy))
    return Dispatcher(slots)


def _batch_rows(size: int, rounds: int, repeat: int) -> list[tuple[str, float]]:
    batch = pb.EventBatch.FromString(payload(tick_events(size)))
    setups = {
        "1 echo": [("echo", ())],
        "1 idle": [("idle", ())],
        "3 echo": [("echo", ())] * 3,
        "3 echo, 2 filtered": [("echo", ()), ("echo", ("ETHUSDT",)), ("echo", ("ETHUSDT", "SOLUSDT"))],
    }
    rows = []
    for name, kinds in setups.items():
        dispatcher = _dispatcher(kinds)

        def run(dispatcher: Dispatcher = dispatcher) -> None:
            for i in range(rounds):
                batch.seq = i
                dispatcher.handle_batch(batch)

        rows.append((f"batch {size} ticks, {name}", _best(repeat, run) / rounds / size / 1000))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = _decode_rows(args.repeat) + _batch_rows(args.batch, args.rounds, args.repeat)
    for name, us in rows:
        print(f"{name:<40} {us:7.3f} us")


if __name__ == "__main__":
    main()

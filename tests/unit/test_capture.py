"""Crash capture's pure parts: the ring, the rate gate, the file cap and the event format."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from engine_proto import strategy_pb2 as pb
from host.supervisor.capture import (
    CaptureGate,
    CapturePolicy,
    CaptureStore,
    CaptureSubject,
    EventRing,
    Failure,
    StrategyCapture,
    event_json,
)
from protocol import wire
from sdk._codec import decode_event
from sdk.events import Event, Fill, OrderUpdate, OrderUpdateStatus, Position, Side, Tick, Timer, Trade
from tests.helpers import NOON, ManualClock

SUBJECT = CaptureSubject("s1", "plug", "strat", {"symbols": ["BTCUSDT"], "quantity": 0.5}, Path("/plugins"))


def tick(n: int) -> Tick:
    return Tick(symbol="BTCUSDT", timestamp_ns=NOON + n, bid_price=100.0 + n, bid_size=1.0, ask_price=100.5 + n,
                ask_size=2.0, sequence=n)  # fmt: skip


def items(*events: Event, target: str = "") -> list[bytes]:
    return [wire.encode_event_item(e, target=target) for e in events]


class TestEventRing:
    def test_keeps_the_last_capacity_items_and_says_it_overflowed(self) -> None:
        """Past its capacity the oldest items go, and the ring says it starts mid-run."""
        ring = EventRing(3)
        ring.extend(items(tick(1), tick(2)))
        assert not ring.overflowed
        ring.extend(items(tick(3), tick(4)))
        assert ring.overflowed and ring.sent == 4
        assert ring.items() == items(tick(2), tick(3), tick(4))

    def test_a_new_runner_starts_an_empty_ring_with_its_state(self) -> None:
        ring = EventRing(3)
        ring.extend(items(tick(1), tick(2), tick(3), tick(4)))
        ring.started(b"state")
        assert ring.items() == [] and ring.sent == 0 and not ring.overflowed and ring.restore == b"state"

    def test_memory_counts_the_encoded_bytes(self) -> None:
        ring = EventRing(10)
        kept = items(tick(1), tick(2))
        ring.extend(kept)
        assert ring.memory_bytes() == sum(len(i) for i in kept) + 16


class TestCaptureGate:
    def test_one_per_kind_per_interval(self) -> None:
        """A second capture of a kind within the interval is refused and counted; other kinds are not held up."""
        clock = ManualClock()
        gate = CaptureGate(60.0, clock)
        assert gate.allow("error")
        clock.advance(59.9)
        assert not gate.allow("error")
        assert gate.allow("crash")
        clock.advance(0.1)
        assert gate.allow("error")
        assert gate.suppressed == {"error": 1}


class TestEventFormat:
    @pytest.mark.parametrize(
        "event",
        [
            tick(7),
            Trade(symbol="ETHUSDT", timestamp_ns=NOON, last_price=2500.5, volume=0.3, side=Side.SELL, sequence=3),
            Fill(fill_id="f1", order_id="o1", symbol="BTCUSDT", side=Side.BUY, price=100.25, quantity=0.01,
                 timestamp_ns=NOON + 5, fee=0.001, strategy="s1"),
            Position(symbol="BTCUSDT", quantity=-0.02, avg_entry_price=101.5, timestamp_ns=NOON + 6, strategy="s1"),
            Timer(name="hold", timestamp_ns=NOON + 123456789),
            OrderUpdate(client_order_id="c1", strategy="s1", symbol="BTCUSDT", side=Side.SELL,
                        status=OrderUpdateStatus.REJECTED, quantity=0.5, reason="too big", rule="max_order_quantity",
                        timestamp_ns=NOON + 9),
        ],
    )  # fmt: skip
    def test_every_kind_reads_back_equal(self, event: Event) -> None:
        """What a capture writes, sdk._codec reads back to an equal event (what reproduce delivers)."""
        assert decode_event(json.loads(json.dumps(event_json(event)))) == event


class TestCaptureStore:
    def write(self, store: CaptureStore, strategy: str, kind: str = "error") -> Path:
        return store.write({"kind": kind}, strategy, kind, items(tick(1))).path

    def test_writes_the_events_and_keeps_the_newest_files(self, tmp_path: Path) -> None:
        """Each strategy keeps its newest ``files`` captures; the others' are not touched."""
        now = [NOON]

        def clock() -> int:
            now[0] += 1_000_000
            return now[0]

        store = CaptureStore(CapturePolicy(files=2, directory=tmp_path), clock)
        written = [self.write(store, "a") for _ in range(4)]
        other = self.write(store, "b", "crash")
        assert sorted((tmp_path / "a").iterdir()) == written[2:]
        assert other.is_file()
        assert [r.path for r in store.records()] == [other, written[3], written[2]]
        document = json.loads(written[3].read_text())
        assert document["events"] == [event_json(tick(1))]

    def test_a_new_store_lists_the_files_already_there(self, tmp_path: Path) -> None:
        """A restarted host still lists the captures of the last one, newest first."""
        first = CaptureStore(CapturePolicy(directory=tmp_path), lambda: NOON)
        path = self.write(first, "a", "timeout")
        [record] = CaptureStore(CapturePolicy(directory=tmp_path), lambda: NOON + 1).records()
        assert (record.path, record.strategy, record.kind) == (path, "a", "timeout")
        assert record.time == "2024-03-01T12:00:00.000000000Z"

    def test_strategy_ids_become_safe_folder_names(self, tmp_path: Path) -> None:
        store = CaptureStore(CapturePolicy(directory=tmp_path), lambda: NOON)
        assert self.write(store, "../evil id").parent == tmp_path / ".._evil_id"


class TestStrategyCapture:
    def test_a_handler_error_becomes_an_error_capture_once_per_interval(self, tmp_path: Path) -> None:
        """The first error of a batch result is captured with the ring and the state; a second is gated."""
        clock = ManualClock()
        written: list[str] = []
        capture = StrategyCapture(CaptureStore(CapturePolicy(directory=tmp_path), lambda: NOON), clock, written.append)
        capture.started(b"\x00state")
        capture.sent(items(tick(1), tick(2)))
        result = pb.BatchResult(seq=1, outputs=[pb.StrategyOutput(strategy="s1", errors=[
            pb.Error(kind="exception", text="RuntimeError: boom", handler="on_tick", location="plug/x.py:3",
                     traceback="Traceback ..."),
        ])])  # fmt: skip
        failure = capture.answered("s1", result)
        assert failure == Failure(kind="error", text="RuntimeError: boom", error_kind="exception", handler="on_tick",
                                  location="plug/x.py:3", traceback="Traceback ...")  # fmt: skip
        record = asyncio.run(capture.capture(SUBJECT, failure))
        assert record is not None and written == ["error"]
        document = json.loads(record.path.read_text())
        assert document["restore"] == "AHN0YXRl"
        assert document["strategy"]["params"] == {"symbols": ["BTCUSDT"], "quantity": 0.5}
        assert [e["sequence"] for e in document["events"]] == [1, 2]
        assert asyncio.run(capture.capture(SUBJECT, failure)) is None

    def test_a_result_without_errors_or_of_another_strategy_is_no_failure(self, tmp_path: Path) -> None:
        capture = StrategyCapture(CaptureStore(CapturePolicy(directory=tmp_path), lambda: NOON), ManualClock())
        other = pb.BatchResult(outputs=[pb.StrategyOutput(strategy="s2", errors=[pb.Error(text="x")])])
        assert capture.answered("s1", pb.BatchResult()) is None
        assert capture.answered("s1", other) is None

    def test_nothing_is_kept_or_written_when_off(self, tmp_path: Path) -> None:
        """captureEvents 0: no ring, no file."""
        store = CaptureStore(CapturePolicy(events=0, directory=tmp_path), lambda: NOON)
        capture = StrategyCapture(store, ManualClock())
        capture.sent(items(tick(1)))
        assert capture.ring.items() == []
        assert asyncio.run(capture.lost(SUBJECT, "crash", "gone")) is None
        assert list(tmp_path.iterdir()) == []

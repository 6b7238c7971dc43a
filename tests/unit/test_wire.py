"""The protocol conversions in protocol.wire, above all the bytes the host frames by hand.

The host serializes each event once and joins the bytes into every runner's batch, framing the
``EventBatch.events`` entries, the ``Event.market`` field and the ``HostMessage.batch`` around them
itself. Those bytes must be exactly what protobuf would write, and read back to the same event.
"""

from __future__ import annotations

import pytest

from engine_proto import strategy_pb2 as pb
from protocol import wire
from sdk.events import Book, Candle, Event, Fill, Position, Side, Tick, Timer, Trade

T0 = 1_723_161_254_087_891_000

EVENTS: list[Event] = [
    Tick("BTCUSDT", T0, 61837.63, 3.5, 61837.64, 1.2, None, 7),
    Tick("BTCUSDT", T0, 61837.63, 0.0, 61837.64, 0.0, 61837.6, 0),
    Trade("ETHUSDT", T0, 2657.1, 0.25, None, None, 1),
    Trade("ETHUSDT", T0, 2657.1, 0.25, 664.275, None, 300),
    Book("BTCUSDT", T0, tuple((61837.0 - i, 0.5) for i in range(40)), tuple((61838.0 + i, 0.7) for i in range(40))),
    Candle("BTCUSDT", T0, 61800.0, 61900.0, 61750.0, 61850.0, None, None, 5),
    Candle("BTCUSDT", T0, 61800.0, 61900.0, 61750.0, 61850.0, 12.5, 772_000.0, 16_384),
    Fill("f-1", "o-1", "BTCUSDT", Side.BUY, 61837.64, 0.001, T0, 0.02, "momentum"),
    Fill("fill-test-001", "", "BTCUSDT", Side.BUY, 50000.0, 0.001, T0, 0.05, "momentum", "USDT"),
    Position("BTCUSDT", 0.003, 61800.0, T0, 61837.64, 0.11, 0.0, "momentum"),
    Timer("rebalance", T0),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("target", ["", "momentum"])
def test_an_event_item_is_what_protobuf_writes_and_reads_back(event: Event, target: str) -> None:
    item = wire.encode_event_item(event, target=target)
    assert item == pb.EventBatch(events=[wire.event_to_pb(event, target)]).SerializeToString()
    (message,) = pb.EventBatch.FromString(item).events
    assert message.target == target
    assert wire.event_from_pb(message) == event


@pytest.mark.parametrize("seq", [1, 127, 128, 16_383, 16_384, 2**21 - 1, 2**21, 2**35, 2**63 - 1])
def test_a_batch_is_what_protobuf_writes_at_every_varint_length(seq: int) -> None:
    """The seq and both length prefixes cross the one-, two- and many-byte varint forms."""
    events = EVENTS[:7] * 30  # ~12 KB: the batch's length prefix takes two bytes, the outer one three
    payload = b"".join(wire.encode_event_item(e) for e in events)
    framed = wire.encode_batch(seq, payload)
    expected = pb.HostMessage(batch=pb.EventBatch(seq=seq, events=[wire.event_to_pb(e) for e in events]))
    assert framed == expected.SerializeToString()
    batch = pb.HostMessage.FromString(framed).batch
    assert batch.seq == seq
    assert [wire.event_from_pb(m) for m in batch.events] == events


def test_an_empty_batch_still_carries_its_seq() -> None:
    assert pb.HostMessage.FromString(wire.encode_batch(5, b"")).batch.seq == 5

"""The protocol conversions in protocol.wire, above all the bytes the host frames by hand.

The host serializes each event once and joins the bytes into every runner's batch, framing the
``EventBatch.events`` entries, the ``Event.market`` field and the ``HostMessage.batch`` around them
itself. Those bytes must be exactly what protobuf would write, and read back to the same event.
"""

from __future__ import annotations

import pytest

from engine_proto import strategy_pb2 as pb
from protocol import wire
from sdk.errors import ValidationError
from sdk.events import (
    Book,
    Candle,
    Event,
    Fill,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    Side,
    Signal,
    Tick,
    Timer,
    Trade,
)

T0 = 1_723_161_254_087_891_000

EVENTS: list[Event] = [
    Tick(
        symbol="BTCUSDT",
        timestamp_ns=T0,
        bid_price=61837.63,
        bid_size=3.5,
        ask_price=61837.64,
        ask_size=1.2,
        last_price=None,
        sequence=7,
    ),
    Tick(
        symbol="BTCUSDT",
        timestamp_ns=T0,
        bid_price=61837.63,
        bid_size=0.0,
        ask_price=61837.64,
        ask_size=0.0,
        last_price=61837.6,
        sequence=0,
    ),
    Trade(symbol="ETHUSDT", timestamp_ns=T0, last_price=2657.1, volume=0.25, volume_quote=None, side=None, sequence=1),
    Trade(
        symbol="ETHUSDT", timestamp_ns=T0, last_price=2657.1, volume=0.25, volume_quote=664.275, side=None, sequence=300
    ),
    Trade(
        symbol="ETHUSDT",
        timestamp_ns=T0,
        last_price=2657.1,
        volume=0.25,
        volume_quote=None,
        side=Side.SELL,
        sequence=301,
    ),  # the aggressor's side (b25's is_buyer_maker)
    Trade(
        symbol="ETHUSDT",
        timestamp_ns=T0,
        last_price=2657.1,
        volume=0.25,
        volume_quote=None,
        side=Side.BUY,
        sequence=302,
    ),
    Book(
        symbol="BTCUSDT",
        timestamp_ns=T0,
        bids=tuple((61837.0 - i, 0.5) for i in range(40)),
        asks=tuple((61838.0 + i, 0.7) for i in range(40)),
    ),
    Candle(
        symbol="BTCUSDT",
        timestamp_ns=T0,
        open=61800.0,
        high=61900.0,
        low=61750.0,
        close=61850.0,
        volume=None,
        volume_quote=None,
        sequence=5,
    ),
    Candle(
        symbol="BTCUSDT",
        timestamp_ns=T0,
        open=61800.0,
        high=61900.0,
        low=61750.0,
        close=61850.0,
        volume=12.5,
        volume_quote=772_000.0,
        sequence=16_384,
    ),
    Fill(
        fill_id="f-1",
        order_id="o-1",
        symbol="BTCUSDT",
        side=Side.BUY,
        price=61837.64,
        quantity=0.001,
        timestamp_ns=T0,
        fee=0.02,
        strategy="momentum",
    ),
    Fill(
        fill_id="fill-test-001",
        order_id="",
        symbol="BTCUSDT",
        side=Side.BUY,
        price=50000.0,
        quantity=0.001,
        timestamp_ns=T0,
        fee=0.05,
        strategy="momentum",
        fee_currency="USDT",
    ),
    Position(
        symbol="BTCUSDT",
        quantity=0.003,
        avg_entry_price=61800.0,
        timestamp_ns=T0,
        current_price=61837.64,
        unrealized_pnl=0.11,
        realized_pnl=0.0,
        strategy="momentum",
    ),
    Timer(name="rebalance", timestamp_ns=T0),
    OrderUpdate(
        client_order_id="order-1",
        strategy="momentum",
        symbol="BTCUSDT",
        side=Side.SELL,
        status=OrderUpdateStatus.REJECTED,
        quantity=0.5,
        reason="max_position_size: 1.5 > limit 1.0",
        rule="max_position_size",
        timestamp_ns=T0,
    ),
    OrderUpdate(
        client_order_id="4f1c0b7e9a2d4c1e8b3a5d6f7e8c9b0a",
        strategy="mm",
        symbol="ETHUSDT",
        side=Side.BUY,
        slot="bid",
        status=OrderUpdateStatus.PARTIALLY_FILLED,
        quantity=2.0,
        filled_quantity=0.75,
        remaining_quantity=1.25,
        average_price=2657.1,
        timestamp_ns=T0,
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("target", ["", "momentum"])
def test_an_event_item_is_what_protobuf_writes_and_reads_back(event: Event, target: str) -> None:
    item = wire.encode_event_item(event, target=target)
    assert item == pb.EventBatch(events=[wire.event_to_pb(event, target)]).SerializeToString()
    (message,) = pb.EventBatch.FromString(item).events
    assert message.target == target
    assert wire.event_from_pb(message) == event


@pytest.mark.parametrize("last_price", [None, 101.5])
def test_a_tick_item_is_what_protobuf_writes_at_every_length_near_one_byte(last_price: float | None) -> None:
    """A tick's item takes a shortcut while both its length prefixes fit one byte: symbols of 1 to 140
    characters take the encoded market message across 125/126/127/128 bytes."""
    for length in range(1, 141):
        tick = Tick(symbol="S" * length, timestamp_ns=T0 + length, bid_price=100.0, bid_size=1.5, ask_price=100.5,
                    ask_size=0.0, last_price=last_price, sequence=length)  # fmt: skip
        item = wire.encode_event_item(tick)
        assert item == pb.EventBatch(events=[wire.event_to_pb(tick)]).SerializeToString(), length
        (message,) = pb.EventBatch.FromString(item).events
        assert wire.event_from_pb(message) == tick


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


class TestOrderUpdates:
    @pytest.mark.parametrize("status", list(OrderUpdateStatus))
    def test_every_status_travels(self, status: OrderUpdateStatus) -> None:
        """Each status an update can have reads back as itself."""
        update = OrderUpdate(
            client_order_id="c", symbol="BTCUSDT", side=Side.BUY, status=status, quantity=1.0, timestamp_ns=T0
        )
        assert wire.event_from_pb(wire.event_to_pb(update, "mm")) == update

    def test_an_update_without_status_is_refused(self) -> None:
        """An update whose status the runner cannot read is an error naming the order, not a guess."""
        message = wire.event_to_pb(EVENTS[-1])
        message.order.status = pb.ORDER_UPDATE_STATUS_UNSPECIFIED
        with pytest.raises(ValueError, match="'4f1c0b7e9a2d4c1e8b3a5d6f7e8c9b0a' has no status"):
            wire.event_from_pb(message)

    def test_an_update_without_side_is_refused(self) -> None:
        """The side is validated like a signal's: an unspecified one names the field."""
        message = wire.event_to_pb(EVENTS[-1])
        message.order.side = pb.SIDE_UNSPECIFIED
        with pytest.raises(ValidationError, match=r"OrderUpdate\.side"):
            wire.event_from_pb(message)


class TestSignals:
    def test_a_signal_keeps_its_client_order_id(self) -> None:
        """The id a strategy's emit gave its signal reaches the host unchanged."""
        signal = Signal(
            symbol="BTCUSDT",
            side=Side.BUY,
            quantity=0.1,
            order_type=OrderType.LIMIT,
            price=61000.0,
            slot="bid",
            client_order_id="q-9",
        )
        assert wire.signal_from_pb(wire.signal_to_pb(signal, T0)) == signal

    def test_a_bad_client_order_id_is_refused_by_the_host(self) -> None:
        """The host validates the id a runner sends, as every other field of an untrusted signal."""
        message = wire.signal_to_pb(Signal(symbol="BTCUSDT", side=Side.BUY, quantity=0.1))
        message.client_order_id = "has spaces and is far longer than any exchange would take"
        with pytest.raises(ValidationError, match=r"Signal\.client_order_id"):
            wire.signal_from_pb(message)


class TestProtocolVersion:
    @pytest.mark.parametrize(
        ("theirs", "ours"),
        [("1.0", "1.0"), ("1.0", "1.3"), ("1.2", "1.3"), ("2.5", "2.5"), ("1.09", "1.10")],
    )
    def test_same_major_and_no_newer_minor_is_accepted(self, theirs: str, ours: str) -> None:
        """A runner on the host's major version and its minor version or an older one is served."""
        assert wire.protocol_refusal(theirs, ours) is None

    @pytest.mark.parametrize(
        ("theirs", "ours", "reason"),
        [
            ("2.0", "1.0", "runner speaks strategy protocol 2.0, this host speaks 1.x; install a matching SDK"),
            ("0.9", "1.0", "runner speaks strategy protocol 0.9, this host speaks 1.x; install a matching SDK"),
            ("1.4", "1.3", "runner speaks strategy protocol 1.4, newer than this host's 1.3; install a matching SDK"),
            ("", "1.0", "runner speaks no strategy protocol version (an SDK before 1.0), this host speaks 1.x; "
                        "install a matching SDK"),
            ("1", "1.0", "runner speaks strategy protocol '1', which is not MAJOR.MINOR; install a matching SDK"),
            ("1.x", "1.0", "runner speaks strategy protocol '1.x', which is not MAJOR.MINOR; install a matching SDK"),
            ("v1.0", "1.0", "runner speaks strategy protocol 'v1.0', which is not MAJOR.MINOR; install a matching SDK"),
        ],
    )  # fmt: skip
    def test_anything_else_is_refused_naming_both_versions(self, theirs: str, ours: str, reason: str) -> None:
        """Another major, a newer minor, no version or a malformed one: refused, with the reason and the fix."""
        assert wire.protocol_refusal(theirs, ours) == reason

    def test_this_host_speaks_1_0(self) -> None:
        """The protocol defined by this code is 1.0, and it accepts itself."""
        assert wire.PROTOCOL_VERSION == "1.0"
        assert wire.protocol_refusal(wire.PROTOCOL_VERSION) is None

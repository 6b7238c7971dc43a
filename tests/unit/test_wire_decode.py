"""protocol.wire.event_from_pb, the runner's decode: market data first without WhichOneof, the rest as before."""

from __future__ import annotations

import dataclasses

import pytest

from engine_proto import strategy_pb2 as pb
from protocol import wire
from sdk.events import Event, Fill, OrderUpdate, OrderUpdateStatus, Position, Side, Timer
from tests.unit.test_wire import EVENTS, T0

OTHERS: list[Event] = [
    Fill(fill_id="f", order_id="o", symbol="BTCUSDT", side=Side.BUY, price=1.0, quantity=1.0, timestamp_ns=T0),
    Position(symbol="BTCUSDT", quantity=-1.0, avg_entry_price=2.0, timestamp_ns=T0, strategy="mm"),
    Timer(name="minute", timestamp_ns=T0),
    OrderUpdate(client_order_id="c", symbol="BTCUSDT", side=Side.SELL, status=OrderUpdateStatus.FILLED,
                quantity=1.0, timestamp_ns=T0),
]  # fmt: skip


class TestEventFromPb:
    @pytest.mark.parametrize("event", EVENTS + OTHERS, ids=lambda e: type(e).__name__)
    def test_every_field_reads_back_with_its_type(self, event: Event) -> None:
        """Each field comes back equal and of the same type (None stays None, 0.0 stays a float)."""
        decoded = wire.event_from_pb(wire.event_to_pb(event))
        assert type(decoded) is type(event)
        for f in dataclasses.fields(event):  # type: ignore[arg-type]
            mine, theirs = getattr(decoded, f.name), getattr(event, f.name)
            assert (type(mine), mine) == (type(theirs), theirs), f.name

    @pytest.mark.parametrize("event", EVENTS + OTHERS, ids=lambda e: type(e).__name__)
    def test_decoding_leaves_the_message_as_it_was(self, event: Event) -> None:
        """Looking at the market field of an event that holds something else does not set it."""
        message = wire.event_to_pb(event, "mm")
        before = message.SerializeToString(deterministic=True)
        wire.event_from_pb(message)
        assert message.SerializeToString(deterministic=True) == before
        assert message.WhichOneof("kind") == pb.Event.FromString(before).WhichOneof("kind")

    def test_market_data_of_no_type_is_refused(self) -> None:
        """A MarketData with type unspecified is an error naming the type, not an empty event."""
        message = pb.Event(market=pb.MarketData(symbol="BTCUSDT", timestamp_ns=T0, bid_price=1.0))
        with pytest.raises(ValueError, match="market data type 0 is not tick, trade, book or candle"):
            wire.event_from_pb(message)

    def test_market_data_of_an_unknown_type_is_refused(self) -> None:
        """A type number this runner does not know (a newer host's) is an error naming it."""
        message = pb.Event(market=pb.MarketData(symbol="BTCUSDT", timestamp_ns=T0))
        message.market.type = 9  # type: ignore[assignment]  # an open enum: any number parses
        with pytest.raises(ValueError, match="market data type 9 is not"):
            wire.event_from_pb(message)

    def test_an_event_of_no_kind_is_refused(self) -> None:
        """An Event with nothing in its oneof is an error, as before."""
        with pytest.raises(ValueError, match="event kind None is unknown"):
            wire.event_from_pb(pb.Event(target="mm"))

    def test_a_book_with_a_lone_price_is_refused(self) -> None:
        """Levels come in (price, size) pairs: an odd count is an error, not a dropped level."""
        message = pb.Event(market=pb.MarketData(type=pb.BOOK, symbol="BTCUSDT", timestamp_ns=T0, bids=[1.0, 2.0, 3.0]))
        with pytest.raises(ValueError):
            wire.event_from_pb(message)

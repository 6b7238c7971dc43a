"""``order.OrderService`` requests into the order model, orders out to gRPC and b25's JSON; the engine's touch."""

from __future__ import annotations

from typing import Any

import pytest

from engine_proto import order_service_pb2 as pb
from host.execution.matching import MatchingEngine
from host.execution.oms_wire import WireError
from host.execution.paper_order_wire import (
    ServiceUpdate,
    is_post_only,
    order_pb,
    rejected_order,
    request_to_intent,
    service_order,
    takes_liquidity,
    update_json,
)
from host.orders import OrderState, OrderStatus
from sdk.events import Book, OrderType, Side, Tick, TimeInForce, Trade
from tests.helpers import NOON, SECOND, ManualClocks


def request(**fields: Any) -> pb.CreateOrderRequest:
    base: dict[str, Any] = {"symbol": "BTCUSDT", "side": pb.SELL, "type": pb.LIMIT, "quantity": 2.0, "price": 100.0}
    return pb.CreateOrderRequest(**(base | fields))


class TestRequestToIntent:
    @pytest.mark.parametrize(
        ("wire_type", "wire_tif", "kind", "tif", "post_only"),
        [
            (pb.MARKET, pb.IOC, OrderType.MARKET, TimeInForce.IOC, False),
            (pb.LIMIT, pb.TIF_UNSPECIFIED, OrderType.LIMIT, TimeInForce.GTC, False),
            (pb.LIMIT, pb.FOK, OrderType.LIMIT, TimeInForce.FOK, False),
            (pb.LIMIT, pb.GTX, OrderType.LIMIT, TimeInForce.GTC, True),
            (pb.POST_ONLY, pb.GTC, OrderType.LIMIT, TimeInForce.GTC, True),
            (pb.STOP_MARKET, pb.GTC, OrderType.STOP, TimeInForce.GTC, False),
            (pb.STOP_LIMIT, pb.IOC, OrderType.STOP_LIMIT, TimeInForce.IOC, False),
        ],
    )
    def test_types_and_times_in_force_map_to_the_engines_and_come_back(
        self, wire_type: int, wire_tif: int, kind: OrderType, tif: TimeInForce, post_only: bool
    ) -> None:
        """Each wire type/TIF becomes the engine's; the order reports them as sent (TIF_UNSPECIFIED as GTC)."""
        sent = request(type=wire_type, time_in_force=wire_tif, stop_price=90.0, user_id="u7", reduce_only=True)
        intent = request_to_intent(sent, "c1", NOON)
        assert (intent.order_type, intent.time_in_force, intent.side, intent.strategy) == (kind, tif, Side.SELL, "u7")
        assert (is_post_only(intent), intent.reduce_only, intent.created_ns) == (post_only, True, NOON)
        order = service_order(OrderState(intent, OrderStatus.ACCEPTED, "V-1", updated_ns=NOON), fee_rate=0.0)
        assert (order.type, order.time_in_force) == (wire_type, pb.GTC if wire_tif == pb.TIF_UNSPECIFIED else wire_tif)
        assert (order.state, order.exchange_order_id, order.user_id, order.reduce_only) == (
            pb.SUBMITTED, "V-1", "u7", True,
        )  # fmt: skip

    def test_a_field_that_cannot_be_read_is_named(self) -> None:
        with pytest.raises(WireError) as raised:
            request_to_intent(request(side=pb.SIDE_UNSPECIFIED), "c1", NOON)
        assert (raised.value.field, raised.value.reason) == ("side", "required: BUY or SELL, got SIDE_UNSPECIFIED")


class TestOrders:
    def test_states_fee_and_times(self) -> None:
        """Partly filled 1 of 2 at 100 with fee rate 0.001: PARTIALLY_FILLED, fee 0.1 USDT; times in seconds."""
        intent = request_to_intent(request(), "c1", NOON)
        state = OrderState(intent, OrderStatus.PARTIALLY_FILLED, "V-1", 1.0, 100.0, updated_ns=NOON + 3 * SECOND)
        message = order_pb(service_order(state, fee_rate=0.001))
        assert (message.state, message.filled_quantity, message.fee, message.fee_asset) == (
            pb.PARTIALLY_FILLED, 1.0, pytest.approx(0.1), "USDT",
        )  # fmt: skip
        assert (message.created_at, message.updated_at) == (NOON // SECOND, NOON // SECOND + 3)

    @pytest.mark.parametrize(
        ("status", "wire"),
        [(OrderStatus.CANCELLED, pb.CANCELED), (OrderStatus.REJECTED, pb.REJECTED), (OrderStatus.FILLED, pb.FILLED)],
    )
    def test_terminal_states(self, status: OrderStatus, wire: int) -> None:
        intent = request_to_intent(request(), "c1", NOON)
        order = service_order(OrderState(intent, status, "V-1"), fee_rate=0.0)
        assert (order.state, order.exchange_order_id) == (wire, "" if status is OrderStatus.REJECTED else "V-1")

    def test_json_leaves_out_the_empty_optional_keys(self) -> None:
        """client_order_id, exchange_order_id, price and stop_price are omitted when empty; enums are names."""
        sent = pb.CreateOrderRequest(symbol="BTCUSDT", side=pb.BUY, type=pb.MARKET)
        order = rejected_order(sent, "", "R1", NOON, "side: x")
        body = update_json(ServiceUpdate(order, "REJECTED", NOON))
        assert set(body["order"]) >= {"order_id", "side", "type", "state", "time_in_force", "fee_asset", "user_id"}
        assert not {"client_order_id", "exchange_order_id", "price", "stop_price"} & set(body["order"])
        assert (body["order"]["side"], body["order"]["state"], body["timestamp"]) == (
            "BUY", "REJECTED", "2024-03-01T12:00:00.000000000Z",
        )  # fmt: skip


class TestTakesLiquidity:
    @pytest.mark.parametrize(
        ("side", "price", "touch", "takes"),
        [
            (Side.BUY, 101.0, 101.0, True), (Side.BUY, 100.99, 101.0, False), (Side.SELL, 99.0, 99.0, True),
            (Side.SELL, 99.01, 99.0, False), (Side.BUY, 1e9, None, False),
        ],
    )  # fmt: skip
    def test_a_limit_at_or_through_the_touch_takes_it(
        self, side: Side, price: float, touch: float | None, takes: bool
    ) -> None:
        assert takes_liquidity(side, price, touch) is takes

    def test_the_touch_is_the_live_quotes_best_level(self) -> None:
        """No market: None; a tick: its ask/bid; a book: its best levels; a trade beside a quote changes nothing."""
        engine = MatchingEngine(clock=ManualClocks())
        assert engine.touch("BTCUSDT", Side.BUY) is None
        engine.on_market(
            Tick(symbol="BTCUSDT", timestamp_ns=NOON, bid_price=99.0, bid_size=1.0, ask_price=101.0, ask_size=1.0)
        )
        assert (engine.touch("BTCUSDT", Side.BUY), engine.touch("BTCUSDT", Side.SELL)) == (101.0, 99.0)
        engine.on_market(
            Book(
                symbol="BTCUSDT", timestamp_ns=NOON, bids=((98.0, 1.0), (97.0, 1.0)), asks=((100.5, 1.0), (102.0, 1.0))
            )
        )
        assert (engine.touch("BTCUSDT", Side.BUY), engine.touch("BTCUSDT", Side.SELL)) == (100.5, 98.0)
        engine.on_market(Trade(symbol="BTCUSDT", timestamp_ns=NOON, last_price=150.0, volume=1.0))
        assert engine.touch("BTCUSDT", Side.BUY) == 100.5

"""host.orders.order_update: an order's state as its strategy is told of it."""

from __future__ import annotations

import pytest

from host.orders import OrderIntent, OrderState, OrderStatus, order_update, told_on_transition
from sdk.events import OrderUpdateStatus, Side, Signal

NOW = 1_700_000_000_000_000_000


def state(status: OrderStatus, filled: float = 0.0, reason: str = "", updated_ns: int = NOW - 5) -> OrderState:
    signal = Signal(symbol="BTCUSDT", side=Side.SELL, quantity=2.0, slot="ask", client_order_id="ask-1")
    intent = OrderIntent.from_signal("mm", signal, 0)
    return OrderState(intent, status, filled_quantity=filled, average_price=100.0 if filled else 0.0,
                      reason=reason, updated_ns=updated_ns)  # fmt: skip


class TestOrderUpdate:
    @pytest.mark.parametrize("status", [OrderStatus.PENDING_NEW, OrderStatus.SENT])
    def test_the_hosts_own_steps_are_not_told(self, status: OrderStatus) -> None:
        """Journaled or on its way, an order has nothing to tell its strategy yet."""
        assert order_update(state(status), NOW) is None

    def test_the_update_names_the_order_as_its_signal_did(self) -> None:
        """Id, strategy, symbol, side, slot and quantity are the intent's, so the signal's."""
        update = order_update(state(OrderStatus.ACCEPTED), NOW)
        assert update is not None
        assert (update.client_order_id, update.strategy, update.symbol, update.side, update.slot, update.quantity) == (
            "ask-1", "mm", "BTCUSDT", Side.SELL, "ask", 2.0,
        )  # fmt: skip
        assert (update.status, update.remaining_quantity, update.timestamp_ns) == (
            OrderUpdateStatus.ACCEPTED,
            2.0,
            NOW - 5,
        )

    def test_a_fill_while_a_cancel_is_pending_is_partial_progress(self) -> None:
        """cancel_pending is the host's step: to the strategy its order is partially filled."""
        update = order_update(state(OrderStatus.CANCEL_PENDING, filled=0.5), NOW)
        assert update is not None
        assert (update.status, update.filled_quantity, update.remaining_quantity) == (
            OrderUpdateStatus.PARTIALLY_FILLED, 0.5, 1.5,
        )  # fmt: skip

    def test_nothing_remains_of_an_order_that_is_done(self) -> None:
        """A cancelled order that filled in part has its fills, and nothing left working."""
        update = order_update(state(OrderStatus.CANCELLED, filled=0.5), NOW)
        assert update is not None and (update.filled_quantity, update.remaining_quantity) == (0.5, 0.0)

    def test_rule_goes_with_a_rejection_only(self) -> None:
        """A rule given for anything but a rejection is dropped: "" says 'not a rejection'."""
        rejected = order_update(state(OrderStatus.REJECTED), NOW, rule="max_position_size", reason="too big")
        accepted = order_update(state(OrderStatus.ACCEPTED), NOW, rule="max_position_size")
        assert rejected is not None and (rejected.rule, rejected.reason) == ("max_position_size", "too big")
        assert accepted is not None and (accepted.rule, accepted.reason) == ("", "")

    @pytest.mark.parametrize("status", [OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED])
    def test_an_ending_without_a_reason_given_carries_the_orders_own(self, status: OrderStatus) -> None:
        """The venue's message (or the host's cause) stored on the order is the reason told."""
        update = order_update(state(status, reason="venue says no"), NOW)
        assert update is not None and update.reason == "venue says no"

    def test_a_state_never_stamped_is_told_now(self) -> None:
        """A state built for a refused signal without a time takes the caller's now."""
        update = order_update(state(OrderStatus.REJECTED, updated_ns=0), NOW)
        assert update is not None and update.timestamp_ns == NOW

    @pytest.mark.parametrize(
        ("before", "after", "told"),
        [
            (OrderStatus.SENT, OrderStatus.ACCEPTED, True),
            (OrderStatus.PENDING_NEW, OrderStatus.ACCEPTED, True),
            (OrderStatus.PARTIALLY_FILLED, OrderStatus.ACCEPTED, False),
            (OrderStatus.CANCEL_PENDING, OrderStatus.ACCEPTED, False),
            (OrderStatus.ACCEPTED, OrderStatus.ACCEPTED, False),
            (OrderStatus.CANCEL_PENDING, OrderStatus.CANCELLED, True),
            (OrderStatus.SENT, OrderStatus.REJECTED, True),
            (OrderStatus.PENDING_NEW, OrderStatus.EXPIRED, True),
            (OrderStatus.CANCELLED, OrderStatus.CANCELLED, False),
            (OrderStatus.SENT, OrderStatus.FILLED, False),
            (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, False),
            (OrderStatus.ACCEPTED, OrderStatus.CANCEL_PENDING, False),
            (OrderStatus.PENDING_NEW, OrderStatus.SENT, False),
        ],
    )
    def test_which_moves_are_news(self, before: OrderStatus, after: OrderStatus, told: bool) -> None:
        """Accepted once, every ending once; fill progress is the fills' to tell, the host's steps nobody's."""
        assert told_on_transition(before, after) is told

"""What a strategy is told about its order: an ``OrderState`` as the SDK's ``OrderUpdate``.

Model. Pure: ``order_update(state, ...)`` maps the host's lifecycle onto the statuses a strategy
hears of, and the execution engine decides when to call it and delivers the result. A strategy is
told ``accepted``, ``partially_filled``, ``filled``, ``cancelled``, ``expired`` and ``rejected``,
never the host's own steps (``pending_new``, ``sent``, ``cancel_pending``). ``told_on_transition``
says which ledger moves are told: into ``accepted`` once (from ``pending_new`` or ``sent``; a reply
that moves an order back to it tells nothing new) and into ``cancelled``, ``expired`` or
``rejected``. Fill progress is told by the fill that made it, so an order in ``cancel_pending``
that a fill reached is ``partially_filled`` for its strategy.
``remaining_quantity`` is what may still fill: 0 once the update says the order is done. ``rule``
is kept for rejections only; ``reason`` defaults to the order's own for a rejection, cancellation
or expiry (the venue's message, the cancel's cause) and is "" otherwise.
"""

from __future__ import annotations

from host.orders._model import OrderState, OrderStatus
from sdk.events import OrderUpdate, OrderUpdateStatus

__all__ = ["order_update", "told_on_transition"]

_TOLD = {
    OrderStatus.ACCEPTED: OrderUpdateStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: OrderUpdateStatus.PARTIALLY_FILLED,
    OrderStatus.CANCEL_PENDING: OrderUpdateStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED: OrderUpdateStatus.FILLED,
    OrderStatus.CANCELLED: OrderUpdateStatus.CANCELLED,
    OrderStatus.EXPIRED: OrderUpdateStatus.EXPIRED,
    OrderStatus.REJECTED: OrderUpdateStatus.REJECTED,
}
_ENDINGS = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
_UNTOLD = frozenset({OrderStatus.PENDING_NEW, OrderStatus.SENT})  # nothing told of the order yet
_WITH_REASON = frozenset({OrderUpdateStatus.REJECTED, OrderUpdateStatus.CANCELLED, OrderUpdateStatus.EXPIRED})


def told_on_transition(before: OrderStatus, after: OrderStatus) -> bool:
    """Whether the ledger moving an order from ``before`` to ``after`` is news for its strategy."""
    if after is before:
        return False
    if after is OrderStatus.ACCEPTED:
        return before in _UNTOLD
    return after in _ENDINGS


def order_update(state: OrderState, now_ns: int, *, rule: str = "", reason: str = "") -> OrderUpdate | None:
    """The update ``state`` means for its strategy, stamped ``state.updated_ns`` (else ``now_ns``);
    None for a status a strategy is not told of."""
    status = _TOLD.get(state.status)
    if status is None:
        return None
    intent = state.intent
    return OrderUpdate(
        client_order_id=intent.client_order_id, strategy=intent.strategy, symbol=intent.symbol, side=intent.side,
        slot=intent.slot, status=status, quantity=intent.quantity, filled_quantity=state.filled_quantity,
        remaining_quantity=0.0 if status.done else state.remaining, average_price=state.average_price,
        reason=(reason or state.reason) if status in _WITH_REASON else "",
        rule=rule if status is OrderUpdateStatus.REJECTED else "", timestamp_ns=state.updated_ns or now_ns,
    )  # fmt: skip

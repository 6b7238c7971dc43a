"""The order model every part of the host shares: intents, their lifecycle, and the working-order book.

Layering. This package sits below risk, execution and the ledger and imports nothing from the
host (only ``sdk.events``), so each of them can depend on it without depending on the others:
risk reads working orders without importing execution, and the ledger journals ``OrderState``s
without importing either.

- ``OrderIntent``, ``OrderState``, ``OrderStatus``, ``TERMINAL``, ``WORKING``,
  ``new_client_order_id``: one order and its lifecycle (``_model``).
- ``WorkingOrders``, ``Exposure``, ``exposure_of``, ``scan``: the orders that may still fill and
  their remaining quantity summed by symbol and side, which the execution engine's book keeps and
  risk reads (``_working``).
- ``order_update``, ``told_on_transition``: an order's state as its strategy is told of it, the
  SDK's ``OrderUpdate``, and which moves are told (``_updates``).
"""

from __future__ import annotations

from host.orders._model import TERMINAL, WORKING, OrderIntent, OrderState, OrderStatus, new_client_order_id
from host.orders._updates import order_update, told_on_transition
from host.orders._working import Exposure, WorkingOrders, exposure_of, scan

__all__ = [
    "OrderIntent",
    "OrderState",
    "OrderStatus",
    "TERMINAL",
    "WORKING",
    "new_client_order_id",
    "WorkingOrders",
    "Exposure",
    "exposure_of",
    "scan",
    "order_update",
    "told_on_transition",
]

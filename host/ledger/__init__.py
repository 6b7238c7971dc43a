"""The host's durable books: orders journal, fills, positions, P&L, equity peak, snapshots, key/values."""

from host.ledger._rows import OrderEvent, utc_day
from host.ledger.errors import DuplicateOrder, IllegalTransition, LedgerError, UnknownOrder
from host.ledger.ledger import Ledger

__all__ = ["Ledger", "OrderEvent", "utc_day", "LedgerError", "DuplicateOrder", "IllegalTransition", "UnknownOrder"]

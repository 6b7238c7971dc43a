"""Errors the ledger raises. Every one names the ledger operation, so a caller can log it and fail closed.

``LedgerError`` itself, raised from an sqlite error, means storage failed (disk full, I/O error, a
locked or corrupt file): the ledger's ``healthy`` turns False until a later write succeeds. The
subclasses reject one request and say nothing about storage: the ledger stays healthy.
"""

from __future__ import annotations

from host.errors import EngineError

__all__ = ["DuplicateOrder", "IllegalTransition", "LedgerError", "UnknownOrder"]


class LedgerError(EngineError):
    """A ledger operation failed; nothing of it was written (each operation is one transaction).

    ``sqlite_error`` is sqlite's error name (``SQLITE_FULL``, ``SQLITE_IOERR_FSYNC``, ...) when the
    cause was a storage error, else ``""``.
    """

    def __init__(self, operation: str, reason: str, sqlite_error: str = "") -> None:
        self.operation = operation
        self.reason = reason
        self.sqlite_error = sqlite_error
        super().__init__(f"ledger {operation}: {reason}")


class DuplicateOrder(LedgerError):
    """A client order id was journaled twice: one decision is one order, sent under one id."""

    def __init__(self, client_order_id: str) -> None:
        self.client_order_id = client_order_id
        super().__init__(
            "journal",
            f"client order id {client_order_id!r} is already journaled; "
            "a retry or a reconciliation must reuse the journaled order, not journal it again",
        )


class UnknownOrder(LedgerError):
    """The operation names a client order id that was never journaled."""

    def __init__(self, operation: str, client_order_id: str) -> None:
        self.client_order_id = client_order_id
        super().__init__(operation, f"no journaled order with client order id {client_order_id!r}")


class IllegalTransition(LedgerError):
    """An order in a terminal state was asked to become something else."""

    def __init__(self, client_order_id: str, from_status: str, to_status: str) -> None:
        self.client_order_id = client_order_id
        self.from_status = from_status
        self.to_status = to_status
        super().__init__(
            "transition",
            f"order {client_order_id!r} is {from_status} (terminal) and cannot become {to_status}",
        )

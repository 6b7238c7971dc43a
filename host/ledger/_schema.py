"""The ledger's tables and their migrations, applied in one transaction when a ledger is opened.

``MIGRATIONS[n]`` takes a database from schema version ``n`` to ``n + 1``; version 0 is an empty
file. The current version is the single row of ``schema_version``. A migration is a list of
statements run inside the opening transaction (sqlite DDL is transactional), so a crash in the
middle of one leaves the previous version intact. Never edit a released migration: append one.
"""

from __future__ import annotations

import sqlite3

__all__ = ["SCHEMA_VERSION", "file_version", "migrate"]

_V1 = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version (version) VALUES (0)",
    # The orders journal: one row per client order id, its intent and its latest known state.
    """CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        order_type TEXT NOT NULL,
        quantity REAL NOT NULL,
        price REAL,
        stop_price REAL,
        time_in_force TEXT NOT NULL,
        max_slippage REAL,
        priority INTEGER NOT NULL,
        metadata TEXT NOT NULL,
        slot TEXT NOT NULL,
        reduce_only INTEGER NOT NULL,
        created_ns INTEGER NOT NULL,
        status TEXT NOT NULL,
        venue_order_id TEXT NOT NULL,
        filled_quantity REAL NOT NULL,
        average_price REAL NOT NULL,
        reason TEXT NOT NULL,
        updated_ns INTEGER NOT NULL
    )""",
    "CREATE INDEX orders_by_status ON orders (status, strategy)",
    "CREATE INDEX orders_by_venue_id ON orders (venue_order_id) WHERE venue_order_id != ''",
    # The audit trail: every state an order went through, in order (seq), with what moved it.
    """CREATE TABLE order_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
        timestamp_ns INTEGER NOT NULL,
        from_status TEXT,
        status TEXT NOT NULL,
        venue_order_id TEXT NOT NULL,
        filled_quantity REAL NOT NULL,
        average_price REAL NOT NULL,
        reason TEXT NOT NULL,
        fill_id TEXT
    )""",
    "CREATE INDEX order_events_by_order ON order_events (client_order_id, seq)",
    # Fills, stored once: the primary key is what de-duplicates a redelivered fill.
    """CREATE TABLE fills (
        fill_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        client_order_id TEXT,
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        price REAL NOT NULL,
        quantity REAL NOT NULL,
        fee REAL NOT NULL,
        timestamp_ns INTEGER NOT NULL,
        recorded_ns INTEGER NOT NULL
    )""",
    "CREATE INDEX fills_by_order ON fills (client_order_id) WHERE client_order_id IS NOT NULL",
    """CREATE TABLE positions (
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        quantity REAL NOT NULL,
        avg_entry_price REAL NOT NULL,
        realized_pnl REAL NOT NULL,
        fees REAL NOT NULL,
        last_price REAL NOT NULL,
        updated_ns INTEGER NOT NULL,
        PRIMARY KEY (strategy, symbol)
    ) WITHOUT ROWID""",
    """CREATE TABLE daily_pnl (
        strategy TEXT NOT NULL,
        day TEXT NOT NULL,
        realized REAL NOT NULL,
        fees REAL NOT NULL,
        fills INTEGER NOT NULL,
        PRIMARY KEY (strategy, day)
    ) WITHOUT ROWID""",
    """CREATE TABLE equity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last REAL NOT NULL,
        last_ns INTEGER NOT NULL,
        peak REAL NOT NULL,
        peak_ns INTEGER NOT NULL
    )""",
    """CREATE TABLE snapshots (
        strategy TEXT PRIMARY KEY,
        state BLOB NOT NULL,
        saved_ns INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)

# ``fills.reconciled``: 0 a venue's fill report, 1 recovered from the venue's order state after the
# reports were lost, 2 derived from order state a venue reports instead of fills (order.OrderService)
# (``Ledger.record_missing_fill``). A fill report that arrives later for quantity a derived fill
# already counted stores that quantity as ``covered``: kept for the record, not applied twice.
_V2 = (
    "ALTER TABLE fills ADD COLUMN reconciled INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE fills ADD COLUMN covered REAL NOT NULL DEFAULT 0",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)


def file_version(db: sqlite3.Connection) -> int:
    """The schema version of the open file: 0 for a new (empty) file."""
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if found is None:
        return 0
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0])


def migrate(db: sqlite3.Connection, version: int) -> None:
    """Apply every migration after ``version``; the caller holds the write transaction."""
    for statements in MIGRATIONS[version:]:
        for statement in statements:
            db.execute(statement)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

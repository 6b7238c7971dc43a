"""Ledger retention: finished history older than a cutoff leaves the hot tables; positions and P&L stay.

What goes (``compact``). Terminal orders (filled, cancelled, rejected, expired) whose last change
(``orders.updated_ns``) is before the cutoff, with their whole audit trail (``order_events``) and
their fills; and fills tied to no order (``client_order_id`` NULL: the account monitor's, or of an
order never journaled) whose own time is before the cutoff, unless a working order may still claim
them (one names their order id, or one has no venue id yet). What stays, always: every working
order with all it has (an order counts by its state, never its age), ``positions``, ``daily_pnl``,
``equity``, ``snapshots`` and ``kv``. Positions and daily P&L are stored aggregates, updated in the
same transaction as each fill (``host.ledger.ledger``) and never recomputed from the fills, so the
fills they were built from can go: positions and P&L read the same before and after. No table's
schema changes; the retention horizon is a ``kv`` value.

Fills stay de-duplicated. The fills table is what refuses a fill delivered twice; once a fill has
gone, a redelivery (a JetStream consumer re-created with DeliverPolicy.ALL replays its stream)
could be booked again. So compaction keeps a horizon in ``kv`` (``RETENTION_HORIZON_KEY``: the
latest cutoff, or the latest time of a fill it removed if later), and ``Ledger.record_fill``
takes a fill that names no order the ledger holds and is older than the horizon as already
recorded. A fill of an order still in the ledger is checked against the fills table as always
(its fills never went: an order goes with its fills, in one transaction).

Archive (``archive=FILE``). The rows are copied into another sqlite file first: the same three
tables, created from the ledger's own ``CREATE TABLE`` statements (so with the same primary keys);
columns the ledger has gained since an archive was made are added to it. Crash-safe order, per chunk: (1) copy into the
archive and commit it (fsync); (2) delete from the ledger and commit. A crash between the two leaves
the rows in both, and the next run copies them again over themselves (``INSERT OR REPLACE``), so
nothing is lost and nothing doubles. An order whose row changed between (1) and (2) (a late fill)
is left for the next run.

Work in small steps. ``Retention.step`` handles one range of ``span`` rows by rowid (orders first,
then fills) in one short write transaction on its own connection, so an engine writing the same
file (another process, or this one between steps) waits at most one step; ``compact`` runs every
step, ``compact_async`` yields to the event loop between steps, and ``retain`` runs it once at
start and then every ``every_s`` (a day) for an engine with ``engine.ledgerRetentionDays`` set.
sqlite reuses the pages freed for new rows, so the file stops growing; it only shrinks after
``VACUUM`` (``vacuum=True``, which needs the file to itself for as long as it takes).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from host.clock import WallClock
from host.ledger.errors import LedgerError
from host.ledger.ledger import RETENTION_HORIZON_KEY, Ledger
from host.orders import TERMINAL, WORKING

__all__ = ["NS_PER_DAY", "Retention", "RetentionReport", "compact", "compact_async", "retain"]

log = structlog.get_logger("host.ledger.retention")

NS_PER_DAY = 86_400 * 1_000_000_000
TABLES = ("orders", "order_events", "fills")
_TERMINAL = tuple(sorted(status.value for status in TERMINAL))
_WORKING = tuple(sorted(status.value for status in WORKING))


def _marks(values: tuple[object, ...] | list[str]) -> str:
    return ", ".join("?" * len(values))


_OLD_ORDERS = (
    f"SELECT client_order_id, updated_ns FROM orders WHERE rowid > ? AND rowid <= ? "
    f"AND status IN ({_marks(_TERMINAL)}) AND updated_ns < ?"
)
# A fill of no order, before the cutoff, that no working order may still claim: one naming no order at
# all, or naming an id no working order has while every working order has its venue id (a fill that
# beat its order's reply is linked when the reply names the venue id: until then nobody can tell).
_LOOSE_FILLS = (
    f"SELECT fill_id FROM fills WHERE rowid > ? AND rowid <= ? AND client_order_id IS NULL AND timestamp_ns < ? "
    f"AND (order_id = '' OR (NOT EXISTS (SELECT 1 FROM orders o WHERE o.client_order_id = fills.order_id "
    f"AND o.status IN ({_marks(_WORKING)})) AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.status IN "
    f"({_marks(_WORKING)}) AND (o.venue_order_id = fills.order_id OR o.venue_order_id = ''))))"
)


@dataclass
class RetentionReport:
    """What one compaction removed from the ledger (and copied to ``archive``, when one was named)."""

    path: Path
    before_ns: int
    archive: Path | None = None
    orders: int = 0
    order_events: int = 0
    fills: int = 0
    horizon_ns: int = 0
    seconds: float = 0.0
    vacuumed: bool = False

    @property
    def before(self) -> str:
        return datetime.fromtimestamp(self.before_ns / 1e9, tz=UTC).isoformat()

    def line(self) -> str:
        """One sentence for the operator."""
        where = f" (copied to {self.archive} first)" if self.archive else ""
        return (
            f"ledger {self.path}: removed {self.orders} finished orders, {self.order_events} order events and "
            f"{self.fills} fills last changed before {self.before}{where}; working orders, positions and daily "
            f"P&L are unchanged"
        )


class Retention:
    """One compaction of one ledger file, a step at a time. Build with ``Retention.open``; ``close`` after."""

    def __init__(self, db: sqlite3.Connection, report: RetentionReport, span: int) -> None:
        self._db = db
        self.report = report
        self._span = span
        self._tables = [("orders", 0), ("fills", 0)]  # (table walked, last rowid done)
        self._ends = {table: _max_rowid(db, table) for table, _ in self._tables}

    @classmethod
    def open(
        cls, path: Path, before_ns: int, *, archive: Path | None = None, span: int = 2000, busy_timeout_s: float = 5.0
    ) -> Retention:
        """Check ``path`` is a ledger this engine can read (migrating it as ``Ledger.open`` does), then
        open a connection of its own (and the archive, created when missing)."""
        if not path.is_file():
            raise LedgerError("retention", f"{path}: no such ledger file")
        if archive is not None and archive.resolve() == path.resolve():
            raise LedgerError("retention", f"{archive}: the archive must be another file than the ledger")
        Ledger.open(path, busy_timeout_s=busy_timeout_s).close()
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
        except sqlite3.Error as exc:
            raise _failed("retention", path, exc) from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            if archive is not None:
                _attach(db, archive)
            return cls(db, RetentionReport(path, before_ns, archive, horizon_ns=_horizon(db)), span)
        except sqlite3.Error as exc:
            db.close()
            raise _failed("retention", path, exc) from exc

    def close(self) -> None:
        self._db.close()

    def step(self) -> bool:
        """Handle the next range of rows; False once every range is done."""
        while self._tables:
            table, last = self._tables[0]
            if last >= self._ends[table]:
                self._tables.pop(0)
                continue
            upto = last + self._span
            try:
                self._range(table, last, upto)
            except sqlite3.Error as exc:
                raise _failed("retention", self.report.path, exc) from exc
            self._tables[0] = (table, upto)
            return True
        return False

    def vacuum(self) -> None:
        """Give the freed pages back to the file system (needs the file to itself while it runs)."""
        try:
            self._db.execute("VACUUM main")
        except sqlite3.Error as exc:
            raise _failed("vacuum", self.report.path, exc) from exc
        self.report.vacuumed = True

    # --- one range ------------------------------------------------------------------------------

    def _range(self, table: str, last: int, upto: int) -> None:
        before = self.report.before_ns
        if table == "orders":
            self._orders((_OLD_ORDERS, (last, upto, *_TERMINAL, before)))
        else:
            self._loose_fills((_LOOSE_FILLS, (last, upto, before, *_WORKING, *_WORKING)))

    def _orders(self, query: tuple[str, tuple[object, ...]]) -> None:
        archived: dict[str, int] = {}
        if self.report.archive is not None:
            with self._write():
                archived = dict(self._db.execute(*query).fetchall())
                self._copy(TABLES, "client_order_id", list(archived))
            if not archived:
                return
        with self._write():
            # Chosen again inside the deleting transaction: an order that changed since it was copied
            # (a late fill) stays for the next run.
            ids = self._unchanged(archived) if self.report.archive is not None else self._ids(query)
            if not ids:
                return
            marks = _marks(ids)
            latest = self._db.execute(
                f"SELECT max(timestamp_ns) FROM fills WHERE client_order_id IN ({marks})", ids
            ).fetchone()[0]
            report = self.report
            report.order_events += self._delete(f"DELETE FROM order_events WHERE client_order_id IN ({marks})", ids)
            report.fills += self._delete(f"DELETE FROM fills WHERE client_order_id IN ({marks})", ids)
            report.orders += self._delete(f"DELETE FROM orders WHERE client_order_id IN ({marks})", ids)
            self._raise_horizon(latest)

    def _loose_fills(self, query: tuple[str, tuple[object, ...]]) -> None:
        if self.report.archive is not None:
            with self._write():
                copied = self._ids(query)
                self._copy(("fills",), "fill_id", copied)
            if not copied:
                return
        with self._write():
            fill_ids = self._ids(query)  # a fill linked to its order since it was copied stays with it
            if not fill_ids:
                return
            where = f"fill_id IN ({_marks(fill_ids)})"
            latest = self._db.execute(f"SELECT max(timestamp_ns) FROM fills WHERE {where}", fill_ids).fetchone()[0]
            self.report.fills += self._delete(f"DELETE FROM fills WHERE {where}", fill_ids)
            self._raise_horizon(latest)

    def _ids(self, query: tuple[str, tuple[object, ...]]) -> list[str]:
        return [str(row[0]) for row in self._db.execute(*query)]

    def _unchanged(self, archived: dict[str, int]) -> list[str]:
        """Of the orders just archived, those whose row has not changed since (still terminal, same time)."""
        ids = list(archived)
        rows = self._db.execute(
            f"SELECT client_order_id, updated_ns FROM orders WHERE client_order_id IN ({_marks(ids)}) "
            f"AND status IN ({_marks(_TERMINAL)})",
            (*ids, *_TERMINAL),
        )
        return [cid for cid, updated in rows if archived.get(cid) == updated]

    def _copy(self, tables: tuple[str, ...], key: str, ids: list[str]) -> None:
        """Copy the rows whose ``key`` is one of ``ids`` into the archive (committed before any delete)."""
        for table in tables:
            names = ", ".join(_columns(self._db, "main", table))
            self._db.execute(
                f"INSERT OR REPLACE INTO archive.{table} ({names}) SELECT {names} FROM main.{table} "
                f"WHERE {key} IN ({_marks(ids)})",
                ids,
            )

    def _delete(self, sql: str, params: list[str]) -> int:
        return int(self._db.execute(sql, params).rowcount)

    def _raise_horizon(self, latest_fill_ns: int | None) -> None:
        horizon = max(self.report.horizon_ns, self.report.before_ns, latest_fill_ns or 0)
        if horizon != self.report.horizon_ns:
            self._db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (RETENTION_HORIZON_KEY, str(horizon)),
            )
            self.report.horizon_ns = horizon

    def _write(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` when the block raises)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self._db.execute("COMMIT")
            return
        # sqlite may have ended the transaction itself (SQLITE_FULL): the error that did is the one raised
        with suppress(sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")


def _failed(operation: str, path: Path, exc: sqlite3.Error) -> LedgerError:
    return LedgerError(operation, f"{path}: {exc}", getattr(exc, "sqlite_errorname", "") or "")


def _max_rowid(db: sqlite3.Connection, table: str) -> int:
    return int(db.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])


def _horizon(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM kv WHERE key = ?", (RETENTION_HORIZON_KEY,)).fetchone()
    return int(row[0]) if row is not None else 0


def _columns(db: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA {schema}.table_info({table})")]


def _attach(db: sqlite3.Connection, archive: Path) -> None:
    """Attach the archive, creating its tables from the ledger's own statements and adding any column
    the ledger has that an older archive lacks."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    db.execute("ATTACH DATABASE ? AS archive", (str(archive),))
    db.execute("PRAGMA archive.synchronous = FULL")
    for table in TABLES:
        (sql,) = db.execute("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        if not _columns(db, "archive", table):
            db.execute(sql.replace(f"CREATE TABLE {table}", f"CREATE TABLE archive.{table}", 1))
        have = set(_columns(db, "archive", table))
        for row in db.execute(f"PRAGMA main.table_info({table})").fetchall():
            if row[1] not in have:
                db.execute(f"ALTER TABLE archive.{table} ADD COLUMN {row[1]} {row[2]}")


def compact(
    path: Path, before_ns: int, *, archive: Path | None = None, vacuum: bool = False, span: int = 2000
) -> RetentionReport:
    """Remove (after copying to ``archive``, when named) the finished history before ``before_ns``."""
    started = time.monotonic()
    retention = Retention.open(path, before_ns, archive=archive, span=span)
    try:
        while retention.step():
            pass
        if vacuum:
            retention.vacuum()
    finally:
        retention.close()
    retention.report.seconds = time.monotonic() - started
    return retention.report


async def compact_async(path: Path, before_ns: int, *, span: int = 2000) -> RetentionReport:
    """``compact`` on the event loop: one short step at a time, yielding to the loop between them (and
    waiting for another writer no longer than the ledger itself does)."""
    started = time.monotonic()
    retention = Retention.open(path, before_ns, span=span, busy_timeout_s=2.0)
    try:
        while retention.step():  # noqa: ASYNC110  (sleep(0) yields to the loop between steps; waits on nothing)
            await asyncio.sleep(0)
    finally:
        retention.close()
    retention.report.seconds = time.monotonic() - started
    return retention.report


async def retain(path: Path, days: int, clock: WallClock, *, every_s: float = 86_400.0) -> None:
    """Keep ``days`` of finished history in the ledger: compact at once, then every ``every_s``, until
    cancelled. A compaction that fails is logged and tried again at the next turn."""
    while True:
        before_ns = clock.now_ns() - days * NS_PER_DAY
        try:
            report = await compact_async(path, before_ns)
        except LedgerError as err:
            log.error("ledger_retention_failed", path=str(path), reason=str(err))
        else:
            log.info(
                "ledger_compacted", path=str(path), before=report.before, orders=report.orders,
                order_events=report.order_events, fills=report.fills, seconds=round(report.seconds, 3),
            )  # fmt: skip
        await asyncio.sleep(every_s)

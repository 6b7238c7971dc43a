"""The ledger: the host's durable record of orders, fills, positions, P&L and strategy state.

Storage. One sqlite file (stdlib ``sqlite3``) in WAL mode, opened through ``Ledger.open``, which
creates or migrates the schema in one transaction (``schema_version``; a file written by a newer
engine is refused, not guessed at).

Threading. One connection, used only from the thread that opened it (the event loop thread;
sqlite3's ``check_same_thread`` enforces it). Every method is synchronous and short: one
transaction, a few indexed statements, no network. ``busy_timeout`` only matters when another
process (an operator's sqlite shell, a report) holds the write lock; it bounds how long a write
waits for it before failing.

Transactions. Each write method is exactly one ``BEGIN IMMEDIATE ... COMMIT``: a fill, its position
update, its daily P&L and its order update commit together or not at all; an order row and its
first ``order_events`` row likewise. A failed write rolls back and raises ``LedgerError`` naming
the operation, so the caller can fail closed (not send the order, stop trading).

Durability. ``synchronous=FULL``: every commit fsyncs the WAL before returning. In WAL mode
``NORMAL`` would survive a crash of this process but could lose the last commits on power loss or
an OS crash, and the orders journal exists for exactly that case: an order is journaled *before*
it is sent, so after any restart the host must find every order that may be live at the venue
(``working_orders``) and reconcile it, never send it again under a new id. The price is one fsync
per write (see ``bench/bench_ledger.py``); callers should sample ``record_equity`` rather than call
it per tick.

What survives a crash (SIGKILL, power loss after a commit returned): every journaled order with its
full audit trail, every recorded fill exactly once, and the positions, daily P&L, equity peak,
snapshots and key/values consistent with those fills. What does not: marks (the latest market
prices), which are in memory by design and come back with the next tick; until then unrealized
P&L uses the position's last fill price, as ``sdk._positions.PositionState`` does.

Failure. A storage error (disk full, I/O error, lock timeout) makes ``healthy`` False and sets
``last_error``; reads keep working, and the next write that commits makes the ledger healthy again.
Refusals (``DuplicateOrder``, ``UnknownOrder``, ``IllegalTransition``) reject one request and leave
the ledger healthy. Positions are computed with ``sdk._positions.PositionState.apply``: the one rule.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path

import structlog

from host.ledger import _rows as rows
from host.ledger._schema import SCHEMA_VERSION, file_version, migrate
from host.ledger.errors import DuplicateOrder, IllegalTransition, LedgerError, UnknownOrder
from host.orders import TERMINAL, WORKING, OrderIntent, OrderState, OrderStatus
from sdk._positions import PositionState
from sdk.events import Fill, Position

__all__ = ["RETENTION_HORIZON_KEY", "Ledger"]

log = structlog.get_logger("host.ledger")

_FILL_TOLERANCE = 1e-9  # relative: an order is FILLED once fills reach its quantity up to float rounding
# kv: fills older than this may have been removed by retention (host.ledger.retention); see record_fill
RETENTION_HORIZON_KEY = "ledger.retention.horizon_ns"
_WORKING = tuple(sorted(status.value for status in WORKING))
_SELECT_WORKING = f"SELECT {rows.ORDER_COLUMNS} FROM orders WHERE status IN ({', '.join('?' * len(_WORKING))})"
_INSERT_ORDER = f"INSERT INTO orders ({rows.ORDER_COLUMNS}) VALUES ({', '.join('?' * 21)})"
_UPDATE_ORDER = (
    "UPDATE orders SET status = ?, venue_order_id = ?, filled_quantity = ?, average_price = ?, reason = ?, "
    "updated_ns = ? WHERE client_order_id = ?"
)
_INSERT_EVENT = (
    "INSERT INTO order_events (client_order_id, timestamp_ns, from_status, status, venue_order_id, "
    "filled_quantity, average_price, reason, fill_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_FILL = (
    "INSERT INTO fills (fill_id, order_id, client_order_id, strategy, symbol, side, price, quantity, fee, "
    "timestamp_ns, recorded_ns, reconciled, covered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (fill_id) DO NOTHING"
)
_UPSERT_POSITION = (
    "INSERT INTO positions (strategy, symbol, quantity, avg_entry_price, realized_pnl, fees, last_price, updated_ns) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (strategy, symbol) DO UPDATE SET quantity = excluded.quantity, "
    "avg_entry_price = excluded.avg_entry_price, realized_pnl = excluded.realized_pnl, fees = excluded.fees, "
    "last_price = excluded.last_price, updated_ns = excluded.updated_ns"
)
_ADD_DAILY_PNL = (
    "INSERT INTO daily_pnl (strategy, day, realized, fees, fills) VALUES (?, ?, ?, ?, 1) "
    "ON CONFLICT (strategy, day) DO UPDATE SET realized = realized + excluded.realized, "
    "fees = fees + excluded.fees, fills = fills + 1"
)
_RECORD_EQUITY = (
    "INSERT INTO equity (id, last, last_ns, peak, peak_ns) VALUES (1, :value, :ns, :value, :ns) "
    "ON CONFLICT (id) DO UPDATE SET last = excluded.last, last_ns = excluded.last_ns, "
    "peak_ns = CASE WHEN excluded.peak > peak THEN excluded.peak_ns ELSE peak_ns END, "
    "peak = max(peak, excluded.peak) RETURNING peak"
)


class Ledger:
    """The durable books of one host. Build with ``Ledger.open(path)``; ``close()`` when done."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._marks: dict[str, float] = {}
        self.last_error: LedgerError | None = None

    # --- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, busy_timeout_s: float = 2.0, durable: bool = True) -> Ledger:
        """Open (creating if needed) the ledger at ``path`` and bring its schema up to date.

        ``durable=False`` (a backtest's scratch ledger, rebuilt from the data by running again) does
        not fsync its commits: ``synchronous=OFF``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError("open", f"{path}: {exc}", getattr(exc, "sqlite_errorname", "")) from exc
        ledger = cls(db, path)
        try:
            ledger._configure(busy_timeout_s, "FULL" if durable else "OFF")
        except BaseException:
            db.close()
            raise
        return ledger

    def _configure(self, busy_timeout_s: float, synchronous: str) -> None:
        db = self._db
        db.row_factory = sqlite3.Row
        try:
            db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            db.execute(f"PRAGMA synchronous = {synchronous}")
            db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise LedgerError("open", f"{self.path}: {exc}", exc.sqlite_errorname) from exc
        if mode != "wal":
            raise LedgerError("open", f"{self.path}: sqlite refused WAL mode (journal_mode is {mode})")
        with self._write("open") as tx:
            version = file_version(tx)
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    "open", f"{self.path}: schema version {version} is newer than this engine's {SCHEMA_VERSION}; "
                    "run the engine version that wrote it",
                )  # fmt: skip
            if version < SCHEMA_VERSION:
                migrate(tx, version)

    def close(self) -> None:
        """Close the connection (idempotent); every committed write is already on disk."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def healthy(self) -> bool:
        """False from a storage error until a later write commits: the host should fail closed meanwhile."""
        return self.last_error is None

    # --- transactions -----------------------------------------------------------------------

    @contextmanager
    def _write(self, operation: str) -> Iterator[sqlite3.Connection]:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._failed(operation, exc) from exc
        except BaseException:
            self._rollback()
            raise
        self.last_error = None

    @contextmanager
    def _read(self, operation: str) -> Iterator[sqlite3.Connection]:
        try:
            yield self._db
        except sqlite3.Error as exc:
            raise self._failed(operation, exc) from exc

    def _rollback(self) -> None:
        # sqlite may already have rolled back (SQLITE_FULL can end the transaction); a failing
        # ROLLBACK must not hide the error that caused it.
        with suppress(sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    def _failed(self, operation: str, exc: sqlite3.Error) -> LedgerError:
        name: str = getattr(exc, "sqlite_errorname", "") or ""
        error = LedgerError(operation, f"{exc} ({name or type(exc).__name__})", name)
        self.last_error = error
        log.error("ledger_operation_failed", operation=operation, sqlite_error=name, error=str(exc))
        return error

    # --- orders -----------------------------------------------------------------------------

    def journal(self, intent: OrderIntent, now_ns: int) -> OrderState:
        """Record a new order as PENDING_NEW, before it is sent. ``DuplicateOrder`` if its id was used."""
        _check_intent(intent)
        state = OrderState(intent, OrderStatus.PENDING_NEW, updated_ns=now_ns)
        with self._write("journal") as tx:
            try:
                tx.execute(_INSERT_ORDER, rows.order_row(state))
            except sqlite3.IntegrityError as exc:
                if exc.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise DuplicateOrder(intent.client_order_id) from exc
                raise
            tx.execute(_INSERT_EVENT, rows.event_row(state, None, "journaled", None))
        return state

    def transition(
        self,
        client_order_id: str,
        status: OrderStatus,
        now_ns: int,
        *,
        venue_order_id: str | None = None,
        filled_quantity: float | None = None,
        average_price: float | None = None,
        reason: str = "",
    ) -> OrderState:
        """Move an order to ``status`` (or update it in place when the status is unchanged).

        Fields left None keep their value; a non-empty ``reason`` replaces the order's. A terminal
        order may only be updated in place: ``IllegalTransition`` otherwise.
        """
        status = OrderStatus(status)
        with self._write("transition") as tx:
            current = _load_order(tx, client_order_id)
            if current is None:
                raise UnknownOrder("transition", client_order_id)
            if current.status in TERMINAL and status is not current.status:
                raise IllegalTransition(client_order_id, current.status.value, status.value)
            state = current.evolve(
                status=status,
                venue_order_id=current.venue_order_id if venue_order_id is None else venue_order_id,
                filled_quantity=current.filled_quantity if filled_quantity is None else filled_quantity,
                average_price=current.average_price if average_price is None else average_price,
                reason=reason or current.reason,
                updated_ns=now_ns,
            )
            if venue_order_id and venue_order_id != current.venue_order_id:
                state = _relink_fills(tx, state, venue_order_id)
            _update_order(tx, state, current.status, reason, None)
        return state

    def order(self, client_order_id: str) -> OrderState | None:
        with self._read("order") as db:
            return _load_order(db, client_order_id)

    def find_order(self, order_id: str) -> OrderState | None:
        """The order ``order_id`` names: a client order id, else a venue order id (what a fill names)."""
        with self._read("find_order") as db:
            return _order_for_fill(db, order_id)

    def working_orders(self, strategy: str | None = None) -> list[OrderState]:
        """Orders that may still be live at the venue, oldest first: what a restart reconciles."""
        sql, params = _by_strategy(_SELECT_WORKING, strategy, _WORKING)
        with self._read("working_orders") as db:
            return [rows.order_from_row(row) for row in db.execute(sql + " ORDER BY rowid", params)]

    def orders(self, strategy: str | None = None) -> list[OrderState]:
        """Every order journaled (working or not), oldest first: the order history."""
        sql, params = _by_strategy(f"SELECT {rows.ORDER_COLUMNS} FROM orders WHERE 1 = 1", strategy)
        with self._read("orders") as db:
            return [rows.order_from_row(row) for row in db.execute(sql + " ORDER BY rowid", params)]

    def order_events(self, client_order_id: str) -> list[rows.OrderEvent]:
        """The order's audit trail, first (the journal entry) to last."""
        sql = "SELECT * FROM order_events WHERE client_order_id = ? ORDER BY seq"
        with self._read("order_events") as db:
            return [rows.event_from_row(row) for row in db.execute(sql, (client_order_id,))]

    # --- fills and positions ----------------------------------------------------------------

    def record_fill(self, fill: Fill, now_ns: int) -> Position | None:
        """Store a fill once and apply it; the position after it, or None if the fill was already stored.

        One transaction: the fill row, the (strategy, symbol) position, the strategy's daily P&L
        for the fill's UTC day and, when ``fill.order_id`` is a journaled order's client or venue
        id, that order's filled quantity, average price and status. A fill with no ``order_id``
        (the account monitor's) changes no order. ``fee_currency`` is not stored. The journaled order's strategy
        wins over the fill's own ``strategy`` field (the journal is the host's record of who placed it).
        A fill of no order the ledger holds that is older than the retention horizon is taken as one
        already stored whose row retention removed (a redelivery): None, as for any duplicate.
        """
        with self._write("record_fill") as tx:
            order = _order_for_fill(tx, fill.order_id)
            strategy = _fill_strategy(fill, order)
            if order is None and _before_retention(tx, fill):
                return None
            covered = 0.0 if order is None or fill.reconciled else _uncovered_reconciled(tx, order)
            covered = min(fill.quantity, covered)
            if not _insert_fill(tx, fill, order, strategy, now_ns, covered, int(fill.reconciled)):
                return None
            state = _apply_to_position(tx, strategy, fill, fill.quantity - covered)
            if order is not None:
                _apply_fill_to_order(tx, order, fill, now_ns)
        if covered:
            log.info("fill_covered_by_reconciled", fill_id=fill.fill_id, quantity=fill.quantity, covered=covered)
        return state.snapshot(fill.timestamp_ns, strategy, self._marks.get(fill.symbol))

    def record_missing_fill(
        self, client_order_id: str, venue_filled: float, venue_average: float, now_ns: int, *,
        venue_fee: float | None = None, reconciled: bool = True, venue_order_id: str = "",
    ) -> tuple[Fill, Position] | None:  # fmt: skip
        """The venue says ``venue_filled`` of the order filled at ``venue_average``; store what the
        ledger's fills lack as one fill, applied like any fill. None when nothing is missing (or
        nothing can price it).

        Two uses. Recovery (``reconciled``): the fills' reports were lost; the fill is marked
        ``reconciled``, fee 0 unless ``venue_fee`` says. A venue that reports fills only as
        cumulative order state (order.OrderService's updates; ``reconciled=False``): each update's
        new quantity is a fill, its id ``<venue order id>:<cumulative quantity>`` (the same update
        delivered twice is stored once), its fee the cumulative ``venue_fee`` minus the fees held.
        Either kind is "derived" (``fills.reconciled`` 1 recovered, 2 from order state; 0 is a fill
        report): a fill report of the same executions arriving later is covered by it, not counted
        again. The fills held include reports not yet tied to the order that name
        ``venue_order_id`` (the venue's id, which the order itself may not have learnt yet).

        The quantity is the venue's figure minus the fills held (never past the order's quantity);
        the price makes the order's average the venue's: ``(venue_average * venue_filled -
        held notional) / missing``, else the venue's average when that is not a price. A recovered
        fill's id, ``reconciled:<client order id>:<n>``, is new for each recovery. A venue fill that
        arrives afterwards for the same quantity is stored as covered (``record_fill``): counted once.
        """
        with self._write("record_missing_fill") as tx:
            order = _load_order(tx, client_order_id)
            if order is None:
                raise UnknownOrder("record_missing_fill", client_order_id)
            intent = order.intent
            venue_id = venue_order_id or order.venue_order_id
            if venue_id != order.venue_order_id:  # the order learns its venue id: reports naming it are its
                order = _relink_fills(tx, order.evolve(venue_order_id=venue_id), venue_id)
            held, notional = _counted(tx, client_order_id, venue_id)
            target = min(venue_filled, intent.quantity)
            missing = target - held
            if missing <= intent.quantity * _FILL_TOLERANCE:
                return None
            price = (venue_average * target - notional) / missing if venue_average > 0 else 0.0
            if not (price > 0 and math.isfinite(price)):
                price = venue_average if venue_average > 0 else (intent.price or 0.0)
            if not (price > 0 and math.isfinite(price)):
                log.error("missing_fill_unpriced", client_order_id=client_order_id, missing=missing)
                return None
            count, fees = tx.execute(
                "SELECT total(reconciled), total(fee) FROM fills WHERE client_order_id = ?", (client_order_id,)
            ).fetchone()
            venue_id = venue_id or client_order_id
            fill_id = f"reconciled:{client_order_id}:{int(count) + 1}" if reconciled else f"{venue_id}:{target:.12g}"
            fill = Fill(
                fill_id=fill_id, order_id=venue_id, symbol=intent.symbol, side=intent.side, price=price,
                quantity=missing, timestamp_ns=now_ns, fee=0.0 if venue_fee is None else venue_fee - fees,
                strategy=intent.strategy, reconciled=reconciled,
            )  # fmt: skip
            if not _insert_fill(tx, fill, order, intent.strategy, now_ns, 0.0, 1 if reconciled else 2):
                return None
            state = _apply_to_position(tx, intent.strategy, fill, missing)
            _apply_fill_to_order(tx, order, fill, now_ns)
        position = state.snapshot(now_ns, intent.strategy, self._marks.get(intent.symbol))
        return fill, position

    def covered(self, fill_id: str) -> float:
        """How much of a stored venue fill a reconciled fill had already counted (0 for most)."""
        with self._read("covered") as db:
            row = db.execute("SELECT covered FROM fills WHERE fill_id = ?", (fill_id,)).fetchone()
        return 0.0 if row is None else float(row[0])

    def counted_fills(self, client_order_id: str) -> float:
        """The quantity the stored fills of an order count for (covered quantity counted once)."""
        with self._read("counted_fills") as db:
            order = _load_order(db, client_order_id)
            return _counted(db, client_order_id, "" if order is None else order.venue_order_id)[0]

    def fills(self, strategy: str | None = None) -> list[Fill]:
        """Stored fills in the order they were recorded (the order their positions were built in)."""
        sql, params = _by_strategy("SELECT * FROM fills WHERE 1", strategy)
        with self._read("fills") as db:
            return [rows.fill_from_row(row) for row in db.execute(sql + " ORDER BY rowid", params)]

    def mark(self, symbol: str, price: float) -> None:
        """Remember the latest market price of ``symbol`` for unrealized P&L (in memory only)."""
        if not (price > 0 and math.isfinite(price)):
            raise LedgerError("mark", f"{symbol}: price must be a finite number > 0, got {price!r}")
        self._marks[symbol] = price

    def positions(self, strategy: str | None = None) -> list[Position]:
        """Every (strategy, symbol) position that ever had a fill, flat ones included (they hold realized P&L)."""
        sql, params = _by_strategy("SELECT * FROM positions WHERE 1", strategy)
        with self._read("positions") as db:
            found = db.execute(sql + " ORDER BY strategy, symbol", params).fetchall()
        marks = self._marks
        return [
            rows.state_from_row(row, row["symbol"]).snapshot(
                row["updated_ns"], row["strategy"], marks.get(row["symbol"])
            )
            for row in found
        ]

    # --- P&L and equity ---------------------------------------------------------------------

    def daily_pnl(self, day: date, strategy: str | None = None) -> float:
        """Realized P&L (fees subtracted) of fills whose timestamp falls on UTC ``day``."""
        sql, params = _by_strategy("SELECT total(realized) FROM daily_pnl WHERE day = ?", strategy, (day.isoformat(),))
        with self._read("daily_pnl") as db:
            return float(db.execute(sql, params).fetchone()[0])

    def equity(self, initial_balance: float) -> float:
        """``initial_balance`` + all realized P&L + unrealized P&L of open positions at the latest marks."""
        positions = self.positions()
        return initial_balance + sum(p.realized_pnl + p.unrealized_pnl for p in positions)

    def record_equity(self, value: float, now_ns: int) -> float:
        """Persist an equity observation; return the peak so far (the high-water mark drawdown is measured from)."""
        if not math.isfinite(value):
            raise LedgerError("record_equity", f"equity must be a finite number, got {value!r}")
        with self._write("record_equity") as tx:
            peak = tx.execute(_RECORD_EQUITY, {"value": value, "ns": now_ns}).fetchone()[0]
        return float(peak)

    def peak_equity(self) -> float | None:
        with self._read("peak_equity") as db:
            row = db.execute("SELECT peak FROM equity WHERE id = 1").fetchone()
        return None if row is None else float(row[0])

    # --- strategy state and key/values ------------------------------------------------------

    def save_snapshot(self, strategy: str, state: bytes, now_ns: int) -> None:
        """Keep ``state`` as the strategy's latest snapshot (replacing the previous one)."""
        sql = (
            "INSERT INTO snapshots (strategy, state, saved_ns) VALUES (?, ?, ?) ON CONFLICT (strategy) "
            "DO UPDATE SET state = excluded.state, saved_ns = excluded.saved_ns"
        )
        with self._write("save_snapshot") as tx:
            tx.execute(sql, (strategy, bytes(state), now_ns))

    def load_snapshot(self, strategy: str) -> bytes | None:
        with self._read("load_snapshot") as db:
            row = db.execute("SELECT state FROM snapshots WHERE strategy = ?", (strategy,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_value(self, key: str, value: str) -> None:
        """Store a small value that must survive restarts (risk counters such as orders per UTC day)."""
        sql = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        with self._write("set_value") as tx:
            tx.execute(sql, (key, value))

    def set_values(self, values: Mapping[str, str]) -> None:
        """Store several small values in one transaction (one fsync for a batch of counters)."""
        sql = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        with self._write("set_values") as tx:
            tx.executemany(sql, list(values.items()))

    def values(self, prefix: str) -> dict[str, str]:
        """Every stored value whose key starts with ``prefix``."""
        with self._read("values") as db:
            rows_ = db.execute("SELECT key, value FROM kv WHERE key >= ? AND key < ?", (prefix, prefix + "\uffff"))
            return {key: value for key, value in rows_}

    def get_value(self, key: str) -> str | None:
        with self._read("get_value") as db:
            row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])


# --- statements used inside a transaction ------------------------------------------------------


def _by_strategy(sql: str, strategy: str | None, params: tuple[object, ...] = ()) -> tuple[str, tuple[object, ...]]:
    """``sql`` (ending in a WHERE clause) narrowed to one strategy when one is named."""
    return (sql, params) if strategy is None else (sql + " AND strategy = ?", (*params, strategy))


def _check_intent(intent: OrderIntent) -> None:
    for name in ("client_order_id", "strategy", "symbol"):
        if not getattr(intent, name):
            raise LedgerError("journal", f"OrderIntent.{name} is empty")
    if not (intent.quantity > 0 and math.isfinite(intent.quantity)):
        raise LedgerError("journal", f"order {intent.client_order_id!r}: quantity must be > 0, got {intent.quantity!r}")


def _load_order(db: sqlite3.Connection, client_order_id: str) -> OrderState | None:
    sql = f"SELECT {rows.ORDER_COLUMNS} FROM orders WHERE client_order_id = ?"
    row = db.execute(sql, (client_order_id,)).fetchone()
    return None if row is None else rows.order_from_row(row)


def _relink_fills(db: sqlite3.Connection, state: OrderState, venue_order_id: str) -> OrderState:
    """Fills stored under a venue id before the order's reply named it (a fill can beat the reply)
    now belong to the order: link them, and count them in its filled quantity and average price."""
    cid = state.intent.client_order_id
    db.execute(
        "UPDATE fills SET client_order_id = ? WHERE order_id = ? AND client_order_id IS NULL", (cid, venue_order_id)
    )
    quantity, notional = _counted(db, cid, venue_order_id)
    if quantity <= state.filled_quantity:
        return state
    return state.evolve(filled_quantity=float(quantity), average_price=float(notional) / float(quantity))


def _order_for_fill(db: sqlite3.Connection, order_id: str) -> OrderState | None:
    """The journaled order a fill's ``order_id`` names: by client order id first, else by venue id.

    A fill naming no order ("") belongs to none, not to the first order with no venue id yet.
    """
    if not order_id:
        return None
    found = _load_order(db, order_id)
    if found is not None:
        return found
    sql = f"SELECT {rows.ORDER_COLUMNS} FROM orders WHERE venue_order_id = ? ORDER BY rowid LIMIT 1"
    row = db.execute(sql, (order_id,)).fetchone()
    return None if row is None else rows.order_from_row(row)


def _update_order(
    db: sqlite3.Connection, state: OrderState, from_status: OrderStatus, reason: str, fill_id: str | None
) -> None:
    changes = (state.status.value, state.venue_order_id, state.filled_quantity, state.average_price, state.reason)
    db.execute(_UPDATE_ORDER, (*changes, state.updated_ns, state.intent.client_order_id))
    db.execute(_INSERT_EVENT, rows.event_row(state, from_status, reason, fill_id))


def _apply_fill_to_order(db: sqlite3.Connection, order: OrderState, fill: Fill, now_ns: int) -> None:
    """Bring the order's fill progress up to its stored fills.

    The stored fills are summed rather than the new one added, so a venue status update that
    already reported this fill through ``transition(filled_quantity=...)`` is not counted twice:
    the larger of the two cumulative quantities wins. A fill on a terminal order (a fill that
    raced a cancel) updates the quantities and leaves the status alone.
    """
    quantity, notional = _counted(db, order.intent.client_order_id, order.venue_order_id)
    filled, average = order.filled_quantity, order.average_price
    if quantity >= filled and quantity > 0:
        filled, average = quantity, notional / quantity
    status = order.status
    if status not in TERMINAL:
        if filled >= order.intent.quantity * (1 - _FILL_TOLERANCE):
            status = OrderStatus.FILLED
        elif status is not OrderStatus.CANCEL_PENDING:
            status = OrderStatus.PARTIALLY_FILLED
    state = order.evolve(status=status, filled_quantity=filled, average_price=average, updated_ns=now_ns)
    _update_order(db, state, order.status, "fill", fill.fill_id)


def _fill_strategy(fill: Fill, order: OrderState | None) -> str:
    if order is None:
        return fill.strategy
    strategy = order.intent.strategy
    if fill.strategy and fill.strategy != strategy:
        log.warning(
            "fill_strategy_mismatch", fill_id=fill.fill_id, fill_strategy=fill.strategy, order_strategy=strategy
        )
    return strategy


def _before_retention(db: sqlite3.Connection, fill: Fill) -> bool:
    row = db.execute("SELECT value FROM kv WHERE key = ?", (RETENTION_HORIZON_KEY,)).fetchone()
    return row is not None and fill.timestamp_ns <= int(row[0])


_COUNTED = (
    "SELECT total(quantity - covered), total((quantity - covered) * price) FROM fills WHERE client_order_id = ? "
    "OR (client_order_id IS NULL AND ? != '' AND order_id = ?)"
)


def _counted(db: sqlite3.Connection, client_order_id: str, venue_order_id: str = "") -> tuple[float, float]:
    """Quantity and notional of an order's stored fills, covered quantity counted once: the fills tied
    to it and the reports naming its venue id that are not tied to it yet (one that beat its reply)."""
    quantity, notional = db.execute(_COUNTED, (client_order_id, venue_order_id, venue_order_id)).fetchone()
    return float(quantity), float(notional)


def _uncovered_reconciled(db: sqlite3.Connection, order: OrderState) -> float:
    """Derived quantity of the order (recovered, or from order state) that no fill report has covered yet."""
    sql = "SELECT total(CASE reconciled WHEN 0 THEN -covered ELSE quantity END) FROM fills WHERE client_order_id = ?"
    (outstanding,) = db.execute(sql, (order.intent.client_order_id,)).fetchone()
    return max(0.0, float(outstanding))


def _insert_fill(
    db: sqlite3.Connection,
    fill: Fill,
    order: OrderState | None,
    strategy: str,
    now_ns: int,
    covered: float,
    kind: int,
) -> bool:
    """Store the fill; False when its id is already stored (a redelivery: nothing else may change)."""
    client_order_id = None if order is None else order.intent.client_order_id
    row = (
        fill.fill_id, fill.order_id, client_order_id, strategy, fill.symbol, fill.side.value, fill.price,
        fill.quantity, fill.fee, fill.timestamp_ns, now_ns, kind, covered,
    )  # fmt: skip
    return db.execute(_INSERT_FILL, row).rowcount == 1


def _apply_to_position(db: sqlite3.Connection, strategy: str, fill: Fill, quantity: float) -> PositionState:
    """Apply ``quantity`` of the fill (what a reconciled fill did not already count) to its position
    with the SDK's one rule; add what it realized to the day's P&L. The fee always applies."""
    sql = "SELECT * FROM positions WHERE strategy = ? AND symbol = ?"
    state = rows.state_from_row(db.execute(sql, (strategy, fill.symbol)).fetchone(), fill.symbol)
    if quantity > fill.quantity * _FILL_TOLERANCE:
        realized = state.apply(fill.side, quantity, fill.price, fill.fee)
    else:  # wholly covered: only its fee is new
        realized = -fill.fee
        state.realized_pnl += realized
        state.fees += fill.fee
    figures = (state.quantity, state.avg_entry_price, state.realized_pnl, state.fees, state.last_price)
    db.execute(_UPSERT_POSITION, (strategy, fill.symbol, *figures, fill.timestamp_ns))
    day = rows.utc_day(fill.timestamp_ns).isoformat()
    db.execute(_ADD_DAILY_PNL, (strategy, day, realized, fill.fee))
    return state

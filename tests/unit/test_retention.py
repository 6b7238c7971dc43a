"""Ledger retention on real sqlite files: what goes, what never goes, the archive, fills kept de-duplicated."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from host.ledger import Ledger, LedgerError
from host.ledger.ledger import RETENTION_HORIZON_KEY
from host.ledger.retention import Retention, compact, retain
from host.orders import OrderIntent, OrderStatus
from sdk.events import Fill, OrderType, Side
from tests.helpers import ManualClocks, wait_until

S = OrderStatus
DAY_NS = 86_400 * 1_000_000_000
T0 = 20_454 * DAY_NS  # 2026-01-01 00:00:00 UTC
CUTOFF = T0 + 10 * DAY_NS
OLD, NEW = T0 + DAY_NS, CUTOFF + DAY_NS


def intent(cid: str, side: Side = Side.BUY, quantity: float = 1.0, strategy: str = "mm") -> OrderIntent:
    return OrderIntent(cid, strategy, "BTCUSDT", side, OrderType.LIMIT, quantity, price=100.0)


def filled(ledger: Ledger, cid: str, at: int, side: Side = Side.BUY, quantity: float = 1.0) -> None:
    """An order journaled, accepted and filled at ``at`` (its fill says so too)."""
    ledger.journal(intent(cid, side, quantity), at)
    ledger.transition(cid, S.ACCEPTED, at, venue_order_id=f"V-{cid}")
    ledger.record_fill(
        Fill(
            fill_id=f"F-{cid}",
            order_id=f"V-{cid}",
            symbol="BTCUSDT",
            side=side,
            price=100.0 + at % 7,
            quantity=quantity,
            timestamp_ns=at,
            fee=0.01,
            strategy="mm",
        ),
        at,
    )


def build(path: Path) -> None:
    """Old and new history around CUTOFF, and working orders that are old."""
    with Ledger.open(path) as ledger:
        filled(ledger, "old-buy", OLD)
        filled(ledger, "old-sell", OLD + 1, Side.SELL, 0.5)
        ledger.journal(intent("old-cancelled"), OLD)
        ledger.transition("old-cancelled", S.ACCEPTED, OLD, venue_order_id="V-old-cancelled")
        ledger.transition("old-cancelled", S.CANCELLED, OLD + 2)
        ledger.journal(intent("old-rejected"), OLD)
        ledger.transition("old-rejected", S.REJECTED, OLD + 3, reason="venue said no")
        # Working for ten days: partly filled, and never removed, however old.
        ledger.journal(intent("old-working", quantity=2.0), OLD)
        ledger.transition("old-working", S.ACCEPTED, OLD, venue_order_id="V-old-working")
        ledger.record_fill(
            Fill(
                fill_id="F-old-working",
                order_id="V-old-working",
                symbol="BTCUSDT",
                side=Side.BUY,
                price=99.0,
                quantity=0.5,
                timestamp_ns=OLD,
                fee=0.0,
                strategy="mm",
            ),
            OLD,
        )
        ledger.journal(intent("old-pending"), OLD)
        # A fill tied to no order (the account monitor's), and one naming a venue id no order has yet: while
        # an order without its venue id works, that fill may be its own (it beat the order's reply).
        ledger.record_fill(
            Fill(
                fill_id="F-loose",
                order_id="",
                symbol="BTCUSDT",
                side=Side.SELL,
                price=101.0,
                quantity=0.1,
                timestamp_ns=OLD,
                fee=0.0,
                strategy="mm",
            ),
            OLD,
        )
        ledger.record_fill(
            Fill(
                fill_id="F-early",
                order_id="V-old-pending",
                symbol="BTCUSDT",
                side=Side.BUY,
                price=99.5,
                quantity=0.2,
                timestamp_ns=OLD,
                fee=0.0,
                strategy="mm",
            ),
            OLD,
        )
        filled(ledger, "new-buy", NEW)
        ledger.record_fill(
            Fill(
                fill_id="F-loose-new",
                order_id="",
                symbol="BTCUSDT",
                side=Side.SELL,
                price=102.0,
                quantity=0.1,
                timestamp_ns=NEW,
                fee=0.0,
                strategy="mm",
            ),
            NEW,
        )
        ledger.record_equity(100_500.0, NEW)
        ledger.save_snapshot("mm", b"state", NEW)
        ledger.set_value("risk.2026-01-02.approved", "7")


def table(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [tuple(row) for row in db.execute(sql)]
    finally:
        db.close()


def ids(path: Path, name: str) -> set[str]:
    key = {"orders": "client_order_id", "fills": "fill_id"}[name]
    return {row[0] for row in table(path, f"SELECT {key} FROM {name}")}


def books(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything positions and P&L are: the tables retention must leave as they are."""
    queries = {
        "positions": "SELECT * FROM positions ORDER BY strategy, symbol",
        "daily_pnl": "SELECT * FROM daily_pnl ORDER BY strategy, day",
        "equity": "SELECT * FROM equity",
        "snapshots": "SELECT * FROM snapshots",
        "kv": f"SELECT * FROM kv WHERE key != '{RETENTION_HORIZON_KEY}' ORDER BY key",
    }
    return {name: table(path, sql) for name, sql in queries.items()}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    built = tmp_path / "ledger.sqlite"
    build(built)
    return built


KEPT_ORDERS = {"old-working", "old-pending", "new-buy"}
KEPT_FILLS = {"F-old-working", "F-early", "F-new-buy", "F-loose-new"}


class TestCompact:
    def test_finished_orders_before_the_cutoff_go_with_their_events_and_fills(self, path: Path) -> None:
        """The four old finished orders, their 11 events, their 2 fills and the old loose fill are removed."""
        report = compact(path, CUTOFF)
        assert ids(path, "orders") == KEPT_ORDERS and ids(path, "fills") == KEPT_FILLS
        assert (report.orders, report.order_events, report.fills) == (4, 11, 3)
        old = ("old-buy", "old-sell", "old-cancelled", "old-rejected")
        assert table(path, f"SELECT * FROM order_events WHERE client_order_id IN {old}") == []

    def test_working_orders_keep_everything_however_old(self, path: Path) -> None:
        """A ten-day-old working order, and a journaled one, keep their rows, full audit trail and fills."""
        events = table(path, "SELECT * FROM order_events WHERE client_order_id LIKE 'old-%ing' ORDER BY seq")
        compact(path, NEW + DAY_NS)
        assert ids(path, "orders") == {"old-working", "old-pending"}
        assert table(path, "SELECT * FROM order_events ORDER BY seq") == events
        assert ids(path, "fills") == {"F-old-working", "F-early"}

    def test_positions_daily_pnl_equity_snapshots_and_values_are_identical(self, path: Path) -> None:
        """Positions and P&L are stored aggregates: removing the fills they were built from changes nothing."""
        before = books(path)
        with Ledger.open(path) as ledger:
            positions = ledger.positions()
        compact(path, NEW + DAY_NS)
        assert books(path) == before
        with Ledger.open(path) as ledger:
            assert ledger.positions() == positions and ledger.working_orders()

    def test_small_steps_remove_the_same_rows(self, tmp_path: Path, path: Path) -> None:
        """One rowid at a time (a step per row) ends where one step for everything ends."""
        other = tmp_path / "other.sqlite"
        shutil.copy(path, other)
        compact(path, CUTOFF)
        compact(other, CUTOFF, span=1)
        for name in ("orders", "fills"):
            assert ids(other, name) == ids(path, name)

    def test_an_engine_keeps_writing_between_steps(self, path: Path) -> None:
        """The ledger's own connection journals and fills orders between two steps of a compaction."""
        with Ledger.open(path) as ledger:
            retention = Retention.open(path, CUTOFF, span=1)
            try:
                assert retention.step()
                filled(ledger, "during", NEW)
                while retention.step():
                    pass
            finally:
                retention.close()
            assert ledger.order("during") is not None and "F-during" in ids(path, "fills")

    def test_vacuum_gives_the_space_back(self, tmp_path: Path) -> None:
        """After removing most rows, VACUUM makes the file smaller."""
        path = tmp_path / "big.sqlite"
        with Ledger.open(path) as ledger:
            for n in range(400):
                filled(ledger, f"o{n}", OLD, Side.BUY if n % 2 else Side.SELL)
        size = path.stat().st_size
        report = compact(path, CUTOFF, vacuum=True)
        assert report.orders == 400 and report.vacuumed and path.stat().st_size < size / 2

    def test_a_missing_file_is_refused_and_not_created(self, tmp_path: Path) -> None:
        with pytest.raises(LedgerError, match="no such ledger file"):
            compact(tmp_path / "nope.sqlite", CUTOFF)
        assert not (tmp_path / "nope.sqlite").exists()


class TestFillsStayDeduplicated:
    def test_a_removed_fill_delivered_again_is_a_duplicate(self, path: Path) -> None:
        """A fill of a removed order (its order is gone too) replayed later is not booked a second time."""
        compact(path, CUTOFF)
        with Ledger.open(path) as ledger:
            positions = ledger.positions()
            again = Fill(
                fill_id="F-old-buy",
                order_id="V-old-buy",
                symbol="BTCUSDT",
                side=Side.BUY,
                price=101.0,
                quantity=1.0,
                timestamp_ns=OLD,
                fee=0.01,
                strategy="mm",
            )
            assert ledger.record_fill(again, NEW) is None
            assert (
                ledger.record_fill(
                    Fill(
                        fill_id="F-loose",
                        order_id="",
                        symbol="BTCUSDT",
                        side=Side.SELL,
                        price=101.0,
                        quantity=0.1,
                        timestamp_ns=OLD,
                        fee=0.0,
                        strategy="mm",
                    ),
                    NEW,
                )
                is None
            )
            assert ledger.positions() == positions

    def test_a_fill_of_a_journaled_order_is_booked_whatever_its_time(self, path: Path) -> None:
        """The horizon only covers fills of no known order: an old-stamped fill of a held order is booked."""
        compact(path, CUTOFF)
        with Ledger.open(path) as ledger:
            late = Fill(
                fill_id="F-old-working-2",
                order_id="V-old-working",
                symbol="BTCUSDT",
                side=Side.BUY,
                price=99.0,
                quantity=0.5,
                timestamp_ns=OLD,
                fee=0.0,
                strategy="mm",
            )
            assert ledger.record_fill(late, NEW) is not None
            fresh = Fill(
                fill_id="F-loose-later",
                order_id="",
                symbol="BTCUSDT",
                side=Side.SELL,
                price=101.0,
                quantity=0.1,
                timestamp_ns=NEW + 1,
                fee=0.0,
                strategy="mm",
            )
            assert ledger.record_fill(fresh, NEW) is not None


class TestArchive:
    def test_the_removed_rows_are_in_the_archive_exactly(self, tmp_path: Path, path: Path) -> None:
        """Every row removed is in the archive, identical; nothing kept is."""
        archive = tmp_path / "archive" / "2026-01.sqlite"
        before = {name: table(path, f"SELECT * FROM {name} ORDER BY 1") for name in ("orders", "order_events", "fills")}
        compact(path, CUTOFF, archive=archive)
        for name, rows in before.items():
            kept = table(path, f"SELECT * FROM {name} ORDER BY 1")
            archived = table(archive, f"SELECT * FROM {name} ORDER BY 1")
            assert sorted(archived + kept, key=repr) == sorted(rows, key=repr)
        assert ids(archive, "orders") == {"old-buy", "old-sell", "old-cancelled", "old-rejected"}

    def test_a_crash_between_copy_and_delete_loses_and_doubles_nothing(self, tmp_path: Path, path: Path) -> None:
        """The state a crash after the archive's commit leaves (rows in both files) archived again:
        the archive holds each row once and the ledger none of them."""
        archive = tmp_path / "archive.sqlite"
        untouched = tmp_path / "untouched.sqlite"
        shutil.copy(path, untouched)
        compact(path, CUTOFF, archive=archive)
        counts = {name: len(table(archive, f"SELECT * FROM {name}")) for name in ("orders", "order_events", "fills")}
        compact(untouched, CUTOFF, archive=archive)  # the ledger as it was before its delete committed
        assert {name: len(table(archive, f"SELECT * FROM {name}")) for name in counts} == counts
        assert ids(untouched, "orders") == KEPT_ORDERS

    def test_later_archives_add_to_the_file(self, tmp_path: Path, path: Path) -> None:
        """Archiving month after month into one file keeps what was there and adds the new rows."""
        archive = tmp_path / "archive.sqlite"
        compact(path, CUTOFF, archive=archive)
        compact(path, NEW + DAY_NS, archive=archive)
        assert ids(archive, "orders") == {"old-buy", "old-sell", "old-cancelled", "old-rejected", "new-buy"}

    def test_an_archive_missing_a_column_gets_it(self, tmp_path: Path, path: Path) -> None:
        """An archive made before the ledger gained a column is given that column, and the rows their values."""
        archive = tmp_path / "archive.sqlite"
        db = sqlite3.connect(archive)
        db.execute("CREATE TABLE fills (fill_id TEXT PRIMARY KEY, order_id TEXT NOT NULL)")
        db.close()
        compact(path, CUTOFF, archive=archive)
        assert ("F-old-buy", 1.0) in table(archive, "SELECT fill_id, quantity FROM fills")

    def test_the_archive_must_be_another_file(self, path: Path) -> None:
        with pytest.raises(LedgerError, match="another file"):
            compact(path, CUTOFF, archive=path)


class TestRetainInAnEngine:
    async def test_retain_compacts_at_once_and_then_every_interval(self, path: Path) -> None:
        """retain() compacts at start (at the clock's now minus the days kept) and again each interval,
        logging ledger_compacted each time; history that ages past the cutoff goes at the next turn."""
        clock = ManualClocks(wall_ns=NEW + DAY_NS)  # keeping 5 days: the cutoff is after OLD, before NEW
        with capture_logs() as logs:
            task = asyncio.ensure_future(retain(path, 5, clock, every_s=0.05))
            try:
                await wait_until(lambda: sum(e["event"] == "ledger_compacted" for e in logs) >= 1, timeout=5)
                assert ids(path, "orders") == KEPT_ORDERS
                clock.advance(10 * 86_400.0)  # ten days on: new-buy is past the cutoff too
                await wait_until(lambda: "new-buy" not in ids(path, "orders"), timeout=5)
            finally:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        first = next(e for e in logs if e["event"] == "ledger_compacted")
        assert (first["orders"], first["fills"]) == (4, 3) and ids(path, "orders") == {"old-working", "old-pending"}

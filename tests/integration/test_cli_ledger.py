"""``strategy-engine ledger compact`` and ``ledger archive`` as an operator runs them, on a ledger a real run wrote.

The ledger comes from ``strategy-engine run --minutes 3 --ledger FILE``: the generated demo feed
(2026-01-01 00:00 to 00:03 UTC) through the three built-in strategies, their runners, risk and the
paper venue, so it holds filled, cancelled and still working orders, their events and fills. The
commands run as subprocesses; the files are read through read-only connections.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from host.ledger import Ledger
from host.orders import TERMINAL, WORKING, OrderIntent, OrderStatus
from sdk.events import Fill, OrderType, Side
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration

CUTOFF = "2026-01-01T00:02:00Z"
CUTOFF_NS = int(datetime(2026, 1, 1, 0, 2, tzinfo=UTC).timestamp() * 1e9)
TERMINAL_VALUES = tuple(status.value for status in TERMINAL)
WORKING_VALUES = tuple(status.value for status in WORKING)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [tuple(row) for row in db.execute(sql)]
    finally:
        db.close()


def books(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What positions and P&L are, and the working orders with all they have."""
    working = f"o.status IN {WORKING_VALUES}"
    joined = "JOIN orders o USING (client_order_id) WHERE " + working
    return {
        "positions": rows(path, "SELECT * FROM positions ORDER BY strategy, symbol"),
        "daily_pnl": rows(path, "SELECT * FROM daily_pnl ORDER BY strategy, day"),
        "equity": rows(path, "SELECT * FROM equity"),
        "working": rows(path, f"SELECT * FROM orders o WHERE {working} ORDER BY rowid"),
        "working_events": rows(path, f"SELECT e.* FROM order_events e {joined} ORDER BY e.seq"),
        "working_fills": rows(path, f"SELECT f.* FROM fills f {joined} ORDER BY f.rowid"),
    }


def count(path: Path, table: str) -> int:
    return int(rows(path, f"SELECT count(*) FROM {table}")[0][0])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ledger of a real 3-minute demo run (written once for the module)."""
    folder = tmp_path_factory.mktemp("run")
    ledger = folder / "ledger.sqlite"
    done = cli("run", "--minutes", "3", "--ledger", ledger, cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]
    return ledger


@pytest.fixture
def ledger(recorded: Path, tmp_path: Path) -> Path:
    """A copy of the run's ledger, plus (through the Ledger API) an order working since 00:00:30 with a
    fill: a run does not always end with a partly filled order, and this one is older than the cutoff."""
    copy = tmp_path / "ledger.sqlite"
    shutil.copy(recorded, copy)
    at = int(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC).timestamp() * 1e9)
    with Ledger.open(copy) as books:
        books.journal(OrderIntent("old-rest", "momentum", "BTCUSDT", Side.BUY, OrderType.LIMIT, 0.5, price=1.0), at)
        books.transition("old-rest", OrderStatus.ACCEPTED, at, venue_order_id="V-old-rest")
        books.record_fill(
            Fill(
                fill_id="F-old-rest",
                order_id="V-old-rest",
                symbol="BTCUSDT",
                side=Side.BUY,
                price=1.0,
                quantity=0.1,
                timestamp_ns=at,
                fee=0.0,
                strategy="momentum",
            ),
            at,
        )
    return copy


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return cli("ledger", *args, cwd=cwd)


class TestCompact:
    def test_finished_history_before_the_date_goes_and_the_books_stay(self, ledger: Path, tmp_path: Path) -> None:
        """compact --before 00:02 removes every finished order last changed before it, with its events and
        fills; later ones, working orders (with their events and fills), positions and daily P&L stay."""
        before = books(ledger)
        finished = f"status IN {TERMINAL_VALUES}"
        old = rows(ledger, f"SELECT client_order_id FROM orders WHERE {finished} AND updated_ns < {CUTOFF_NS}")
        later = rows(ledger, f"SELECT client_order_id FROM orders WHERE {finished} AND updated_ns >= {CUTOFF_NS}")
        assert old and later and before["working_fills"], "the run made finished orders on both sides of the cutoff"
        done = run("compact", "--ledger", ledger, "--before", CUTOFF, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"ledger {ledger}: removed {len(old)} finished orders, ")
        assert "working orders, positions and daily P&L are unchanged" in done.stdout
        assert books(ledger) == before
        left = rows(ledger, f"SELECT client_order_id FROM orders WHERE {finished}")
        assert sorted(left) == sorted(later)
        assert rows(ledger, "SELECT count(*) FROM order_events e LEFT JOIN orders o USING (client_order_id) "
                            "WHERE o.client_order_id IS NULL") == [(0,)]  # fmt: skip

    def test_the_ledger_is_taken_from_the_config(self, ledger: Path, tmp_path: Path) -> None:
        """--config: the file named by engine.ledgerPath, relative to the config's folder."""
        (tmp_path / "config.yaml").write_text("engine: {ledgerPath: ledger.sqlite}\n")
        orders = count(ledger, "orders")
        done = run("compact", "--config", tmp_path / "config.yaml", "--before", "2026-01-02", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert count(ledger, "orders") == len(books(ledger)["working"]) < orders

    def test_vacuum_shrinks_the_file(self, ledger: Path, tmp_path: Path) -> None:
        """--vacuum hands the freed pages back: the file is smaller after everything finished is removed."""
        size = ledger.stat().st_size
        done = run("compact", "--ledger", ledger, "--before", "2026-01-02", "--vacuum", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert ledger.stat().st_size < size

    @pytest.mark.parametrize(
        ("args", "code", "says"),
        [
            (("--before", CUTOFF), 2, "name the ledger: --ledger PATH, or --config CONFIG"),
            (("--ledger", "ledger.sqlite", "--before", "yesterday"), 2, "--before 'yesterday': expected an ISO date"),
            (("--ledger", "missing.sqlite", "--before", CUTOFF), 1, "missing.sqlite: no such ledger file"),
        ],
        ids=["no-ledger", "bad-date", "missing-file"],
    )
    def test_mistakes_are_named(self, tmp_path: Path, args: tuple[str, ...], code: int, says: str) -> None:
        """Exit 2 for a usage error, 1 for a ledger that cannot be compacted, with one line saying why;
        a missing file is not created."""
        done = run("compact", *args, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (code, "") and says in done.stderr
        assert not (tmp_path / "missing.sqlite").exists()


class TestArchive:
    def test_rows_are_copied_to_the_archive_then_removed(self, ledger: Path, tmp_path: Path) -> None:
        """archive --to FILE: every finished order, event and fill leaves the ledger and is in FILE, once;
        the books are as they were."""
        before = books(ledger)
        totals = {table: count(ledger, table) for table in ("orders", "order_events", "fills")}
        archive = tmp_path / "archive" / "2026-01.sqlite"
        done = run("archive", "--ledger", ledger, "--before", "2026-01-02", "--to", archive, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"(copied to {archive} first)" in done.stdout
        assert books(ledger) == before
        for table, total in totals.items():
            assert count(archive, table) + count(ledger, table) == total
        assert rows(archive, f"SELECT count(*) FROM orders WHERE status NOT IN {TERMINAL_VALUES}") == [(0,)]

    def test_the_archive_option_is_required(self, tmp_path: Path) -> None:
        done = run("archive", "--ledger", "l.sqlite", "--before", CUTOFF, cwd=tmp_path)
        assert done.returncode == 2 and "--to" in done.stderr

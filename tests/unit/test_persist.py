"""Risk counters and the equity peak survive a restart through the ledger."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from host.execution.book import Book
from host.execution.persist import DurableCounters, Persister
from host.ledger import Ledger
from sdk.events import Fill, Side, Tick


class TestDurableCounters:
    def test_counts_come_back_after_a_restart(self, tmp_path: Path) -> None:
        """Counters set before a flush are read back by a new store over the reopened ledger."""
        path = tmp_path / "ledger.sqlite"
        with Ledger.open(path) as ledger:
            counters = DurableCounters(ledger)
            counters.set("risk.2026-11-26.approved", 7)
            counters.set("risk.2026-11-26.rejected.max_quantity", 2)
            Persister(ledger, counters, Book(1000.0)).flush(0)
        with Ledger.open(path) as ledger:
            again = DurableCounters(ledger)
            assert again.get("risk.2026-11-26.approved") == 7
            assert again.get("risk.2026-11-26.rejected.max_quantity") == 2
            assert again.get("risk.2026-11-27.approved") is None

    def test_unflushed_counts_are_not_written(self, tmp_path: Path) -> None:
        """Nothing reaches the ledger before a flush (the per-order path never waits for a disk)."""
        with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
            DurableCounters(ledger).set("risk.2026-11-26.approved", 3)
            assert ledger.values("risk.") == {}


class TestPeak:
    def test_equity_peak_is_recorded_and_reloaded(self, tmp_path: Path) -> None:
        """A profit raises the peak; the flush records it; a restarted book starts from it."""
        path = tmp_path / "ledger.sqlite"
        with Ledger.open(path) as ledger:
            book = Book(1000.0)
            counters = DurableCounters(ledger)
            for fill in (
                Fill(fill_id="f1", order_id="o1", symbol="X", side=Side.BUY, price=10.0, quantity=10.0, timestamp_ns=1),
                Fill(
                    fill_id="f2", order_id="o2", symbol="X", side=Side.SELL, price=15.0, quantity=10.0, timestamp_ns=2
                ),
            ):
                position = ledger.record_fill(fill, 3)
                assert position is not None
                book.position_changed(position, date(2026, 11, 26))
            book.on_market(Tick(symbol="X", timestamp_ns=4, bid_price=15.0, bid_size=1.0, ask_price=15.0, ask_size=1.0))
            assert book.equity() == 1050.0
            Persister(ledger, counters, Book(1000.0)).flush(5)  # a book at the old peak records nothing
            assert ledger.peak_equity() is None
            Persister(ledger, counters, book).flush(5)
        with Ledger.open(path) as ledger:
            assert Book.load(ledger, 1000.0, date(2026, 11, 26)).peak_equity() == 1050.0


class TestReferencePrices:
    def test_a_candle_is_stamped_with_its_close_and_never_overwrites_a_fresher_quote(self) -> None:
        """Bars carry their open time: the reference takes the close time (open + interval); a bar that
        closes before the latest tick leaves the tick's price in place."""
        from sdk.events import Candle

        minute = 60_000_000_000
        book = Book(1000.0)
        book.on_market(Candle(symbol="X", timestamp_ns=0, open=10.0, high=11.0, low=9.0, close=10.5))
        assert book.reference("X") == (10.5, minute)
        book.on_market(Candle(symbol="X", timestamp_ns=minute, open=10.5, high=12.0, low=10.0, close=11.5))
        assert book.reference("X") == (11.5, 2 * minute)
        book.on_market(
            Tick(symbol="X", timestamp_ns=2 * minute + 5, bid_price=11.9, bid_size=1.0, ask_price=12.1, ask_size=1.0)
        )
        book.on_market(
            Candle(symbol="X", timestamp_ns=minute // 2, open=10.0, high=10.0, low=10.0, close=10.0)
        )  # late, older bar
        assert book.reference("X") == (12.0, 2 * minute + 5)

"""Ledger: orders journal and audit trail, fills once, positions and P&L, equity, snapshots, disk full."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from host.ledger import DuplicateOrder, IllegalTransition, Ledger, LedgerError, UnknownOrder, utc_day
from host.ledger._schema import MIGRATIONS, SCHEMA_VERSION
from host.orders import TERMINAL, OrderIntent, OrderStatus
from sdk.events import Fill, OrderType, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
S = OrderStatus
DAY_NS = 86_400 * 1_000_000_000
T0 = 19_724 * DAY_NS  # 2024-01-02 00:00:00 UTC
NOON = T0 + DAY_NS // 2


def intent(
    coid: str = "c1", strategy: str = "mm", symbol: str = "BTCUSDT", quantity: float = 3.0, **kw: object
) -> OrderIntent:
    fields: dict[str, object] = {"side": BUY, "order_type": OrderType.LIMIT, "price": 100.0} | kw
    return OrderIntent(client_order_id=coid, strategy=strategy, symbol=symbol, quantity=quantity, **fields)  # type: ignore[arg-type]


def fill(
    fill_id: str, side: Side, quantity: float, price: float, fee: float = 0.0, *,
    order_id: str = "c1", symbol: str = "BTCUSDT", ts: int = NOON, strategy: str = "mm",
) -> Fill:  # fmt: skip
    return Fill(
        fill_id=fill_id,
        order_id=order_id,
        symbol=symbol,
        side=side,
        price=price,
        quantity=quantity,
        timestamp_ns=ts,
        fee=fee,
        strategy=strategy,
    )


def fill_the_disk(ledger: Ledger) -> None:
    """Cap the database at its current size, so the next write that needs a page fails with SQLITE_FULL.

    ``max_page_count`` is a setting of the connection, so it is set on the ledger's own one: the
    write path under test is the real one, only the disk is "full".
    """
    db: sqlite3.Connection = ledger._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def free_the_disk(ledger: Ledger) -> None:
    ledger._db.execute("PRAGMA max_page_count = 1073741823")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "books" / "ledger.db"


@pytest.fixture
def ledger(path: Path) -> Iterator[Ledger]:
    with Ledger.open(path) as opened:
        yield opened


class TestOpen:
    def test_creates_the_file_in_wal_mode_with_a_schema_version(self, path: Path) -> None:
        """Opening a new path creates the file (and its folder) in WAL mode at the current schema version."""
        Ledger.open(path).close()
        raw = sqlite3.connect(path)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        raw.close()

    def test_refuses_a_newer_schema(self, path: Path) -> None:
        """A file written by a newer engine is refused with both versions named, not reinterpreted."""
        Ledger.open(path).close()
        with sqlite3.connect(path) as raw:
            raw.execute("UPDATE schema_version SET version = 99")
        raw.close()
        newer = f"schema version 99 is newer than this engine's {SCHEMA_VERSION}"
        with pytest.raises(LedgerError, match=newer) as caught:
            Ledger.open(path)
        assert caught.value.operation == "open"

    def test_refuses_a_file_that_is_not_a_database(self, path: Path) -> None:
        """A garbage file raises LedgerError('open') naming the path."""
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not a database at all" * 100)
        with pytest.raises(LedgerError, match=r"ledger open: .*ledger\.db"):
            Ledger.open(path)

    def test_methods_after_close_raise_ledger_error(self, path: Path) -> None:
        """Using a closed ledger raises LedgerError naming the operation (callers fail closed)."""
        ledger = Ledger.open(path)
        ledger.close()
        ledger.close()
        with pytest.raises(LedgerError, match="ledger journal"):
            ledger.journal(intent(), T0)

    def test_a_version_1_file_is_migrated_with_its_fills_kept(self, path: Path) -> None:
        """A ledger written at schema 1 opens at the current version; its fills read back unchanged."""
        path.parent.mkdir(parents=True)
        raw = sqlite3.connect(path, isolation_level=None)
        for statement in MIGRATIONS[0]:
            raw.execute(statement)
        raw.execute("UPDATE schema_version SET version = 1")
        raw.execute(
            "INSERT INTO fills VALUES ('f1', 'v1', NULL, 'mm', 'BTCUSDT', 'buy', 100.0, 1.0, 0.1, ?, ?)", (NOON, NOON)
        )
        raw.close()
        with Ledger.open(path) as ledger:
            assert ledger.fills() == [fill("f1", BUY, 1.0, 100.0, 0.1, order_id="v1")]
        raw = sqlite3.connect(path)
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        raw.close()


class TestJournal:
    def test_journal_stores_pending_new_with_a_first_event(self, ledger: Ledger) -> None:
        """A journaled order is PENDING_NEW, readable back, and its audit trail starts with the journal entry."""
        state = ledger.journal(intent(), T0)
        assert state.status is S.PENDING_NEW
        assert ledger.order("c1") == state
        [event] = ledger.order_events("c1")
        assert (event.from_status, event.status, event.timestamp_ns) == (None, S.PENDING_NEW, T0)
        assert event.reason == "journaled"

    def test_every_intent_field_round_trips(self, ledger: Ledger) -> None:
        """All of the intent is stored: prices, enums, metadata, slot, flags, creation time."""
        full = intent(
            side=SELL, order_type=OrderType.STOP_LIMIT, price=99.5, stop_price=101.25, time_in_force=TimeInForce.IOC,
            max_slippage=0.01, priority=9, metadata={"why": "breakout", "k": "v"}, slot="ask", reduce_only=True,
            created_ns=T0 - 5,
        )  # fmt: skip
        ledger.journal(full, T0)
        stored = ledger.order("c1")
        assert stored is not None
        assert stored.intent == full
        assert dict(stored.intent.metadata) == {"why": "breakout", "k": "v"}

    def test_second_journal_of_an_id_is_a_duplicate(self, ledger: Ledger) -> None:
        """Journaling a used client order id raises DuplicateOrder, keeps the first order, and is no storage failure."""
        ledger.journal(intent(quantity=1.0), T0)
        with pytest.raises(DuplicateOrder, match="'c1' is already journaled") as caught:
            ledger.journal(intent(quantity=7.0), T0 + 1)
        assert caught.value.operation == "journal"
        stored = ledger.order("c1")
        assert stored is not None and stored.intent.quantity == 1.0
        assert len(ledger.order_events("c1")) == 1
        assert ledger.healthy

    @pytest.mark.parametrize(
        ("bad", "message"),
        [({"coid": ""}, "client_order_id is empty"), ({"strategy": ""}, "strategy is empty"),
         ({"quantity": 0.0}, "quantity must be > 0"), ({"quantity": float("nan")}, "quantity must be > 0")],
    )  # fmt: skip
    def test_bad_intent_is_refused(self, ledger: Ledger, bad: dict[str, object], message: str) -> None:
        """An intent with no id, no strategy or a non-positive quantity is refused before anything is written."""
        with pytest.raises(LedgerError, match=message):
            ledger.journal(intent(**bad), T0)  # type: ignore[arg-type]
        assert ledger.working_orders() == []
        assert ledger.healthy

    def test_unknown_order_is_none(self, ledger: Ledger) -> None:
        """Asking for an id never journaled gives None and an empty trail."""
        assert ledger.order("nope") is None
        assert ledger.order_events("nope") == []


class TestTransition:
    def test_lifecycle_is_recorded_step_by_step(self, ledger: Ledger) -> None:
        """Each transition updates the order and appends one event naming from and to."""
        ledger.journal(intent(), T0)
        ledger.transition("c1", S.SENT, T0 + 1)
        ledger.transition("c1", S.ACCEPTED, T0 + 2, venue_order_id="v1")
        ledger.transition("c1", S.PARTIALLY_FILLED, T0 + 3, filled_quantity=1.0, average_price=100.0)
        ledger.transition("c1", S.PARTIALLY_FILLED, T0 + 4, filled_quantity=2.0, average_price=100.5)
        final = ledger.transition("c1", S.FILLED, T0 + 5, filled_quantity=3.0, average_price=101.0)
        assert (final.status, final.venue_order_id, final.filled_quantity, final.average_price, final.updated_ns) == (
            S.FILLED, "v1", 3.0, 101.0, T0 + 5,
        )  # fmt: skip
        assert ledger.order("c1") == final
        steps = [(e.from_status, e.status, e.filled_quantity) for e in ledger.order_events("c1")]
        assert steps == [
            (None, S.PENDING_NEW, 0.0), (S.PENDING_NEW, S.SENT, 0.0), (S.SENT, S.ACCEPTED, 0.0),
            (S.ACCEPTED, S.PARTIALLY_FILLED, 1.0), (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, 2.0),
            (S.PARTIALLY_FILLED, S.FILLED, 3.0),
        ]  # fmt: skip

    def test_unset_fields_keep_their_value_and_reason_is_kept_until_replaced(self, ledger: Ledger) -> None:
        """venue_order_id, fill figures and reason stay as they were unless given."""
        ledger.journal(intent(), T0)
        ledger.transition("c1", S.ACCEPTED, T0 + 1, venue_order_id="v1", reason="acked")
        state = ledger.transition("c1", S.CANCEL_PENDING, T0 + 2)
        assert (state.venue_order_id, state.reason) == ("v1", "acked")
        state = ledger.transition("c1", S.CANCELLED, T0 + 3, reason="kill switch")
        assert state.reason == "kill switch"

    @pytest.mark.parametrize("terminal", sorted(TERMINAL))
    def test_terminal_order_cannot_change_status(self, ledger: Ledger, terminal: OrderStatus) -> None:
        """Leaving a terminal state raises IllegalTransition naming from and to, and writes nothing."""
        ledger.journal(intent(), T0)
        ledger.transition("c1", terminal, T0 + 1)
        with pytest.raises(
            IllegalTransition, match=rf"is {terminal.value} \(terminal\) and cannot become accepted"
        ) as caught:
            ledger.transition("c1", S.ACCEPTED, T0 + 2)
        assert (caught.value.from_status, caught.value.to_status) == (terminal.value, "accepted")
        stored = ledger.order("c1")
        assert stored is not None and stored.status is terminal
        assert len(ledger.order_events("c1")) == 2
        assert ledger.healthy

    def test_terminal_order_can_be_updated_in_place(self, ledger: Ledger) -> None:
        """A same-status update of a terminal order (a late average price) is allowed and audited."""
        ledger.journal(intent(), T0)
        ledger.transition("c1", S.FILLED, T0 + 1, filled_quantity=3.0)
        state = ledger.transition("c1", S.FILLED, T0 + 2, average_price=100.25)
        assert (state.status, state.average_price) == (S.FILLED, 100.25)
        assert ledger.order_events("c1")[-1].from_status is S.FILLED

    def test_unknown_order_is_refused(self, ledger: Ledger) -> None:
        """Moving an order that was never journaled raises UnknownOrder naming the id."""
        with pytest.raises(UnknownOrder, match="ledger transition: no journaled order with client order id 'ghost'"):
            ledger.transition("ghost", S.SENT, T0)


class TestWorkingOrders:
    def test_only_working_orders_oldest_first(self, ledger: Ledger) -> None:
        """working_orders lists orders still in WORKING, in journal order, optionally for one strategy."""
        for coid, strategy in (("a", "mm"), ("b", "mom"), ("c", "mm"), ("d", "mm")):
            ledger.journal(intent(coid, strategy), T0)
        ledger.transition("a", S.ACCEPTED, T0 + 1)
        ledger.transition("c", S.REJECTED, T0 + 1, reason="no margin")
        ledger.transition("d", S.CANCEL_PENDING, T0 + 1)
        assert [o.intent.client_order_id for o in ledger.working_orders()] == ["a", "b", "d"]
        assert [o.intent.client_order_id for o in ledger.working_orders("mm")] == ["a", "d"]
        assert ledger.working_orders("nobody") == []


class TestFills:
    def test_same_fill_twice_is_stored_once(self, ledger: Ledger) -> None:
        """A redelivered fill returns None and changes no position, P&L, order or fill list."""
        ledger.journal(intent(), T0)
        first = ledger.record_fill(fill("f1", BUY, 1, 100, 0.1), T0 + 1)
        assert first is not None
        assert ledger.record_fill(fill("f1", BUY, 1, 100, 0.1), T0 + 2) is None
        assert ledger.positions() == [first]
        assert ledger.daily_pnl(utc_day(NOON)) == pytest.approx(-0.1)
        assert len(ledger.fills()) == 1
        order = ledger.order("c1")
        assert order is not None and order.filled_quantity == 1.0
        assert len(ledger.order_events("c1")) == 2

    def test_fills_update_the_order_found_by_venue_id(self, ledger: Ledger) -> None:
        """Fills naming the venue order id fill the order: partial, then FILLED with the weighted average price."""
        ledger.journal(intent(quantity=3.0), T0)
        ledger.transition("c1", S.ACCEPTED, T0 + 1, venue_order_id="v1")
        ledger.record_fill(fill("f1", BUY, 2, 100, order_id="v1"), T0 + 2)
        order = ledger.order("c1")
        assert order is not None and (order.status, order.filled_quantity, order.average_price) == (
            S.PARTIALLY_FILLED, 2.0, 100.0,
        )  # fmt: skip
        ledger.record_fill(fill("f2", BUY, 1, 103, order_id="v1"), T0 + 3)
        order = ledger.order("c1")
        assert order is not None and order.status is S.FILLED
        assert (order.filled_quantity, order.average_price) == pytest.approx((3.0, 101.0))
        trail = ledger.order_events("c1")
        assert [(e.status, e.fill_id) for e in trail[-2:]] == [(S.PARTIALLY_FILLED, "f1"), (S.FILLED, "f2")]

    def test_fill_already_reported_by_the_venue_is_not_counted_twice(self, ledger: Ledger) -> None:
        """A status update with the cumulative quantity, then the fill itself, leaves filled_quantity at the fill."""
        ledger.journal(intent(quantity=3.0), T0)
        ledger.transition("c1", S.PARTIALLY_FILLED, T0 + 1, filled_quantity=1.0, average_price=100.0)
        ledger.record_fill(fill("f1", BUY, 1, 100), T0 + 2)
        order = ledger.order("c1")
        assert order is not None and (order.status, order.filled_quantity) == (S.PARTIALLY_FILLED, 1.0)

    def test_partial_fill_while_cancel_pending_keeps_cancel_pending(self, ledger: Ledger) -> None:
        """A partial fill does not hide that a cancel is pending; completing the order makes it FILLED."""
        ledger.journal(intent(quantity=2.0), T0)
        ledger.transition("c1", S.CANCEL_PENDING, T0 + 1)
        ledger.record_fill(fill("f1", BUY, 1, 100), T0 + 2)
        order = ledger.order("c1")
        assert order is not None and (order.status, order.filled_quantity) == (S.CANCEL_PENDING, 1.0)
        ledger.record_fill(fill("f2", BUY, 1, 100), T0 + 3)
        order = ledger.order("c1")
        assert order is not None and order.status is S.FILLED

    def test_fill_after_cancel_counts_but_keeps_the_terminal_status(self, ledger: Ledger) -> None:
        """A fill that raced a cancel moves the position and the order's quantity, not its CANCELLED status."""
        ledger.journal(intent(quantity=2.0), T0)
        ledger.transition("c1", S.CANCELLED, T0 + 1)
        position = ledger.record_fill(fill("f1", BUY, 1, 100), T0 + 2)
        assert position is not None and position.quantity == 1.0
        order = ledger.order("c1")
        assert order is not None and (order.status, order.filled_quantity) == (S.CANCELLED, 1.0)

    def test_the_journal_names_the_strategy(self, ledger: Ledger) -> None:
        """A fill of a journaled order books to that order's strategy whatever the fill claims."""
        ledger.journal(intent(strategy="mm"), T0)
        position = ledger.record_fill(fill("f1", BUY, 1, 100, strategy="other"), T0 + 1)
        assert position is not None and position.strategy == "mm"
        assert [f.strategy for f in ledger.fills()] == ["mm"]

    def test_fill_of_an_unknown_order_books_to_its_own_strategy(self, ledger: Ledger) -> None:
        """A fill of an order the host never journaled (a manual trade) is still stored and booked."""
        position = ledger.record_fill(fill("f1", SELL, 2, 50, order_id="manual-7", strategy="ops"), T0)
        assert position is not None and (position.strategy, position.quantity) == ("ops", -2.0)
        assert ledger.fills("ops")[0].order_id == "manual-7"
        assert ledger.fills("mm") == []

    def test_fill_naming_no_order_books_to_its_strategy_and_touches_no_order(self, ledger: Ledger) -> None:
        """A fill with order_id "" (the account monitor's) is stored once under its strategy; the order
        of that strategy still waiting for its venue id (venue_order_id "") is not taken for it."""
        ledger.journal(intent(strategy="mm"), T0)
        ledger.transition("c1", S.SENT, T0 + 1)
        position = ledger.record_fill(fill("fill-test-001", BUY, 0.001, 50000, 0.05, order_id=""), T0 + 2)
        assert position is not None and (position.strategy, position.quantity) == ("mm", 0.001)
        assert ledger.record_fill(fill("fill-test-001", BUY, 0.001, 50000, 0.05, order_id=""), T0 + 3) is None
        assert [(f.fill_id, f.order_id) for f in ledger.fills("mm")] == [("fill-test-001", "")]
        order = ledger.order("c1")
        assert order is not None and (order.status, order.filled_quantity) == (S.SENT, 0.0)

    def test_fills_are_listed_in_recording_order(self, ledger: Ledger) -> None:
        """fills() returns the stored fills in the order they were applied."""
        for n in range(5):
            ledger.record_fill(fill(f"f{4 - n}", BUY, 1, 100 + n, order_id="x"), T0 + n)
        assert [f.fill_id for f in ledger.fills()] == ["f4", "f3", "f2", "f1", "f0"]
        assert [f.price for f in ledger.fills()] == [100, 101, 102, 103, 104]


class TestPositions:
    def test_add_then_flip_long_to_short_with_fees(self, ledger: Ledger) -> None:
        """Buy 2@100 (fee .2), buy 1@130 (fee .1), sell 4@125 (fee .5): short 1 @125, realized 45 - .8 = 44.2."""
        ledger.journal(intent(quantity=3.0), T0)
        ledger.journal(intent("c2", side=SELL, quantity=4.0, price=125.0), T0)
        p = ledger.record_fill(fill("f1", BUY, 2, 100, 0.2), T0 + 1)
        assert p is not None and (p.quantity, p.avg_entry_price, p.realized_pnl) == pytest.approx((2.0, 100.0, -0.2))
        p = ledger.record_fill(fill("f2", BUY, 1, 130, 0.1), T0 + 2)
        assert p is not None and (p.quantity, p.avg_entry_price) == pytest.approx((3.0, 110.0))
        assert p.realized_pnl == pytest.approx(-0.3)
        p = ledger.record_fill(fill("f3", SELL, 4, 125, 0.5, order_id="c2"), T0 + 3)
        assert p is not None and (p.quantity, p.avg_entry_price) == (-1.0, 125.0)
        assert p.realized_pnl == pytest.approx((125 - 110) * 3 - 0.8)
        assert p.side is SELL

    def test_unrealized_uses_the_latest_mark(self, ledger: Ledger) -> None:
        """Long 3 @110 marked at 120 is +30 unrealized; marked at 100 it is -30."""
        ledger.record_fill(fill("f1", BUY, 2, 100, order_id="x"), T0)
        ledger.record_fill(fill("f2", BUY, 1, 130, order_id="x"), T0 + 1)
        ledger.mark("BTCUSDT", 120.0)
        [p] = ledger.positions()
        assert (p.current_price, p.unrealized_pnl) == pytest.approx((120.0, 30.0))
        ledger.mark("BTCUSDT", 100.0)
        assert ledger.positions()[0].unrealized_pnl == pytest.approx(-30.0)

    def test_short_unrealized_gains_when_price_falls(self, ledger: Ledger) -> None:
        """Short 2 @50 marked at 45 is +10 unrealized, and record_fill reports it at the mark."""
        ledger.mark("ETHUSDT", 45.0)
        p = ledger.record_fill(fill("f1", SELL, 2, 50, symbol="ETHUSDT", order_id="x"), T0)
        assert p is not None and (p.current_price, p.unrealized_pnl) == pytest.approx((45.0, 10.0))

    def test_partial_fills_of_one_order_build_one_position(self, ledger: Ledger) -> None:
        """Three partial fills of a 3-lot order at 100, 101, 105 are long 3 at 102."""
        ledger.journal(intent(quantity=3.0), T0)
        for n, price in enumerate((100, 101, 105)):
            position = ledger.record_fill(fill(f"f{n}", BUY, 1, price), T0 + n)
        assert position is not None and (position.quantity, position.avg_entry_price) == pytest.approx((3.0, 102.0))
        order = ledger.order("c1")
        assert order is not None and order.status is S.FILLED
        assert order.average_price == pytest.approx(102.0)

    def test_positions_are_per_strategy_and_symbol(self, ledger: Ledger) -> None:
        """Positions are kept per (strategy, symbol) and can be listed for one strategy."""
        ledger.record_fill(fill("f1", BUY, 1, 100, order_id="x", strategy="mm"), T0)
        ledger.record_fill(fill("f2", SELL, 1, 100, order_id="x", strategy="mom"), T0)
        ledger.record_fill(fill("f3", BUY, 2, 10, order_id="x", strategy="mm", symbol="ETHUSDT"), T0)
        assert [(p.strategy, p.symbol, p.quantity) for p in ledger.positions()] == [
            ("mm", "BTCUSDT", 1.0), ("mm", "ETHUSDT", 2.0), ("mom", "BTCUSDT", -1.0),
        ]  # fmt: skip
        assert [p.symbol for p in ledger.positions("mom")] == ["BTCUSDT"]

    def test_closed_position_stays_listed_with_its_realized_pnl(self, ledger: Ledger) -> None:
        """Buy 1@100, sell 1@110: flat, realized 10, no unrealized even when marked."""
        ledger.record_fill(fill("f1", BUY, 1, 100, order_id="x"), T0)
        ledger.record_fill(fill("f2", SELL, 1, 110, order_id="x"), T0 + 1)
        ledger.mark("BTCUSDT", 500.0)
        [p] = ledger.positions()
        assert (p.quantity, p.avg_entry_price, p.realized_pnl, p.unrealized_pnl) == (0.0, 0.0, 10.0, 0.0)

    def test_bad_mark_is_refused(self, ledger: Ledger) -> None:
        """A mark that is not a finite positive price raises LedgerError naming the symbol."""
        with pytest.raises(LedgerError, match="ledger mark: BTCUSDT: price must be"):
            ledger.mark("BTCUSDT", float("nan"))


class TestDailyPnl:
    def test_realized_pnl_is_booked_on_the_fills_utc_day(self, ledger: Ledger) -> None:
        """A close one nanosecond before UTC midnight counts for that day; one at midnight for the next."""
        day1, day2 = date(2024, 1, 2), date(2024, 1, 3)
        ledger.record_fill(fill("f1", BUY, 2, 100, order_id="x", ts=T0 + 1), T0)
        ledger.record_fill(fill("f2", SELL, 1, 110, 0.5, order_id="x", ts=T0 + DAY_NS - 1), T0)
        ledger.record_fill(fill("f3", SELL, 1, 90, 0.25, order_id="x", ts=T0 + DAY_NS), T0)
        assert ledger.daily_pnl(day1) == pytest.approx(10 - 0.5)
        assert ledger.daily_pnl(day2) == pytest.approx(-10 - 0.25)
        assert ledger.daily_pnl(date(2024, 1, 4)) == 0.0

    def test_daily_pnl_by_strategy_and_in_total(self, ledger: Ledger) -> None:
        """daily_pnl sums all strategies unless one is named."""
        for strategy, exit_price in (("mm", 105), ("mom", 98)):
            ledger.record_fill(fill(f"{strategy}1", BUY, 1, 100, order_id="x", strategy=strategy), T0)
            ledger.record_fill(fill(f"{strategy}2", SELL, 1, exit_price, order_id="x", strategy=strategy), T0)
        day = utc_day(NOON)
        assert (ledger.daily_pnl(day, "mm"), ledger.daily_pnl(day, "mom"), ledger.daily_pnl(day)) == (5.0, -2.0, 3.0)

    def test_utc_day_is_exact_at_midnight(self) -> None:
        """utc_day uses integer arithmetic: the last nanosecond of a day is still that day."""
        assert (utc_day(T0 - 1), utc_day(T0)) == (date(2024, 1, 1), date(2024, 1, 2))
        assert utc_day(0) == date(1970, 1, 1)


class TestEquity:
    def test_equity_is_initial_plus_realized_plus_unrealized(self, ledger: Ledger) -> None:
        """10 000 + realized (10 - 1 fee) + long 1 @100 marked 95 (-5) = 10 004."""
        ledger.record_fill(fill("f1", BUY, 2, 100, 1.0, order_id="x"), T0)
        ledger.record_fill(fill("f2", SELL, 1, 110, order_id="x"), T0)
        ledger.mark("BTCUSDT", 95.0)
        assert ledger.equity(10_000.0) == pytest.approx(10_004.0)

    def test_peak_only_rises(self, ledger: Ledger) -> None:
        """record_equity keeps the high-water mark and returns it; no record means no peak."""
        assert ledger.peak_equity() is None
        assert [ledger.record_equity(v, T0 + i) for i, v in enumerate((100.0, 120.0, 90.0, 119.0))] == [
            100.0, 120.0, 120.0, 120.0,
        ]  # fmt: skip
        assert ledger.peak_equity() == 120.0

    def test_non_finite_equity_is_refused(self, ledger: Ledger) -> None:
        """An equity of inf or nan never becomes the peak."""
        with pytest.raises(LedgerError, match="ledger record_equity: equity must be a finite number"):
            ledger.record_equity(float("inf"), T0)
        assert ledger.peak_equity() is None


class TestSnapshotsAndValues:
    def test_snapshot_round_trips_and_is_replaced(self, ledger: Ledger) -> None:
        """The latest saved snapshot per strategy is returned byte for byte; none saved gives None."""
        assert ledger.load_snapshot("mm") is None
        ledger.save_snapshot("mm", b"\x00state-1", T0)
        ledger.save_snapshot("mm", b"\x00state-2\xff", T0 + 1)
        ledger.save_snapshot("mom", b"", T0)
        assert (ledger.load_snapshot("mm"), ledger.load_snapshot("mom")) == (b"\x00state-2\xff", b"")

    def test_values_round_trip_and_are_replaced(self, ledger: Ledger) -> None:
        """set_value replaces the value under a key; an unknown key gives None."""
        assert ledger.get_value("orders:2024-01-02") is None
        ledger.set_value("orders:2024-01-02", "1")
        ledger.set_value("orders:2024-01-02", "2")
        assert ledger.get_value("orders:2024-01-02") == "2"


class TestReopen:
    def test_everything_is_there_after_reopening(self, path: Path) -> None:
        """Orders, trail, fills, positions, daily P&L, peak, snapshots and values come back; marks do not."""
        with Ledger.open(path) as ledger:
            ledger.journal(intent(quantity=2.0), T0)
            ledger.journal(intent("c2"), T0)
            ledger.transition("c1", S.ACCEPTED, T0 + 1, venue_order_id="v1")
            ledger.record_fill(fill("f1", BUY, 2, 100, 0.5, order_id="v1"), T0 + 2)
            ledger.mark("BTCUSDT", 150.0)
            ledger.record_equity(1_000.0, T0 + 3)
            ledger.save_snapshot("mm", b"blob", T0 + 4)
            ledger.set_value("k", "v")
            before = (ledger.order("c1"), ledger.order_events("c1"), ledger.fills(), ledger.working_orders())
        with Ledger.open(path) as ledger:
            assert (ledger.order("c1"), ledger.order_events("c1"), ledger.fills(), ledger.working_orders()) == before
            [p] = ledger.positions()
            assert (p.quantity, p.avg_entry_price, p.realized_pnl, p.current_price) == (2.0, 100.0, -0.5, 100.0)
            assert ledger.daily_pnl(utc_day(NOON)) == -0.5
            assert ledger.peak_equity() == 1_000.0
            assert (ledger.load_snapshot("mm"), ledger.get_value("k")) == (b"blob", "v")
            with pytest.raises(DuplicateOrder):
                ledger.journal(intent("c2"), T0 + 5)


class TestDiskFull:
    def test_failed_journal_writes_nothing_and_marks_unhealthy(self, ledger: Ledger) -> None:
        """SQLITE_FULL on journal raises LedgerError('journal'), stores no order, and healthy turns False."""
        fill_the_disk(ledger)
        big = intent(metadata={"note": "x" * 20_000})
        with pytest.raises(LedgerError, match="ledger journal: database or disk is full") as caught:
            ledger.journal(big, T0)
        assert caught.value.sqlite_error == "SQLITE_FULL"
        assert not ledger.healthy
        assert ledger.last_error is caught.value
        assert ledger.order("c1") is None

    def test_failed_fill_leaves_position_order_and_pnl_untouched(self, ledger: Ledger) -> None:
        """A fill that cannot be stored changes nothing: it is all or nothing, and a retry later applies it once."""
        ledger.journal(intent(quantity=3.0), T0)
        ledger.record_fill(fill("f1", BUY, 1, 100), T0 + 1)
        before = (ledger.positions(), ledger.order("c1"), ledger.order_events("c1"), ledger.daily_pnl(utc_day(NOON)))
        fill_the_disk(ledger)
        late = fill("f2" + "-" * 20_000, BUY, 2, 110)
        with pytest.raises(LedgerError, match="ledger record_fill"):
            ledger.record_fill(late, T0 + 2)
        after = (ledger.positions(), ledger.order("c1"), ledger.order_events("c1"), ledger.daily_pnl(utc_day(NOON)))
        assert after == before
        free_the_disk(ledger)
        position = ledger.record_fill(late, T0 + 3)
        assert position is not None and position.quantity == 3.0
        assert ledger.record_fill(late, T0 + 4) is None

    def test_reads_work_while_full_and_writes_resume_when_space_is_back(self, ledger: Ledger) -> None:
        """While full, reads answer and writes fail; once space is back the next write commits and heals."""
        ledger.journal(intent(), T0)
        ledger.set_value("k", "v")
        fill_the_disk(ledger)
        with pytest.raises(LedgerError):
            for n in range(10_000):
                ledger.set_value(f"filler{n}", "x" * 2_000)
        assert not ledger.healthy
        assert (ledger.get_value("k"), [o.intent.client_order_id for o in ledger.working_orders()]) == ("v", ["c1"])
        assert ledger.equity(100.0) == 100.0
        free_the_disk(ledger)
        ledger.journal(intent("c2", metadata={"note": "x" * 20_000}), T0 + 1)
        assert ledger.healthy and ledger.last_error is None
        assert ledger.order("c2") is not None

    def test_refusals_do_not_heal_a_storage_error(self, ledger: Ledger) -> None:
        """Only a committed write clears last_error; a refused request says nothing about the disk."""
        ledger.journal(intent(), T0)
        fill_the_disk(ledger)
        with pytest.raises(LedgerError):
            ledger.save_snapshot("mm", b"x" * 50_000, T0)
        with pytest.raises(DuplicateOrder):
            ledger.journal(intent(), T0)
        assert not ledger.healthy


class TestFillBeforeReply:
    def test_fills_under_a_venue_id_are_linked_when_the_reply_names_it(self, ledger: Ledger) -> None:
        """A fill that arrives before its order's reply is stored by venue id; the transition that
        brings the venue id links it, and the order's filled quantity and average price count it."""
        ledger.journal(intent("c1", quantity=3.0), NOON)
        ledger.transition("c1", OrderStatus.SENT, NOON)
        assert ledger.record_fill(fill("f1", BUY, 1.0, 100.0, order_id="V-7"), NOON) is not None
        assert ledger.record_fill(fill("f2", BUY, 1.0, 102.0, order_id="V-7"), NOON) is not None
        state = ledger.transition("c1", OrderStatus.ACCEPTED, NOON, venue_order_id="V-7")
        assert (state.filled_quantity, state.average_price) == (2.0, 101.0)
        assert ledger.order("c1") == state
        assert [p.quantity for p in ledger.positions("mm")] == [2.0]  # positions were right all along


class TestReconciledFills:
    """What the venue says filled beyond the stored fills becomes one fill marked reconciled."""

    def test_the_missing_quantity_is_stored_at_the_price_that_makes_the_venues_average(self, ledger: Ledger) -> None:
        """0.2 held at 100, the venue says 0.5 at 102 on average: 0.3 reconciled at 103.33..."""
        ledger.journal(intent(quantity=0.5), T0)
        ledger.record_fill(fill("f1", BUY, 0.2, 100.0), T0)
        recovered = ledger.record_missing_fill("c1", 0.5, 102.0, NOON)
        assert recovered is not None
        missing, position = recovered
        assert missing.reconciled and missing.fill_id == "reconciled:c1:1" and missing.fee == 0.0
        assert missing.quantity == pytest.approx(0.3) and missing.price == pytest.approx((102.0 * 0.5 - 20.0) / 0.3)
        assert position.quantity == pytest.approx(0.5) and position.avg_entry_price == pytest.approx(102.0)
        order = ledger.order("c1")
        assert order is not None and order.status is S.FILLED and order.filled_quantity == pytest.approx(0.5)
        assert ledger.counted_fills("c1") == pytest.approx(0.5)
        assert [f.reconciled for f in ledger.fills()] == [False, True]

    def test_nothing_is_recovered_when_the_fills_are_all_there(self, ledger: Ledger) -> None:
        ledger.journal(intent(quantity=0.5), T0)
        ledger.record_fill(fill("f1", BUY, 0.5, 100.0), T0)
        assert ledger.record_missing_fill("c1", 0.5, 100.0, NOON) is None
        assert len(ledger.fills()) == 1

    def test_never_past_the_orders_quantity(self, ledger: Ledger) -> None:
        """A venue figure above the order's quantity is capped at it: nothing is ever filled twice."""
        ledger.journal(intent(quantity=0.5), T0)
        recovered = ledger.record_missing_fill("c1", 0.9, 100.0, NOON)
        assert recovered is not None and recovered[0].quantity == pytest.approx(0.5)
        assert ledger.record_missing_fill("c1", 0.9, 100.0, NOON) is None

    def test_a_venue_fill_arriving_later_is_covered_not_counted_again(self, ledger: Ledger) -> None:
        """The lost fill comes after all (a JetStream redelivery): stored, its quantity counted once, its fee kept."""
        ledger.journal(intent(quantity=0.5), T0)
        ledger.record_fill(fill("f1", BUY, 0.2, 100.0), T0)
        ledger.record_missing_fill("c1", 0.5, 102.0, NOON)
        late = ledger.record_fill(fill("f2", BUY, 0.3, 103.0, fee=0.05), NOON + 1)
        assert late is not None and late.quantity == pytest.approx(0.5)
        assert late.realized_pnl == pytest.approx(-0.05)
        assert ledger.counted_fills("c1") == pytest.approx(0.5)
        order = ledger.order("c1")
        assert order is not None and order.filled_quantity == pytest.approx(0.5)
        # A partly covered one: only the part past the reconciled quantity moves the position.
        ledger.journal(intent("c2", quantity=1.0), T0)
        ledger.record_missing_fill("c2", 0.4, 100.0, NOON)
        more = ledger.record_fill(fill("f3", BUY, 0.6, 100.0, order_id="c2"), NOON + 2)
        assert more is not None and more.quantity == pytest.approx(0.5 + 0.4 + 0.2)
        assert ledger.counted_fills("c2") == pytest.approx(0.6)

    def test_an_unknown_order_is_refused(self, ledger: Ledger) -> None:
        with pytest.raises(UnknownOrder):
            ledger.record_missing_fill("nope", 1.0, 100.0, NOON)

    def test_an_unpriceable_recovery_stores_nothing(self, ledger: Ledger) -> None:
        """A market order and a venue that reports no average price: nothing to price it with."""
        ledger.journal(intent(quantity=0.5, order_type=OrderType.MARKET, price=None), T0)
        assert ledger.record_missing_fill("c1", 0.5, 0.0, NOON) is None
        assert ledger.fills() == []


class TestFillsFromOrderState:
    """A venue that reports cumulative order state (order.OrderService): fills derived from it and the
    venue's fill reports of the same executions are counted once, whichever comes first."""

    def test_the_update_then_the_report(self, ledger: Ledger) -> None:
        ledger.journal(intent(quantity=0.5), T0)
        derived = ledger.record_missing_fill("c1", 0.2, 100.0, NOON, venue_fee=0.02, reconciled=False,
                                             venue_order_id="v1")  # fmt: skip
        assert derived is not None
        made, position = derived
        assert (made.fill_id, made.reconciled, made.fee, position.quantity) == ("v1:0.2", False, 0.02, 0.2)
        assert ledger.record_missing_fill("c1", 0.2, 100.0, NOON, reconciled=False, venue_order_id="v1") is None
        late = ledger.record_fill(fill("r1", BUY, 0.2, 100.0, fee=0.02, order_id="c1"), NOON + 1)
        assert late is not None and late.quantity == pytest.approx(0.2)
        assert ledger.counted_fills("c1") == pytest.approx(0.2)

    def test_the_report_first_even_before_the_order_knows_its_venue_id(self, ledger: Ledger) -> None:
        """A report naming only the venue's id (not tied to the order yet) counts toward the update's figure."""
        ledger.journal(intent(quantity=0.5), T0)
        ledger.record_fill(fill("r1", BUY, 0.2, 100.0, order_id="v1"), NOON)
        derived = ledger.record_missing_fill("c1", 0.5, 100.0, NOON, reconciled=False, venue_order_id="v1")
        assert derived is not None and derived[0].quantity == pytest.approx(0.3)
        assert derived[1].quantity == pytest.approx(0.5)
        more = ledger.record_fill(fill("r2", BUY, 0.3, 100.0, order_id="v1"), NOON + 1)
        assert more is not None and more.quantity == pytest.approx(0.5)  # covered by the derived 0.3
        [position] = ledger.positions("mm")
        assert position.quantity == pytest.approx(0.5)

"""Unit tests of the scalping strategy, run on crafted events through ``sdk.testing.run_strategy``."""

from __future__ import annotations

import json
from typing import Any, Sequence

import pluggy
import pytest

import scalping
from scalping import Scalping, ScalpingConfig
from sdk import (
    Book,
    ConfigError,
    Event,
    Fill,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    Side,
    StrategyEngineSpec,
    Tick,
    Timer,
)
from sdk.testing import RunResult, run_strategy

SYMBOL = "BTCUSDT"
NS = 1_000_000_000
PARAMS: dict[str, Any] = {
    "target_spread_bps": 5.0,
    "profit_target": 0.001,
    "stop_loss": 0.0005,
    "max_hold_time_seconds": 60.0,
    "max_position": 1.0,
    "order_size": 1.0,
    "imbalance_threshold": 0.3,
}


def book(second: float, bid: float = 99.99, ask: float = 100.01, bid_size: float = 1.0, ask_size: float = 1.0) -> Book:
    return Book(symbol=SYMBOL, timestamp_ns=int(second * NS), bids=((bid, bid_size),), asks=((ask, ask_size),))


def bullish(second: float) -> Book:
    """A tight book with three times more size bid than offered: imbalance +0.5."""
    return book(second, bid_size=3.0)


def fill(second: float, side: Side, price: float = 100.0, quantity: float = 1.0) -> Fill:
    return Fill(
        fill_id=f"f{second}-{side.value}",
        order_id="o1",
        symbol=SYMBOL,
        side=side,
        price=price,
        quantity=quantity,
        timestamp_ns=int(second * NS),
    )


def update(second: float, status: str, side: Side = Side.BUY, client_order_id: str = "order-1") -> OrderUpdate:
    """The engine's word that an order of ours ended unfilled (sdk.testing numbers them order-1, ...)."""
    return OrderUpdate(
        client_order_id=client_order_id, symbol=SYMBOL, side=side, status=OrderUpdateStatus(status), quantity=1.0,
        rule="strategy_orders_per_second" if status == "rejected" else "", timestamp_ns=int(second * NS),
    )  # fmt: skip


def run(events: Sequence[Event], **params: Any) -> RunResult:
    return run_strategy(Scalping(ScalpingConfig.from_mapping(PARAMS | params)), events)


def reasons(result: RunResult) -> list[tuple[Side, str]]:
    return [(s.side, s.metadata["reason"]) for s in result.signals]


class TestEntry:
    def test_buys_on_strong_bid_imbalance(self) -> None:
        """Imbalance >= imbalance_threshold in a tight market sends a market buy of order_size."""
        (signal,) = run([bullish(0)]).signals
        assert (signal.side, signal.quantity, signal.order_type) == (Side.BUY, 1.0, OrderType.MARKET)
        assert signal.metadata["reason"] == "imbalance"

    def test_sells_on_strong_ask_imbalance(self) -> None:
        """Imbalance <= -imbalance_threshold sends a market sell."""
        assert reasons(run([book(0, ask_size=3.0)])) == [(Side.SELL, "imbalance")]

    def test_balanced_book_sends_nothing(self) -> None:
        """A book with imbalance inside the threshold never trades."""
        assert run([book(i, bid_size=1.2) for i in range(100)]).signals == []

    def test_wide_spread_blocks_entry(self) -> None:
        """A market spread above target_spread_bps blocks entry whatever the imbalance."""
        assert run([book(0, bid=99.95, ask=100.05, bid_size=9.0)]).signals == []  # 10 bp wide

    def test_ticks_do_not_enter(self) -> None:
        """Entries need a Book: a Tick's lopsided sizes do not open a scalp."""
        assert (
            run(
                [Tick(symbol=SYMBOL, timestamp_ns=0, bid_price=99.99, bid_size=9.0, ask_price=100.01, ask_size=1.0)]
            ).signals
            == []
        )

    def test_imbalance_counts_depth_levels(self) -> None:
        """Imbalance is summed over the top ``depth`` levels per side."""
        deep = Book(
            symbol=SYMBOL, timestamp_ns=0, bids=((99.99, 1.0), (99.98, 5.0)), asks=((100.01, 1.0), (100.02, 1.0))
        )
        assert len(run([deep]).signals) == 1
        assert run([deep], depth=1).signals == []

    def test_one_entry_while_the_order_is_in_flight(self) -> None:
        """Until the entry fills, further imbalanced books send nothing."""
        assert len(run([bullish(i) for i in range(5)]).signals) == 1

    def test_an_entry_never_heard_of_keeps_blocking(self) -> None:
        """An entry of this instance blocks until its fills or updates say otherwise, however long."""
        assert len(run([bullish(0), bullish(5), bullish(600)], pending_timeout_seconds=1.0).signals) == 1

    @pytest.mark.parametrize("status", ["cancelled", "expired"])
    def test_an_entry_that_ends_unfilled_frees_the_symbol_at_once(self, status: str) -> None:
        """Cancelled or expired: the next imbalanced book enters again, and the ending is logged."""
        result = run([bullish(0), update(1, status), bullish(1)])
        assert result.signal_events == [0, 2]
        [logged] = [data for _, event, data in result.logs if event == "order_not_filled"]
        assert (logged["status"], logged["entry"]) == (status, True)

    def test_a_rejected_entry_is_not_tried_again_before_retry_after_seconds(self) -> None:
        """A rule that refused the entry is not asked again on every book, only once the wait is over."""
        events: list[Event] = [bullish(0), update(1, "rejected"), bullish(2), bullish(10.5), bullish(11.5)]
        result = run(events, retry_after_seconds=10.0)
        assert result.signal_events == [0, 4]
        [logged] = [data for _, event, data in result.logs if event == "order_not_filled"]
        assert logged["rule"] == "strategy_orders_per_second"

    def test_an_update_of_another_order_changes_nothing(self) -> None:
        """Only the order in flight's own updates free the symbol."""
        assert len(run([bullish(0), update(1, "cancelled", client_order_id="order-9"), bullish(2)]).signals) == 1

    def test_no_second_entry_while_in_a_position(self) -> None:
        """One scalp at a time: while the position is open, imbalance adds nothing."""
        assert len(run([bullish(0), fill(1, Side.BUY), bullish(2), bullish(3)]).signals) == 1

    def test_enters_again_once_flat(self) -> None:
        """After the exit fills, a new imbalance opens a new scalp."""
        events: list[Event] = [
            bullish(0),
            fill(1, Side.BUY),
            book(2, bid=100.11, ask=100.13),
            fill(3, Side.SELL, 100.11),
            bullish(4),
        ]
        assert reasons(run(events)) == [(Side.BUY, "imbalance"), (Side.SELL, "profit_target"), (Side.BUY, "imbalance")]


class TestExit:
    def test_long_exits_at_profit_target(self) -> None:
        """A long is sold whole when the best bid is profit_target above the entry price."""
        result = run([bullish(0), fill(1, Side.BUY, 100.0), book(2, bid=100.11, ask=100.13)])
        assert reasons(result)[1:] == [(Side.SELL, "profit_target")]
        assert result.signals[1].quantity == 1.0

    def test_short_exits_at_profit_target(self) -> None:
        """A short is bought back when the best ask is profit_target below the entry price."""
        events: list[Event] = [book(0, ask_size=3.0), fill(1, Side.SELL, 100.0), book(2, bid=99.87, ask=99.89)]
        assert reasons(run(events))[1:] == [(Side.BUY, "profit_target")]

    def test_long_exits_at_stop_loss(self) -> None:
        """A long is sold when the best bid is stop_loss below the entry price."""
        events: list[Event] = [bullish(0), fill(1, Side.BUY, 100.0), book(2, bid=99.94, ask=99.96)]
        assert reasons(run(events))[1:] == [(Side.SELL, "stop_loss")]

    def test_holds_between_target_and_stop(self) -> None:
        """Inside the stop and the target, before the time limit, the position is held."""
        events: list[Event] = [
            bullish(0),
            fill(1, Side.BUY, 100.0),
            book(2, bid=100.05, ask=100.07),
            book(3, bid=99.96, ask=99.98),
        ]
        assert len(run(events).signals) == 1

    def test_long_is_marked_at_the_bid(self) -> None:
        """The gain is what a sale would get: a mid past the target with a bid short of it holds."""
        events: list[Event] = [bullish(0), fill(1, Side.BUY, 100.0), book(2, bid=100.09, ask=100.13)]
        assert len(run(events).signals) == 1

    def test_exits_at_max_hold_time(self) -> None:
        """A position held max_hold_time_seconds (event time) is closed whatever its P&L."""
        events: list[Event] = [bullish(0), fill(1, Side.BUY), book(60.9), book(61)]
        result = run(events)
        assert reasons(result)[1:] == [(Side.SELL, "max_hold_time")]
        assert result.signal_events == [0, 2]  # the timer fired before book(61): decided after book(60.9)

    def test_hold_time_runs_from_the_entry_fill(self) -> None:
        """The clock starts at the entry fill, not when the entry order was sent."""
        result = run([bullish(0), fill(30, Side.BUY), book(61), book(90)])
        assert result.signal_events == [0, 2]  # the timer before book(90), not book(61)

    def test_timer_enforces_max_hold_time(self) -> None:
        """A Timer event closes a position past its time limit even with no market data."""
        events: list[Event] = [bullish(0), fill(1, Side.BUY), Timer(name="heartbeat", timestamp_ns=61 * NS)]
        assert reasons(run(events))[1:] == [(Side.SELL, "max_hold_time")]

    def test_quiet_market_exits_at_the_hold_deadline(self) -> None:
        """No market data after the entry fill: the hold:<symbol> timer closes it at the deadline."""
        strategy = Scalping(ScalpingConfig.from_mapping(PARAMS))
        result = run_strategy(strategy, [bullish(0), fill(1, Side.BUY)], until_ns=120 * NS)
        assert reasons(result)[1:] == [(Side.SELL, "max_hold_time")]
        assert result.signal_events == [0, -1]

    def test_a_flat_position_cancels_its_timer(self) -> None:
        """Closed at the profit target before the deadline: the timer is dropped, nothing more is sent."""
        events: list[Event] = [bullish(0), fill(1, Side.BUY, 100.0), book(2, bid=100.2, ask=100.22),
                               fill(3, Side.SELL, 100.2)]  # fmt: skip
        result = run_strategy(Scalping(ScalpingConfig.from_mapping(PARAMS)), events, until_ns=200 * NS)
        assert reasons(result)[1:] == [(Side.SELL, "profit_target")]

    def test_a_held_back_exit_is_looked_at_again_a_second_later(self) -> None:
        """The deadline passes with the exit order still in flight: the timer is set again until it can go."""
        events: list[Event] = [
            bullish(0), fill(1, Side.BUY), book(55, bid=99.90, ask=99.92), update(56, "rejected", Side.SELL, "order-2"),
        ]  # fmt: skip
        result = run_strategy(Scalping(ScalpingConfig.from_mapping(PARAMS)), events, until_ns=120 * NS)
        assert reasons(result)[1:] == [(Side.SELL, "stop_loss"), (Side.SELL, "max_hold_time")]
        assert result.signals[-1].metadata["reason"] == "max_hold_time"

    def test_ticks_check_exits(self) -> None:
        """A Tick's best bid and ask trigger exits too."""
        events: list[Event] = [
            bullish(0),
            fill(1, Side.BUY, 100.0),
            Tick(symbol=SYMBOL, timestamp_ns=2 * NS, bid_price=100.11, bid_size=1.0, ask_price=100.13, ask_size=1.0),
        ]
        assert reasons(run(events))[1:] == [(Side.SELL, "profit_target")]

    def test_one_exit_while_it_is_in_flight(self) -> None:
        """Until the exit fills, further updates do not send it again."""
        events: list[Event] = [
            bullish(0),
            fill(1, Side.BUY, 100.0),
            book(2, bid=100.2, ask=100.22),
            book(3, bid=100.2, ask=100.22),
        ]
        assert len(run(events).signals) == 2

    def test_a_rejected_exit_is_sent_again_once_the_wait_is_over(self) -> None:
        """An exit refused by risk is sent again, retry_after_seconds later, while its reason holds."""
        events: list[Event] = [
            bullish(0),
            fill(1, Side.BUY, 100.0),
            book(2, bid=99.9, ask=99.92),
            update(2, "rejected", Side.SELL, "order-2"),
            book(5, bid=99.9, ask=99.92),
            book(13, bid=99.9, ask=99.92),
        ]
        result = run(events, retry_after_seconds=10.0)
        assert reasons(result)[1:] == [(Side.SELL, "stop_loss"), (Side.SELL, "stop_loss")]
        assert result.signal_events[1:] == [2, 5]

    def test_a_cancelled_exit_is_sent_again_at_once(self) -> None:
        """An exit cancelled unfilled (a kill switch, say) is sent again on the next event its reason holds."""
        events: list[Event] = [
            bullish(0),
            fill(1, Side.BUY, 100.0),
            book(2, bid=99.9, ask=99.92),
            update(2, "cancelled", Side.SELL, "order-2"),
            book(3, bid=99.9, ask=99.92),
        ]
        assert run(events).signal_events == [0, 2, 4]


class TestConfig:
    def test_defaults_are_valid(self) -> None:
        """The config builds with no parameters at all."""
        assert ScalpingConfig.from_mapping({}).max_hold_time_seconds == 60.0

    def test_rejects_unknown_key(self) -> None:
        """An unknown parameter is rejected naming it."""
        with pytest.raises(ConfigError, match="unknown key") as err:
            ScalpingConfig.from_mapping({"take_profit": 0.01})
        assert err.value.path == "take_profit"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("target_spread_bps", 0),
            ("profit_target", 0),
            ("profit_target", 10),
            ("stop_loss", -0.01),
            ("max_hold_time_seconds", 0),
            ("max_position", 0),
            ("order_size", 1.0),  # above the default max_position
            ("imbalance_threshold", 1.5),
            ("depth", 0),
            ("depth", "5"),
            ("pending_timeout_seconds", -1),
            ("retry_after_seconds", -1),
        ],
    )
    def test_rejects_bad_value(self, field: str, value: object) -> None:
        """A bad value raises ConfigError naming the field."""
        with pytest.raises(ConfigError) as err:
            ScalpingConfig.from_mapping({field: value}, path="strategies.scalping")
        assert err.value.path == f"strategies.scalping.{field}"


class TestState:
    def test_save_load_round_trip(self) -> None:
        """The entry time carries over, so the time limit still counts from the original entry fill."""
        first = run([bullish(0), fill(1, Side.BUY)])
        later: list[Event] = [
            Position(symbol=SYMBOL, quantity=1.0, avg_entry_price=100.0, timestamp_ns=1 * NS),
            book(61),
        ]
        restored = run_strategy(Scalping(ScalpingConfig.from_mapping(PARAMS)), later, restore=first.state)
        fresh = run_strategy(Scalping(ScalpingConfig.from_mapping(PARAMS)), later)
        assert (reasons(restored), fresh.signals) == ([(Side.SELL, "max_hold_time")], [])
        assert json.loads(first.state)["symbols"][SYMBOL] == {"entry_ns": 1 * NS, "pending": None}

    def test_a_restored_position_gets_its_timer_again(self) -> None:
        """A new runner has no timers: on_start sets the restored position's deadline again."""
        first = run([bullish(0), fill(1, Side.BUY)])
        position = Position(symbol=SYMBOL, quantity=1.0, avg_entry_price=100.0, timestamp_ns=2 * NS)
        restored = run_strategy(Scalping(ScalpingConfig.from_mapping(PARAMS)), [position],
                                restore=first.state, until_ns=120 * NS)  # fmt: skip
        assert reasons(restored) == [(Side.SELL, "max_hold_time")]
        assert restored.signal_events == [-1]

    def test_an_order_in_flight_is_carried_with_its_id(self) -> None:
        """The order in flight is saved under its client order id; its update ends it in the new instance."""
        first = run([bullish(0)])
        assert json.loads(first.state)["symbols"][SYMBOL]["pending"] == ["order-1", "buy", 1.0, 0, True]
        restored = run_strategy(
            Scalping(ScalpingConfig.from_mapping(PARAMS)), [update(1, "cancelled"), bullish(2)], restore=first.state
        )
        assert len(restored.signals) == 1

    def test_a_restored_order_that_hears_nothing_stops_blocking_after_the_timeout(self) -> None:
        """The safety net: a restored order with no news pending_timeout_seconds after it was sent (its
        updates went to the runner that saved it) is dropped with a warning."""
        first = run([bullish(0)])
        later = [bullish(5), bullish(11)]
        result = run_strategy(
            Scalping(ScalpingConfig.from_mapping(PARAMS | {"pending_timeout_seconds": 10.0})), later,
            restore=first.state,
        )  # fmt: skip
        assert result.signal_events == [1]
        assert ("warning", "pending_order_expired") in [(level, event) for level, event, _ in result.logs]

    def test_unreadable_state_is_discarded(self) -> None:
        """State this version cannot read is dropped with a warning."""
        result = run_strategy(Scalping(ScalpingConfig.from_mapping(PARAMS)), [bullish(0)], restore=b"[]")
        assert ("warning", "state_discarded") in [(level, event) for level, event, _ in result.logs]


class TestPlugin:
    def test_hook_returns_the_strategy_class(self) -> None:
        """The package's strategy_engine_strategies hook returns [Scalping], named "scalping"."""
        pm = pluggy.PluginManager("strategy_engine")
        pm.add_hookspecs(StrategyEngineSpec)
        pm.register(scalping)
        pm.check_pending()
        assert pm.hook.strategy_engine_strategies() == [[Scalping]]
        assert (Scalping.name, Scalping.Config) == ("scalping", ScalpingConfig)

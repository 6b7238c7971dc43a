"""Unit tests of the market-making strategy and its pricing, through ``sdk.testing.run_strategy``."""

from __future__ import annotations

import json
from typing import Any, Sequence

import pluggy
import pytest

import market_making
from market_making import MarketMaking, MarketMakingConfig
from market_making.quoting import quotes
from sdk import (
    Book,
    Cancel,
    Candle,
    ConfigError,
    Event,
    Fill,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Side,
    Signal,
    StrategyEngineSpec,
    Tick,
    Trade,
)
from sdk.testing import RunResult, run_strategy

SYMBOL = "BTCUSDT"
NS = 1_000_000_000
# spread 2 %: around a mid of 100 the flat quotes are 99 / 101; full inventory (3) shifts them 1 %.
PARAMS: dict[str, Any] = {
    "spread": 0.02,
    "order_size": 1.0,
    "max_inventory": 3.0,
    "inventory_skew": 0.01,
    "min_spread_bps": 0.0,
    "requote_threshold_bps": 1.0,
}


def config(**params: Any) -> MarketMakingConfig:
    return MarketMakingConfig.from_mapping(PARAMS | params)


def tick(second: float, bid: float = 99.9, ask: float = 100.1, symbol: str = SYMBOL) -> Tick:
    return Tick(symbol=symbol, timestamp_ns=int(second * NS), bid_price=bid, bid_size=1.0, ask_price=ask, ask_size=1.0)


def fill(second: float, side: Side, quantity: float, price: float = 100.0) -> Fill:
    return Fill(
        fill_id=f"f{second}-{side.value}",
        order_id="o1",
        symbol=SYMBOL,
        side=side,
        price=price,
        quantity=quantity,
        timestamp_ns=int(second * NS),
    )


def run(events: Sequence[Event], **params: Any) -> RunResult:
    return run_strategy(MarketMaking(config(**params)), events)


def by_slot(signals: list[Signal]) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for signal in signals:
        out.setdefault(signal.slot, []).append(signal.price)
    return out


class TestQuoting:
    def test_quotes_both_sides_around_the_mid(self) -> None:
        """The first update sends a limit bid in slot "bid" and a limit ask in slot "ask", spread/2 from the mid."""
        bid, ask = run([tick(0)]).signals
        assert (bid.side, bid.order_type, bid.quantity, bid.slot) == (Side.BUY, OrderType.LIMIT, 1.0, "bid")
        assert (ask.side, ask.order_type, ask.quantity, ask.slot) == (Side.SELL, OrderType.LIMIT, 1.0, "ask")
        assert [bid.price, ask.price] == [pytest.approx(99.0), pytest.approx(101.0)]

    def test_new_quote_replaces_the_old_through_its_slot(self) -> None:
        """When the mid moves, each side is requoted in the same slot, with no extra orders or cancels."""
        result = run([tick(0), tick(1, 101.9, 102.1)])
        assert by_slot(result.signals) == {
            "bid": [pytest.approx(99.0), pytest.approx(100.98)],
            "ask": [pytest.approx(101.0), pytest.approx(103.02)],
        }
        assert result.cancels == []

    def test_flat_market_quotes_once(self) -> None:
        """Updates at an unchanged price send no further orders."""
        assert len(run([tick(i) for i in range(50)]).signals) == 2

    def test_small_move_keeps_working_quotes(self) -> None:
        """A move of at most requote_threshold_bps does not requote."""
        assert len(run([tick(0), tick(1, 99.905, 100.105)]).signals) == 2

    def test_book_updates_quote_like_ticks(self) -> None:
        """A Book's best levels are used like a Tick's bid and ask."""
        book = Book(symbol=SYMBOL, timestamp_ns=0, bids=((99.9, 2.0), (99.8, 1.0)), asks=((100.1, 1.0),))
        assert by_slot(run([book]).signals) == {"bid": [pytest.approx(99.0)], "ask": [pytest.approx(101.0)]}

    def test_trades_and_candles_are_ignored(self) -> None:
        """Trades and candles carry no two-sided market, so they quote nothing."""
        events: list[Event] = [
            Trade(symbol=SYMBOL, timestamp_ns=0, last_price=100.0, volume=1.0),
            Candle(symbol=SYMBOL, timestamp_ns=NS, open=100.0, high=101.0, low=99.0, close=100.0),
        ]
        assert run(events).signals == []

    def test_symbols_are_quoted_separately(self) -> None:
        """Each symbol gets its own pair of quotes."""
        result = run([tick(0), tick(0, 49.95, 50.05, symbol="ETHUSDT")])
        assert [(s.symbol, s.slot) for s in result.signals] == [
            (SYMBOL, "bid"),
            (SYMBOL, "ask"),
            ("ETHUSDT", "bid"),
            ("ETHUSDT", "ask"),
        ]


class TestNarrowMarket:
    def test_refuses_to_quote_a_narrow_market(self) -> None:
        """A market spread under min_spread_bps sends no quotes."""
        result = run([tick(0, 99.99, 100.01)], min_spread_bps=5.0)  # 2 bp wide
        assert (result.signals, result.cancels) == ([], [])

    def test_pulls_quotes_when_the_market_narrows(self) -> None:
        """Working quotes are cancelled once when the market spread falls under min_spread_bps."""
        events: list[Event] = [tick(0), tick(1, 99.99, 100.01), tick(2, 99.99, 100.01)]
        result = run(events, min_spread_bps=5.0)
        assert len(result.signals) == 2
        assert result.cancels == [Cancel(symbol=SYMBOL, slot="bid"), Cancel(symbol=SYMBOL, slot="ask")]

    def test_requotes_when_the_market_widens_again(self) -> None:
        """After a narrow spell, a wide enough market is quoted again."""
        events: list[Event] = [tick(0), tick(1, 99.99, 100.01), tick(2)]
        assert len(run(events, min_spread_bps=5.0).signals) == 4


class TestInventory:
    def test_long_inventory_skews_quotes_down(self) -> None:
        """Long one third of max_inventory, both quotes sit a third of inventory_skew lower."""
        result = run([fill(0, Side.BUY, 1.0), tick(1)])
        assert by_slot(result.signals) == {"bid": [pytest.approx(98.0 + 2 / 3)], "ask": [pytest.approx(100.0 + 2 / 3)]}

    def test_short_inventory_skews_quotes_up(self) -> None:
        """Short, both quotes sit higher."""
        result = run([fill(0, Side.SELL, 1.5), tick(1)])
        assert by_slot(result.signals) == {"bid": [pytest.approx(99.5)], "ask": [pytest.approx(101.5)]}

    def test_stops_bidding_at_max_inventory(self) -> None:
        """A bid whose fill would pass max_inventory is not sent, and the working bid is cancelled."""
        result = run([tick(0), fill(1, Side.BUY, 2.5), tick(2)])
        assert [s.slot for s in result.signals] == ["bid", "ask", "ask"]
        assert result.cancels == [Cancel(symbol=SYMBOL, slot="bid")]

    def test_stops_offering_at_max_short_inventory(self) -> None:
        """An ask whose fill would take the inventory below -max_inventory is not sent."""
        result = run([fill(0, Side.SELL, 3.0), tick(1)])
        assert [s.slot for s in result.signals] == ["bid"]

    def test_side_comes_back_when_inventory_allows(self) -> None:
        """Once fills bring the inventory back within limits, the stopped side is quoted again."""
        result = run([fill(0, Side.BUY, 3.0), tick(1), fill(2, Side.SELL, 1.0), tick(3)])
        assert [s.slot for s in result.signals] == ["ask", "bid", "ask"]

    def test_fill_makes_its_side_requote(self) -> None:
        """A fill marks its side stale, so the next update sends that side again even at the same price."""
        result = run([tick(0), fill(1, Side.BUY, 0.5), tick(2)], inventory_skew=0.0)
        assert [s.slot for s in result.signals] == ["bid", "ask", "bid"]


def update(second: float, order: str, slot: str, status: OrderUpdateStatus, rule: str = "") -> OrderUpdate:
    """What the engine says about one of our quotes (sdk.testing names them order-1, order-2, ...)."""
    side = Side.BUY if slot == "bid" else Side.SELL
    return OrderUpdate(client_order_id=order, symbol=SYMBOL, side=side, slot=slot, status=status, quantity=1.0,
                       rule=rule, timestamp_ns=int(second * NS))  # fmt: skip


class TestOrderUpdates:
    def test_a_rejected_quote_is_sent_again_at_the_same_price(self) -> None:
        """Risk refuses the bid (order-1): the next tick quotes it again although nothing moved; the
        ask (order-2), still working, is left alone."""
        rejected = update(1, "order-1", "bid", OrderUpdateStatus.REJECTED, rule="max_order_rate")
        result = run([tick(0), rejected, tick(2)])
        assert [(s.slot, s.price) for s in result.signals] == [("bid", 99.0), ("ask", 101.0), ("bid", 99.0)]
        assert ("info", "quote_not_working") in [(level, event) for level, event, _ in result.logs]

    @pytest.mark.parametrize("status", [OrderUpdateStatus.CANCELLED, OrderUpdateStatus.EXPIRED])
    def test_a_quote_that_ends_unfilled_is_sent_again(self, status: OrderUpdateStatus) -> None:
        result = run([tick(0), update(1, "order-2", "ask", status), tick(2)])
        assert [s.slot for s in result.signals] == ["bid", "ask", "ask"]

    def test_the_cancel_of_a_replaced_quote_changes_nothing(self) -> None:
        """A move requotes both sides (order-3, order-4 replace order-1, order-2); the replaced orders'
        ``cancelled`` arrive after, and the next tick at the same prices sends nothing."""
        events: list[Event] = [tick(0), tick(1, bid=101.9, ask=102.1)]
        events += [update(1.5, "order-1", "bid", OrderUpdateStatus.CANCELLED)]
        events += [update(1.5, "order-2", "ask", OrderUpdateStatus.CANCELLED), tick(2, bid=101.9, ask=102.1)]
        result = run(events)
        assert [s.slot for s in result.signals] == ["bid", "ask", "bid", "ask"]

    def test_accepted_and_filled_updates_leave_the_quote_working(self) -> None:
        """Only an unfilled end empties a slot; a fill already marks it stale through ``on_fill``."""
        events = [tick(0), update(0.5, "order-1", "bid", OrderUpdateStatus.ACCEPTED), tick(1)]
        assert [s.slot for s in run(events).signals] == ["bid", "ask"]

    def test_the_working_order_survives_a_reload(self) -> None:
        """The slot's order id is in the saved state: a restored instance still knows which order
        a rejection is about."""
        first = run([tick(0)])
        restored = run_strategy(
            MarketMaking(config()), [update(1, "order-1", "bid", OrderUpdateStatus.REJECTED), tick(2)],
            restore=first.state,
        )  # fmt: skip
        assert [s.slot for s in restored.signals] == ["bid"]


class TestPricing:
    def test_quotes_never_cross_the_market(self) -> None:
        """A skew large enough to cross the market puts the quote back at the touch on its own side."""
        cfg = config(inventory_skew=0.3)
        assert quotes(cfg, 99.9, 100.1, inventory=-2.0).bid == 99.9
        assert quotes(cfg, 99.9, 100.1, inventory=2.0).ask == 100.1

    def test_crossed_book_is_not_quoted(self) -> None:
        """A crossed market (bid above ask) gives no quotes."""
        result = quotes(config(), 100.2, 100.1, inventory=0.0)
        assert (result.bid, result.ask) == (None, None)

    def test_skew_is_capped_at_full_inventory(self) -> None:
        """An inventory past max_inventory skews no further than inventory_skew."""
        cfg = config(max_inventory=3.0)
        assert quotes(cfg, 99.9, 100.1, inventory=-10.0).bid == pytest.approx(100.0)


class TestConfig:
    def test_defaults_are_valid(self) -> None:
        """The config builds with no parameters at all."""
        assert MarketMakingConfig.from_mapping({}).spread == 0.002

    def test_rejects_unknown_key(self) -> None:
        """An unknown parameter is rejected naming it, with a hint."""
        with pytest.raises(ConfigError, match="did you mean 'spread'") as err:
            MarketMakingConfig.from_mapping({"spreads": 0.01})
        assert err.value.path == "spreads"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("spread", 0),
            ("spread", 1.5),
            ("spread", "wide"),
            ("order_size", 0),
            ("order_size", 0.5),  # above the default max_inventory
            ("max_inventory", -1),
            ("inventory_skew", -0.1),
            ("inventory_skew", 1.0),
            ("min_spread_bps", -1),
            ("requote_threshold_bps", -1),
        ],
    )
    def test_rejects_bad_value(self, field: str, value: object) -> None:
        """A bad value raises ConfigError naming the field."""
        with pytest.raises(ConfigError) as err:
            MarketMakingConfig.from_mapping({field: value}, path="strategies.mm")
        assert err.value.path == f"strategies.mm.{field}"


class TestState:
    def test_save_load_round_trip(self) -> None:
        """The working quotes carry over: a restored instance does not resend them at the same price."""
        first = run([tick(0)])
        restored = run_strategy(MarketMaking(config()), [tick(1)], restore=first.state)
        assert restored.signals == []
        assert json.loads(restored.state) == json.loads(first.state)

    def test_a_version_1_state_is_still_read(self) -> None:
        """State saved before the slots kept their order ids: the quotes carry over, ids unknown."""
        state = {"version": 1, "symbols": {SYMBOL: {"bid": [99.0, False], "ask": [101.0, False]}}}
        restored = run_strategy(MarketMaking(config()), [tick(1)], restore=json.dumps(state).encode())
        assert restored.signals == []
        assert json.loads(restored.state)["symbols"][SYMBOL] == {"bid": [99.0, False, ""], "ask": [101.0, False, ""]}

    def test_unreadable_state_is_discarded(self) -> None:
        """State this version cannot read is dropped with a warning; quoting starts afresh."""
        result = run_strategy(MarketMaking(config()), [tick(0)], restore=b"not json")
        assert len(result.signals) == 2
        assert ("warning", "state_discarded") in [(level, event) for level, event, _ in result.logs]


class TestPlugin:
    def test_hook_returns_the_strategy_class(self) -> None:
        """The package's strategy_engine_strategies hook returns [MarketMaking], named "market_making"."""
        pm = pluggy.PluginManager("strategy_engine")
        pm.add_hookspecs(StrategyEngineSpec)
        pm.register(market_making)
        pm.check_pending()
        assert pm.hook.strategy_engine_strategies() == [[MarketMaking]]
        assert (MarketMaking.name, MarketMaking.Config) == ("market_making", MarketMakingConfig)

"""Unit tests of the momentum strategy, run on crafted events through ``sdk.testing.run_strategy``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pluggy
import pytest

import momentum
from momentum import Momentum, MomentumConfig
from sdk import Candle, ConfigError, Fill, OrderType, OrderUpdate, OrderUpdateStatus, Side, Tick, Trade
from sdk.events import Event
from sdk.hooks import StrategyEngineSpec
from sdk.testing import run_strategy

SYMBOL = "BTCUSDT"
NS = 1_000_000_000


def candle(second: float, close: float, symbol: str = SYMBOL) -> Candle:
    return Candle(symbol=symbol, timestamp_ns=int(second * NS), open=close, high=close, low=close, close=close)


def candles(*closes: float, start: int = 0) -> list[Event]:
    """One candle a minute (event time), closing at each price in turn."""
    return [candle((start + i) * 60, close) for i, close in enumerate(closes)]


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


def update(
    second: float, status: str, client_order_id: str = "order-1", quantity: float = 1.0, filled: float = 0.0
) -> OrderUpdate:
    """What the engine tells of an order of ours (sdk.testing numbers them order-1, order-2, ...)."""
    done = status not in ("accepted", "partially_filled")
    return OrderUpdate(
        client_order_id=client_order_id, symbol=SYMBOL, side=Side.BUY, status=OrderUpdateStatus(status),
        quantity=quantity, filled_quantity=filled, remaining_quantity=0.0 if done else quantity - filled,
        rule="max_position_size" if status == "rejected" else "", timestamp_ns=int(second * NS),
    )  # fmt: skip


def strategy(**params: Any) -> Momentum:
    base: dict[str, Any] = {"lookback_period": 3, "threshold": 0.02, "max_position": 1.0, "quantity": 1.0}
    return Momentum(MomentumConfig.from_mapping(base | params))


class TestEntries:
    def test_buys_when_return_crosses_above_threshold(self) -> None:
        """A lookback return above +threshold sends one market buy of ``quantity``."""
        result = run_strategy(strategy(), candles(100, 100, 100, 103))
        assert len(result.signals) == 1
        signal = result.signals[0]
        assert (signal.symbol, signal.side, signal.quantity, signal.order_type) == (
            SYMBOL,
            Side.BUY,
            1.0,
            OrderType.MARKET,
        )
        assert result.signal_events == [3]

    def test_sells_when_return_crosses_below_threshold(self) -> None:
        """A lookback return below -threshold sends one market sell."""
        result = run_strategy(strategy(), candles(100, 100, 100, 97))
        assert [(s.side, s.quantity) for s in result.signals] == [(Side.SELL, 1.0)]

    def test_flat_market_sends_nothing(self) -> None:
        """Prices that do not move produce no signal."""
        assert run_strategy(strategy(), candles(*[100.0] * 30)).signals == []

    def test_move_within_threshold_sends_nothing(self) -> None:
        """A return inside (-threshold, +threshold) is neutral."""
        assert run_strategy(strategy(), candles(100, 100, 100, 101.5, 100, 98.5)).signals == []

    def test_waits_for_a_full_lookback(self) -> None:
        """With fewer than lookback_period + 1 prices there is no return yet, hence no signal."""
        assert run_strategy(strategy(), candles(100, 110, 120)).signals == []

    def test_return_spans_lookback_period(self) -> None:
        """The return compares the latest price with the one lookback_period observations earlier."""
        # 100 -> 103 is +3 %, but over the last 3 candles (101 -> 103) it is under 2 %.
        result = run_strategy(strategy(), candles(100, 101, 101.5, 102, 103))
        assert [result.signal_events, [s.side for s in result.signals]] == [[3], [Side.BUY]]


class TestNoRepeats:
    def test_one_order_per_regime(self) -> None:
        """While momentum stays past the threshold, no further order is sent."""
        events = [*candles(100, 100, 100, 103), fill(200, Side.BUY, 1.0), *candles(106, 110, 115, 121, start=4)]
        assert len(run_strategy(strategy(max_position=5.0), events).signals) == 1

    def test_new_crossing_after_neutral_signals_again(self) -> None:
        """Momentum that goes neutral and crosses again sends another order (fills cleared the first)."""
        events = [
            *candles(100, 100, 100, 103),
            fill(190, Side.BUY, 1.0, 103),
            *candles(103, 103, 103, 106.5, start=4),
        ]
        result = run_strategy(strategy(max_position=2.0), events)
        assert [(i, s.side) for i, s in zip(result.signal_events, result.signals, strict=True)] == [
            (3, Side.BUY),
            (8, Side.BUY),
        ]

    def test_reversal_sells(self) -> None:
        """A crossing from up to down sends a sell."""
        result = run_strategy(strategy(), candles(100, 100, 100, 103, 103, 103, 99))
        assert [s.side for s in result.signals] == [Side.BUY, Side.SELL]


class TestPositionLimit:
    def test_no_buy_at_max_position(self) -> None:
        """A fresh crossing up sends nothing when the position is already at +max_position."""
        events = [fill(0, Side.BUY, 1.0), *candles(100, 100, 100, 103, start=1)]
        assert run_strategy(strategy(), events).signals == []

    def test_order_is_cut_to_fit_the_limit(self) -> None:
        """The order that reaches max_position is cut down to the room left."""
        events = [fill(0, Side.BUY, 0.75), *candles(100, 100, 100, 103, start=1)]
        result = run_strategy(strategy(), events)
        assert [s.quantity for s in result.signals] == [pytest.approx(0.25)]

    def test_sells_down_to_minus_max_position_only(self) -> None:
        """Sells may take a long position short, but never below -max_position."""
        events = [
            fill(0, Side.BUY, 1.0),
            *candles(100, 100, 100, 97, start=1),  # sell 1: flat
            fill(290, Side.SELL, 1.0, 97),
            *candles(97, 97, 97, 94, start=5),  # sell 1: short 1
            fill(530, Side.SELL, 1.0, 94),
            *candles(94, 94, 94, 91, start=9),  # at -max_position: nothing
        ]
        result = run_strategy(strategy(), events)
        assert [(s.side, s.quantity) for s in result.signals] == [(Side.SELL, 1.0), (Side.SELL, 1.0)]

    def test_unfilled_order_counts_toward_the_limit(self) -> None:
        """An order sent and not yet filled blocks a second one that would pass max_position."""
        events = candles(100, 100, 100, 103, 103, 103, 103, 106.5)
        assert len(run_strategy(strategy(), events).signals) == 1

    def test_an_order_never_heard_of_keeps_counting(self) -> None:
        """An order of this instance is pending until its fills or updates say otherwise, however long
        that takes (a timeout could double the position of an order the venue is slow to answer)."""
        events = [*candles(100, 100, 100, 103), *candles(103, 103, 103, 106.5, start=1000)]
        result = run_strategy(strategy(pending_timeout_seconds=1.0), events)
        assert len(result.signals) == 1

    @pytest.mark.parametrize("status", ["rejected", "cancelled", "expired"])
    def test_an_order_that_ends_unfilled_stops_counting_at_once(self, status: str) -> None:
        """Told that its order ended unfilled, the strategy has the room again at the next crossing."""
        events = [*candles(100, 100, 100, 103), update(181, status), *candles(103, 103, 103, 106.5, start=4)]
        result = run_strategy(strategy(), events)
        assert [(s.side, s.quantity) for s in result.signals] == [(Side.BUY, 1.0), (Side.BUY, 1.0)]
        [logged] = [data for _, event, data in result.logs if event == "order_not_filled"]
        assert (logged["status"], logged["unfilled"]) == (status, 1.0)
        assert logged["rule"] == ("max_position_size" if status == "rejected" else "")

    def test_a_partly_filled_order_that_is_cancelled_keeps_its_fill(self) -> None:
        """Half filled, then cancelled: the fill is in the position, the rest no longer pending."""
        events = [
            *candles(100, 100, 100, 103),
            fill(181, Side.BUY, 0.5, 103),
            update(181, "partially_filled", filled=0.5),
            update(182, "cancelled", filled=0.5),
            *candles(103, 103, 103, 106.5, start=4),
        ]
        result = run_strategy(strategy(), events)
        assert [s.quantity for s in result.signals] == [1.0, pytest.approx(0.5)]

    def test_an_update_says_what_remains_of_an_order(self) -> None:
        """A partial fill's update sets the order's pending to what remains at the venue."""
        events = [*candles(100, 100, 100, 103), update(181, "partially_filled", filled=0.25)]
        result = run_strategy(strategy(max_position=1.5), [*events, *candles(103, 103, 103, 106.5, start=4)])
        # No fill event given, so position 0; pending 0.75 (not 1.0) leaves room for 0.75 (not 0.5).
        assert [s.quantity for s in result.signals] == [1.0, pytest.approx(0.75)]

    def test_another_orders_update_changes_nothing(self) -> None:
        """An update for an order this instance does not hold (an earlier runner's) is ignored."""
        events = [
            *candles(100, 100, 100, 103),
            update(181, "rejected", "order-9"),
            *candles(103, 103, 103, 106.5, start=4),
        ]
        assert len(run_strategy(strategy(), events).signals) == 1


class TestPriceSources:
    def test_trade_source_uses_trade_prices_only(self) -> None:
        """With price_source "trade", trade prices form the lookback and candles are ignored."""
        trades = [
            Trade(symbol=SYMBOL, timestamp_ns=i * NS, last_price=price, volume=0.1)
            for i, price in enumerate((100, 100, 100, 103))
        ]
        assert len(run_strategy(strategy(price_source="trade"), trades).signals) == 1
        assert run_strategy(strategy(price_source="trade"), candles(100, 100, 100, 103)).signals == []

    def test_tick_source_uses_mids(self) -> None:
        """With price_source "tick", the lookback holds bid/ask mids."""
        ticks = [
            Tick(
                symbol=SYMBOL, timestamp_ns=i * NS, bid_price=mid - 0.5, bid_size=1.0, ask_price=mid + 0.5, ask_size=1.0
            )
            for i, mid in enumerate((100, 100, 100, 97))
        ]
        assert [s.side for s in run_strategy(strategy(price_source="tick"), ticks).signals] == [Side.SELL]

    def test_symbols_have_separate_lookbacks(self) -> None:
        """Prices of one symbol never mix into another symbol's lookback."""
        events: list[Event] = []
        for i, (btc, eth) in enumerate(zip((100, 100, 100, 103), (50, 50, 50, 50), strict=True)):
            events += [candle(i * 60, btc), candle(i * 60, eth, "ETHUSDT")]
        assert [s.symbol for s in run_strategy(strategy(), events).signals] == [SYMBOL]

    def test_reads_seed_market_data_file(self, tmp_path: Path) -> None:
        """Candles in the seed's JSON-lines market-data format drive the strategy like Candle events."""
        lines = [
            {
                "symbol": SYMBOL,
                "timestamp": f"2022-09-05T00:0{i}:00.000Z",
                "sequence": i + 1,
                "type": "candle",
                "open": c,
                "high": c,
                "low": c,
                "close": c,
                "volume": 1.5,
                "last_price": c,
            }
            for i, c in enumerate((100, 100, 100, 103))
        ]
        path = tmp_path / "candles.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        assert [s.side for s in run_strategy(strategy(), path).signals] == [Side.BUY]


class TestConfig:
    def test_defaults_are_valid(self) -> None:
        """The config builds with no parameters at all."""
        assert MomentumConfig.from_mapping({}).lookback_period == 20

    def test_rejects_unknown_key(self) -> None:
        """An unknown parameter is rejected naming it."""
        with pytest.raises(ConfigError, match="lookback") as err:
            MomentumConfig.from_mapping({"lookback": 10})
        assert err.value.path == "lookback"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("lookback_period", 0),
            ("lookback_period", 2.5),
            ("threshold", 0),
            ("threshold", 2),
            ("threshold", "0.02"),
            ("max_position", -1),
            ("quantity", 0),
            ("quantity", 5),
            ("price_source", "close"),
            ("pending_timeout_seconds", 0),
        ],
    )
    def test_rejects_bad_value(self, field: str, value: object) -> None:
        """A bad value raises ConfigError naming the field."""
        with pytest.raises(ConfigError) as err:
            MomentumConfig.from_mapping({field: value}, path="strategies.momentum")
        assert err.value.path == f"strategies.momentum.{field}"

    def test_direct_construction_is_validated(self) -> None:
        """Building the dataclass directly checks the same rules."""
        with pytest.raises(ConfigError, match="threshold"):
            MomentumConfig(threshold=-0.1)


class TestState:
    def test_save_load_round_trip(self) -> None:
        """Saved state (lookback prices, regime, orders in flight) carries over to a new instance."""
        first = run_strategy(strategy(), candles(100, 100, 100))
        restored = run_strategy(strategy(), candles(103, start=3), restore=first.state)
        fresh = run_strategy(strategy(), candles(103, start=3))
        assert ([s.side for s in restored.signals], fresh.signals) == ([Side.BUY], [])
        assert json.loads(restored.state)["symbols"][SYMBOL]["orders"] == {"order-1": [1.0, 180 * NS]}

    def test_a_restored_order_still_hears_its_updates(self) -> None:
        """An order carried over a hot reload is the new instance's: its update ends it there."""
        first = run_strategy(strategy(), candles(100, 100, 100, 103))
        later = [update(200, "rejected"), *candles(103, 103, 103, 106.5, start=4)]
        assert len(run_strategy(strategy(), later, restore=first.state).signals) == 1

    def test_a_restored_order_that_hears_nothing_is_dropped_after_the_timeout(self) -> None:
        """The safety net: a restored order with no news pending_timeout_seconds after it was sent
        (its updates went to the runner that saved it) stops counting, with a warning."""
        first = run_strategy(strategy(), candles(100, 100, 100, 103))
        later = candles(103, 103, 103, 106.5, start=4)  # the crossing comes at 420 s, 240 s after the order
        kept = run_strategy(strategy(pending_timeout_seconds=600.0), later, restore=first.state)
        dropped = run_strategy(strategy(pending_timeout_seconds=120.0), later, restore=first.state)
        assert (len(kept.signals), len(dropped.signals)) == (0, 1)
        assert ("warning", "pending_order_expired") in [(level, event) for level, event, _ in dropped.logs]

    def test_unreadable_state_is_discarded(self) -> None:
        """State this version cannot read is dropped with a warning, and the strategy starts fresh."""
        result = run_strategy(strategy(), candles(100), restore=b'{"version": 99}')
        assert ("warning", "state_discarded") in [(level, event) for level, event, _ in result.logs]


class TestPlugin:
    def test_hook_returns_the_strategy_class(self) -> None:
        """The package's strategy_engine_strategies hook returns [Momentum], named "momentum"."""
        pm = pluggy.PluginManager("strategy_engine")
        pm.add_hookspecs(StrategyEngineSpec)
        pm.register(momentum)
        pm.check_pending()
        assert pm.hook.strategy_engine_strategies() == [[Momentum]]
        assert (Momentum.name, Momentum.Config) == ("momentum", MomentumConfig)

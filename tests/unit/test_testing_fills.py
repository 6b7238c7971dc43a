"""sdk.testing's fill model: hand-computed fixtures for each rule, and the order of what a strategy hears."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from sdk import (
    Book,
    Cancel,
    Candle,
    ConfigError,
    Event,
    Fill,
    MarketEvent,
    OrderType,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    SdkError,
    Side,
    Signal,
    Strategy,
    StrategyConfig,
    Tick,
    TimeInForce,
    Trade,
)
from sdk.testing import FillModel, RunResult, run_strategy

T0 = 1_704_067_200 * 10**9
S = 10**9
BUY, SELL = Side.BUY, Side.SELL
ACCEPTED, FILLED, CANCELLED, REJECTED = (
    OrderUpdateStatus.ACCEPTED, OrderUpdateStatus.FILLED, OrderUpdateStatus.CANCELLED, OrderUpdateStatus.REJECTED,
)  # fmt: skip

Action = Signal | Cancel


def tick(i: int, bid: float, ask: float, *, symbol: str = "BTCUSDT", size: float = 1.0) -> Tick:
    return Tick(symbol=symbol, timestamp_ns=T0 + i * S, bid_price=bid, bid_size=size, ask_price=ask, ask_size=size)


def trade(i: int, price: float) -> Trade:
    return Trade(symbol="BTCUSDT", timestamp_ns=T0 + i * S, last_price=price, volume=0.5)


def candle(i: int, o: float, h: float, low: float, c: float) -> Candle:
    return Candle(symbol="BTCUSDT", timestamp_ns=T0 + i * 60 * S, open=o, high=h, low=low, close=c, volume=10.0)


def market(side: Side, quantity: float = 1.0, **extra: object) -> Signal:
    return Signal(symbol="BTCUSDT", side=side, quantity=quantity, **extra)  # type: ignore[arg-type]


def limit(side: Side, price: float, quantity: float = 1.0, **extra: object) -> Signal:
    return Signal(symbol="BTCUSDT", side=side, quantity=quantity, order_type=OrderType.LIMIT, price=price, **extra)  # type: ignore[arg-type]


class Scripted(Strategy[StrategyConfig]):
    """On its n-th market event (0-based) does ``plan[n]``; records everything it hears, in order."""

    name = "scripted"

    def __init__(self, plan: dict[int, Sequence[Action]] | None = None) -> None:
        super().__init__(StrategyConfig())
        self.plan = plan or {}
        self.heard: list[tuple[object, ...]] = []
        self.markets = 0

    def _market(self, event: MarketEvent) -> None:
        self.heard.append((event.kind, event.timestamp_ns))
        for action in self.plan.get(self.markets, ()):
            if isinstance(action, Cancel):
                self.cancel(action.symbol, action.slot)
            else:
                self.emit(action)
        self.markets += 1

    def on_tick(self, tick: Tick) -> None:
        self._market(tick)

    def on_trade(self, trade: Trade) -> None:
        self._market(trade)

    def on_candle(self, candle: Candle) -> None:
        self._market(candle)

    def on_fill(self, fill: Fill) -> None:
        self.heard.append(("fill", fill.order_id, fill.side, fill.price, fill.quantity, fill.timestamp_ns))

    def on_position(self, position: Position) -> None:
        self.heard.append(("position", position.quantity, position.avg_entry_price))

    def on_order(self, update: OrderUpdate) -> None:
        self.heard.append(("order", update.client_order_id, update.status))


def run(plan: dict[int, Sequence[Action]], events: Sequence[Event], **model: object) -> tuple[Scripted, RunResult]:
    strategy = Scripted(plan)
    return strategy, run_strategy(strategy, events, fills=FillModel(**model))  # type: ignore[arg-type]


def fills_of(result: RunResult) -> list[tuple[str, Side, float, float]]:
    return [(f.order_id, f.side, f.price, f.quantity) for f in result.fills]


class TestMarketOrders:
    def test_tick_fills_at_the_next_touch_in_the_engine_order(self) -> None:
        """A buy on tick 0 is accepted at once, then fills at tick 1's ask, heard as fill, position,
        filled update, all before tick 1 itself."""
        strategy, result = run({0: [market(BUY)]}, [tick(0, 100.0, 101.0), tick(1, 102.0, 103.0)])
        assert strategy.heard == [
            ("tick", T0),
            ("order", "order-1", ACCEPTED),
            ("fill", "order-1", BUY, 103.0, 1.0, T0 + S),
            ("position", 1.0, 103.0),
            ("order", "order-1", FILLED),
            ("tick", T0 + S),
        ]
        assert [u.status for u in result.orders] == [ACCEPTED, FILLED]
        filled = result.orders[-1]
        assert (filled.filled_quantity, filled.remaining_quantity, filled.average_price) == (1.0, 0.0, 103.0)
        assert result.positions["BTCUSDT"].quantity == 1.0

    def test_sell_fills_at_the_bid(self) -> None:
        """A market sell fills at the next tick's bid."""
        _, result = run({0: [market(SELL, 2.0)]}, [tick(0, 100.0, 101.0), tick(1, 99.0, 99.5)])
        assert fills_of(result) == [("order-1", SELL, 99.0, 2.0)]
        assert result.positions["BTCUSDT"].quantity == -2.0

    def test_never_on_the_deciding_event_nor_another_symbol(self) -> None:
        """An order waits for the next event of its own symbol: an ETHUSDT tick does not fill it."""
        events = [tick(0, 100.0, 101.0), tick(1, 5.0, 6.0, symbol="ETHUSDT"), tick(2, 104.0, 105.0)]
        strategy, result = run({0: [market(BUY)]}, events)
        assert fills_of(result) == [("order-1", BUY, 105.0, 1.0)]
        assert result.fills[0].timestamp_ns == T0 + 2 * S
        assert strategy.heard.index(("tick", T0 + S)) < strategy.heard.index(("order", "order-1", FILLED))

    def test_trade_fills_at_its_price(self) -> None:
        """On trades a market order fills at the next trade's price."""
        _, result = run({0: [market(BUY)]}, [trade(0, 100.0), trade(1, 100.7)])
        assert fills_of(result) == [("order-1", BUY, 100.7, 1.0)]

    def test_book_fills_at_its_best_level(self) -> None:
        """On books a market buy fills at the best ask; a book with no asks fills nothing until one has."""
        strategy = Scripted({0: [market(BUY)]})
        events: list[Event] = [
            tick(0, 100.0, 101.0),
            Book(symbol="BTCUSDT", timestamp_ns=T0 + S, bids=((99.0, 1.0),), asks=()),
            Book(symbol="BTCUSDT", timestamp_ns=T0 + 2 * S, bids=((99.0, 1.0),), asks=((99.5, 2.0), (99.7, 1.0))),
        ]
        result = run_strategy(strategy, events, fills=True)
        assert fills_of(result) == [("order-1", BUY, 99.5, 1.0)]
        assert result.fills[0].timestamp_ns == T0 + 2 * S

    def test_no_partial_fills(self) -> None:
        """The whole quantity fills at once, whatever size the touch shows."""
        _, result = run({0: [market(BUY, 5.0)]}, [tick(0, 100.0, 101.0, size=0.1), tick(1, 100.0, 101.0, size=0.1)])
        assert fills_of(result) == [("order-1", BUY, 101.0, 5.0)]
        assert [u.status for u in result.orders] == [ACCEPTED, FILLED]

    def test_the_strategy_sees_its_position_on_the_next_event(self) -> None:
        """self.position holds the fill by the time the strategy handles the event that filled it."""

        class Checks(Scripted):
            def on_tick(self, tick: Tick) -> None:
                self.heard.append(("held", self.position_quantity("BTCUSDT")))
                super().on_tick(tick)

        strategy = Checks({0: [market(BUY)]})
        run_strategy(strategy, [tick(0, 100.0, 101.0), tick(1, 100.0, 101.0)], fills=True)
        assert [h for h in strategy.heard if h[0] == "held"] == [("held", 0.0), ("held", 1.0)]


class TestCandles:
    BARS = (candle(0, 100.0, 101.0, 99.0, 100.5), candle(1, 102.0, 104.0, 101.0, 103.0), candle(2, 103, 105, 102, 104))

    def test_next_open(self) -> None:
        """A market order decided on bar 0 fills at bar 1's open, before bar 1 is handled."""
        strategy, result = run({0: [market(BUY)]}, self.BARS)
        assert fills_of(result) == [("order-1", BUY, 102.0, 1.0)]
        assert result.fills[0].timestamp_ns == self.BARS[1].timestamp_ns
        assert strategy.heard.index(("order", "order-1", FILLED)) < strategy.heard.index(
            ("candle", self.BARS[1].timestamp_ns)
        )

    def test_at_close(self) -> None:
        """With at="close", a market order decided on bar 0 fills at bar 0's close, right after its handler."""
        strategy, result = run({0: [market(BUY)], 1: [market(SELL)]}, self.BARS, at="close")
        assert fills_of(result) == [("order-1", BUY, 100.5, 1.0), ("order-2", SELL, 103.0, 1.0)]
        assert strategy.heard[:6] == [
            ("candle", self.BARS[0].timestamp_ns),
            ("order", "order-1", ACCEPTED),
            ("fill", "order-1", BUY, 100.5, 1.0, self.BARS[0].timestamp_ns),
            ("position", 1.0, 100.5),
            ("order", "order-1", FILLED),
            ("candle", self.BARS[1].timestamp_ns),
        ]
        assert result.positions["BTCUSDT"].realized_pnl == pytest.approx(2.5)

    def test_limits_wait_for_the_next_bar_even_at_close(self) -> None:
        """at="close" concerns market orders: a limit decided on bar 0 is matched from bar 1 on."""
        _, result = run({0: [limit(BUY, 101.5)]}, self.BARS, at="close")
        assert fills_of(result) == [("order-1", BUY, 101.5, 1.0)]
        assert result.fills[0].timestamp_ns == self.BARS[1].timestamp_ns


class TestLimits:
    def test_a_resting_buy_fills_at_its_limit_when_the_ask_reaches_it(self) -> None:
        """A buy limit at 99 arriving at an ask of 100 rests; an ask of 99 (offered at our price) fills it,
        at 99, as the engine's paper venue does."""
        events = [tick(0, 99.5, 100.0), tick(1, 99.5, 100.0), tick(2, 98.5, 99.0), tick(3, 98.0, 98.5)]
        _, result = run({0: [limit(BUY, 99.0)]}, events)
        assert fills_of(result) == [("order-1", BUY, 99.0, 1.0)]
        assert result.fills[0].timestamp_ns == T0 + 2 * S

    def test_a_marketable_limit_fills_at_the_quote_on_arrival(self) -> None:
        """A buy limit at 99 whose first tick asks 98 fills there, at 98 (better than the limit); a sell
        limit at 100 whose first tick bids 100 fills at once, at 100."""
        events = [tick(0, 99.5, 100.0), tick(1, 97.5, 98.0)]
        _, result = run({0: [limit(BUY, 99.0)]}, events)
        assert fills_of(result) == [("order-1", BUY, 98.0, 1.0)]
        assert result.fills[0].timestamp_ns == T0 + S
        _, result = run({0: [limit(SELL, 100.0)]}, [tick(0, 99.5, 100.0), tick(1, 100.0, 100.5)])
        assert fills_of(result) == [("order-1", SELL, 100.0, 1.0)]

    def test_sell_limit_on_candles_needs_the_high_above_it(self) -> None:
        """A sell limit at 104 on candles: a high of 104 is not enough, a high of 104.5 fills it at 104."""
        bars = [candle(0, 100, 101, 99, 100), candle(1, 101, 104, 100, 103), candle(2, 103, 104.5, 102, 104)]
        _, result = run({0: [limit(SELL, 104.0)]}, bars)
        assert fills_of(result) == [("order-1", SELL, 104.0, 1.0)]
        assert result.fills[0].timestamp_ns == bars[2].timestamp_ns

    def test_trade_through(self) -> None:
        """On trades a resting buy limit fills when a trade prints below it: a print at the limit is not enough."""
        events = [trade(0, 100.5), trade(1, 100.5), trade(2, 100.0), trade(3, 99.9)]
        _, result = run({0: [limit(BUY, 100.0)]}, events)
        assert fills_of(result) == [("order-1", BUY, 100.0, 1.0)]
        assert result.fills[0].timestamp_ns == events[3].timestamp_ns

    def test_a_trade_at_or_below_an_arriving_buy_limit_fills_it_there(self) -> None:
        """On its arrival a buy limit at 100 meets a print at 99.8: marketable, it fills at 99.8."""
        _, result = run({0: [limit(BUY, 100.0)]}, [trade(0, 100.5), trade(1, 99.8)])
        assert fills_of(result) == [("order-1", BUY, 99.8, 1.0)]

    def test_limits_take_no_slippage(self) -> None:
        """slippage_bps moves market orders only: a resting limit fills exactly at its price, a marketable
        one exactly at the quote."""
        events = [tick(0, 99.5, 100.0), tick(1, 99.5, 100.0), tick(2, 97.0, 98.0)]
        _, result = run({0: [limit(BUY, 99.0)]}, events, slippage_bps=50.0)
        assert fills_of(result) == [("order-1", BUY, 99.0, 1.0)]
        _, result = run({0: [limit(BUY, 99.0)]}, [tick(0, 99.5, 100.0), tick(1, 97.0, 98.0)], slippage_bps=50.0)
        assert fills_of(result) == [("order-1", BUY, 98.0, 1.0)]

    def test_ioc_cancelled_when_not_filled_at_once(self) -> None:
        """An IOC limit not filled by the next event of its symbol is cancelled, and never fills later."""
        events = [tick(0, 99.5, 100.0), tick(1, 99.5, 100.0), tick(2, 90.0, 91.0)]
        _, result = run({0: [limit(BUY, 99.0, time_in_force=TimeInForce.IOC)]}, events)
        assert result.fills == []
        assert [u.status for u in result.orders] == [ACCEPTED, CANCELLED]
        assert "time in force ioc" in result.orders[-1].reason


class TestCancelsAndSlots:
    def test_cancel_takes_the_order_off(self) -> None:
        """A cancel of the slot cancels the resting order: a cancelled update, and no fill later."""
        plan: dict[int, Sequence[Action]] = {
            0: [limit(BUY, 99.0, slot="bid")],
            1: [Cancel(symbol="BTCUSDT", slot="bid")],
        }
        strategy, result = run(plan, [tick(0, 99.5, 100.0), tick(1, 99.5, 100.0), tick(2, 90.0, 91.0)])
        assert result.fills == []
        assert [(u.client_order_id, u.status) for u in result.orders] == [("order-1", ACCEPTED), ("order-1", CANCELLED)]
        assert result.orders[-1].reason == "cancelled by strategy (slot 'bid')"
        assert strategy.heard.index(("order", "order-1", CANCELLED)) < strategy.heard.index(("tick", T0 + 2 * S))

    def test_cancel_of_an_empty_slot_does_nothing(self) -> None:
        """Cancelling a slot with nothing working in it causes no update."""
        _, result = run({0: [Cancel(symbol="BTCUSDT", slot="ask")]}, [tick(0, 99.5, 100.0)])
        assert result.orders == [] and [c.slot for c in result.cancels] == ["ask"]

    def test_a_signal_in_a_slot_replaces_the_working_order(self) -> None:
        """A second signal in slot "bid" cancels the first (reason: replaced) before it is accepted;
        only the second fills (marketable on its arrival: at the ask)."""
        plan: dict[int, Sequence[Action]] = {0: [limit(BUY, 99.0, slot="bid")], 1: [limit(BUY, 98.0, slot="bid")]}
        events = [tick(0, 99.5, 100.0), tick(1, 99.5, 100.0), tick(2, 96.0, 97.0)]
        _, result = run(plan, events)
        assert [(u.client_order_id, u.status) for u in result.orders] == [
            ("order-1", ACCEPTED), ("order-1", CANCELLED), ("order-2", ACCEPTED), ("order-2", FILLED),
        ]  # fmt: skip
        assert result.orders[1].reason == "replaced in slot 'bid'"
        assert fills_of(result) == [("order-2", BUY, 97.0, 1.0)]

    def test_slots_are_per_symbol(self) -> None:
        """The same slot name on another symbol is another slot."""
        eth = Signal(symbol="ETHUSDT", side=BUY, quantity=1.0, order_type=OrderType.LIMIT, price=5.0, slot="bid")
        _, result = run({0: [limit(BUY, 99.0, slot="bid"), eth]}, [tick(0, 99.5, 100.0)])
        assert [u.status for u in result.orders] == [ACCEPTED, ACCEPTED]


class TestFeesAndSlippage:
    def test_round_trip(self) -> None:
        """Buy 2 at an ask of 100 and sell 2 at a bid of 110, 10 bps slippage and 5 bps fees:
        fills at 100.1 and 109.89, fees 0.1001 and 0.10989, realized P&L 19.58 - 0.20999."""
        events = [tick(0, 99.0, 99.5), tick(1, 99.0, 100.0), tick(2, 110.0, 111.0)]
        _, result = run({0: [market(BUY, 2.0)], 1: [market(SELL, 2.0)]}, events, fee_bps=5.0, slippage_bps=10.0)
        assert [(f.side, f.price, f.fee) for f in result.fills] == [
            (BUY, pytest.approx(100.1), pytest.approx(0.1001)),
            (SELL, pytest.approx(109.89), pytest.approx(0.10989)),
        ]
        position = result.positions["BTCUSDT"]
        assert position.quantity == 0.0
        assert position.realized_pnl == pytest.approx(19.58 - 0.20999)


class TestOrdersTheModelRefuses:
    def test_stop_orders_are_rejected(self) -> None:
        """A stop order is rejected with rule fill_model and a reason that says so."""
        stop = Signal(symbol="BTCUSDT", side=BUY, quantity=1.0, order_type=OrderType.STOP, stop_price=105.0)
        _, result = run({0: [stop]}, [tick(0, 99.5, 100.0), tick(1, 110.0, 111.0)])
        assert [(u.status, u.rule) for u in result.orders] == [(REJECTED, "fill_model")]
        assert "stops are not triggered" in result.orders[0].reason and result.fills == []

    def test_reused_client_order_id_is_rejected(self) -> None:
        """A client order id used before is rejected as duplicate_client_order_id, as the engine does."""
        plan: dict[int, Sequence[Action]] = {
            0: [market(BUY, client_order_id="mine")],
            1: [market(BUY, client_order_id="mine")],
        }
        _, result = run(plan, [tick(0, 99.5, 100.0), tick(1, 99.5, 100.0), tick(2, 99.5, 100.0)])
        assert [(u.status, u.rule) for u in result.orders] == [
            (ACCEPTED, ""), (FILLED, ""), (REJECTED, "duplicate_client_order_id"),
        ]  # fmt: skip


class Reactive(Scripted):
    """Sells what it bought as soon as the buy fills (in on_fill)."""

    def on_fill(self, fill: Fill) -> None:
        super().on_fill(fill)
        if fill.side is BUY:
            self.emit(market(SELL, fill.quantity))


class TestAnswers:
    def test_an_order_placed_in_on_fill_fills_on_a_later_event(self) -> None:
        """A sell emitted while hearing a fill on tick 1 is accepted then, and fills on tick 2, not tick 1."""
        strategy = Reactive({0: [market(BUY)]})
        result = run_strategy(
            strategy, [tick(0, 99.0, 100.0), tick(1, 101.0, 102.0), tick(2, 103.0, 104.0)], fills=True
        )
        assert [(f.side, f.price, f.timestamp_ns) for f in result.fills] == [
            (BUY, 102.0, T0 + S),
            (SELL, 103.0, T0 + 2 * S),
        ]
        assert result.signal_events == [0, 1]

    def test_a_strategy_that_answers_every_update_with_an_order_is_stopped(self) -> None:
        """A strategy that places an order on every order update never reaches the next event: SdkError."""

        class Looping(Scripted):
            def on_order(self, update: OrderUpdate) -> None:
                self.emit(market(BUY))

        with pytest.raises(SdkError, match="answered 10000 order updates in a row"):
            run_strategy(Looping({0: [market(BUY)]}), [tick(0, 99.0, 100.0)], fills=True)

    def test_given_fills_and_updates_are_in_the_result_too(self) -> None:
        """Fills and order updates in the events are delivered and listed with the simulated ones."""
        given = Fill(fill_id="x", order_id="o", symbol="BTCUSDT", side=BUY, price=50.0, quantity=1.0, timestamp_ns=T0)
        _, result = run({0: [market(BUY)]}, [given, tick(0, 99.0, 100.0), tick(1, 99.0, 100.0)])
        assert [(f.fill_id, f.price) for f in result.fills] == [("x", 50.0), ("fill-1", 100.0)]
        assert result.positions["BTCUSDT"].quantity == 2.0


class TestDefaults:
    def test_without_a_fill_model_nothing_answers(self) -> None:
        """The default run answers no order: no updates, no fills, no positions."""
        strategy = Scripted({0: [market(BUY)]})
        result = run_strategy(strategy, [tick(0, 99.0, 100.0), tick(1, 99.0, 100.0)])
        assert len(result.signals) == 1
        assert (result.orders, result.fills, result.positions) == ([], [], {})
        assert [h[0] for h in strategy.heard] == ["tick", "tick"]

    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (lambda: FillModel(at="open"), r"FillModel\.at: must be 'next_open' or 'close', got 'open'"),  # type: ignore[arg-type]
            (lambda: FillModel(fee_bps=-1.0), r"FillModel\.fee_bps: must be a number >= 0"),
            (lambda: FillModel(slippage_bps="5"), r"FillModel\.slippage_bps: must be a number >= 0"),  # type: ignore[arg-type]
        ],
    )
    def test_bad_model_names_the_field(self, build: Callable[[], FillModel], message: str) -> None:
        """A bad FillModel value raises ConfigError naming the field."""
        with pytest.raises(ConfigError, match=message):
            build()

"""The paper matching engine's conventions, each with hand-computed prices, sizes and fees."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from host.execution.matching import MatchingEngine
from host.orders import OrderIntent, OrderState, OrderStatus
from sdk.events import Book, Candle, Fill, OrderType, Side, Tick, TimeInForce, Trade
from tests.helpers import ManualClocks

SYM = "BTCUSDT"


def engine(fee_rate: float = 0.0, slippage_bps: float = 0.0, fill_at_touch_size: bool = True) -> MatchingEngine:
    return MatchingEngine(fee_rate, slippage_bps, clock=ManualClocks(), fill_at_touch_size=fill_at_touch_size)


def status(state: OrderState | None) -> OrderStatus:
    """The status of an order the engine must know."""
    assert state is not None, "the engine does not know this order"
    return state.status


def order(
    cid: str,
    side: Side = Side.BUY,
    quantity: float = 1.0,
    kind: OrderType = OrderType.MARKET,
    price: float | None = None,
    stop: float | None = None,
    tif: TimeInForce = TimeInForce.GTC,
) -> OrderIntent:
    return OrderIntent(
        client_order_id=cid, strategy="alpha", symbol=SYM, side=side, order_type=kind, quantity=quantity,
        price=price, stop_price=stop, time_in_force=tif,
    )  # fmt: skip


def tick(
    bid: float = 99.0,
    ask: float = 101.0,
    bid_size: float = 10.0,
    ask_size: float = 10.0,
    last_price: float | None = None,
) -> Tick:
    return Tick(
        symbol=SYM,
        timestamp_ns=1,
        bid_price=bid,
        bid_size=bid_size,
        ask_price=ask,
        ask_size=ask_size,
        last_price=last_price,
    )


def candle(o: float, h: float, low: float, c: float) -> Candle:
    return Candle(symbol=SYM, timestamp_ns=1, open=o, high=h, low=low, close=c)


def pq(fills: Iterable[Fill]) -> list[tuple[float, float]]:
    """(price, quantity) of each fill, rounded to 1e-9 so hand-computed decimals compare exactly."""
    return [(round(f.price, 9), round(f.quantity, 9)) for f in fills]


class TestMarketOrders:
    def test_buy_fills_at_the_ask_and_sell_at_the_bid(self) -> None:
        """With no slippage a market buy pays the ask and a market sell gets the bid."""
        eng = engine()
        eng.on_market(tick(99.0, 101.0))
        assert pq(eng.submit(order("b")).fills) == [(101.0, 1.0)]
        assert pq(eng.submit(order("s", Side.SELL)).fills) == [(99.0, 1.0)]
        assert status(eng.status("b")) is OrderStatus.FILLED

    def test_slippage_moves_the_price_against_the_order(self) -> None:
        """10 bps: a buy at ask 100 pays 100.1, a sell at bid 100 gets 99.9."""
        eng = engine(slippage_bps=10.0)
        eng.on_market(tick(100.0, 100.0))
        assert eng.submit(order("b")).fills[0].price == pytest.approx(100.1)
        assert eng.submit(order("s", Side.SELL)).fills[0].price == pytest.approx(99.9)

    def test_market_order_walks_book_levels_one_fill_per_level(self) -> None:
        """Buying 2.5 against asks 1@101, 2@102 fills 1@101 then 1.5@102; average 101.6."""
        eng = engine()
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=((99.0, 5.0),), asks=((101.0, 1.0), (102.0, 2.0))))
        result = eng.submit(order("b", quantity=2.5))
        assert pq(result.fills) == [(101.0, 1.0), (102.0, 1.5)]
        assert result.order.average_price == pytest.approx((101.0 + 1.5 * 102.0) / 2.5)

    def test_order_larger_than_the_touch_fills_partially_then_rests(self) -> None:
        """0.4 shown at the ask: a GTC buy of 1 fills 0.4 now and 0.6 at the next tick's ask."""
        eng = engine()
        eng.on_market(tick(ask=101.0, ask_size=0.4))
        result = eng.submit(order("b"))
        assert pq(result.fills) == [(101.0, 0.4)]
        assert result.order.status is OrderStatus.PARTIALLY_FILLED
        later = eng.on_market(tick(ask=102.0, ask_size=5.0))
        assert pq(later) == [(102.0, 0.6)]
        state = eng.status("b")
        assert state is not None and state.status is OrderStatus.FILLED
        assert state.average_price == pytest.approx((0.4 * 101.0 + 0.6 * 102.0) / 1.0)

    def test_without_touch_size_limits_the_whole_order_fills_at_the_touch(self) -> None:
        """fill_at_touch_size=False: displayed sizes are ignored, 1000 fills at the ask at once."""
        eng = engine(fill_at_touch_size=False)
        eng.on_market(tick(ask=101.0, ask_size=0.4))
        assert pq(eng.submit(order("b", quantity=1000.0)).fills) == [(101.0, 1000.0)]

    def test_displayed_size_taken_by_one_order_is_gone_for_the_next(self) -> None:
        """Two buys of 0.7 against 1.0 shown: the second gets the 0.3 left."""
        eng = engine()
        eng.on_market(tick(ask_size=1.0))
        eng.submit(order("a", quantity=0.7))
        assert pq(eng.submit(order("b", quantity=0.7)).fills) == [(101.0, 0.3)]

    def test_market_order_with_no_quote_waits_for_the_next_tick(self) -> None:
        """Nothing seen yet: the order is accepted unfilled and fills at the first tick's ask."""
        eng = engine()
        result = eng.submit(order("b"))
        assert result.fills == () and result.order.status is OrderStatus.ACCEPTED
        assert pq(eng.on_market(tick(ask=101.5))) == [(101.5, 1.0)]

    def test_candle_only_symbol_fills_at_the_next_candles_open(self) -> None:
        """After a candle closing at 105, a buy fills at the NEXT candle's open 106 plus 20 bps = 106.212."""
        eng = engine(slippage_bps=20.0)
        eng.on_market(candle(100.0, 106.0, 99.0, 105.0))
        assert eng.submit(order("b")).fills == ()
        fills = eng.on_market(candle(106.0, 108.0, 104.0, 107.0))
        assert pq(fills) == [(106.212, 1.0)]

    def test_trade_only_symbol_fills_at_the_last_trade_sized_by_it(self) -> None:
        """Only trades seen: a buy of 3 fills 2 at the last trade's 100.5 (its quantity) and waits."""
        eng = engine()
        eng.on_market(Trade(symbol=SYM, timestamp_ns=1, last_price=100.5, volume=2.0))
        result = eng.submit(order("b", quantity=3.0))
        assert pq(result.fills) == [(100.5, 2.0)]
        assert pq(eng.on_market(Trade(symbol=SYM, timestamp_ns=2, last_price=100.7, volume=5.0))) == [(100.7, 1.0)]


class TestUnreportedSizes:
    """A tick's size of 0 is a size not reported (b25's ticker has none; the seed reads an absent one as 0)."""

    def test_a_tick_without_sizes_fills_the_whole_order_at_the_touch(self) -> None:
        """Only ticks without sizes seen: a buy of 1000 fills whole at the ask, a sell at the bid."""
        eng = engine()
        eng.on_market(tick(99.0, 101.0, bid_size=0.0, ask_size=0.0))
        assert pq(eng.submit(order("b", quantity=1000.0)).fills) == [(101.0, 1000.0)]
        assert pq(eng.submit(order("s", Side.SELL, quantity=1000.0)).fills) == [(99.0, 1000.0)]

    def test_one_unreported_side_is_unlimited_the_other_keeps_its_size(self) -> None:
        """Bid size 0.5 shown, ask size 0: a sell of 2 fills 0.5, a buy of 2 fills whole."""
        eng = engine()
        eng.on_market(tick(99.0, 101.0, bid_size=0.5, ask_size=0.0))
        assert pq(eng.submit(order("s", Side.SELL, quantity=2.0)).fills) == [(99.0, 0.5)]
        assert pq(eng.submit(order("b", quantity=2.0)).fills) == [(101.0, 2.0)]

    def test_a_resting_limit_crossed_by_a_tick_without_sizes_fills_whole(self) -> None:
        """A buy limit 100 of 5 resting; a sizeless tick with the ask at 99.5 fills all 5 at the limit."""
        eng = engine()
        eng.on_market(tick(99.0, 101.0, bid_size=0.0, ask_size=0.0))
        eng.submit(order("b", quantity=5.0, kind=OrderType.LIMIT, price=100.0))
        assert pq(eng.on_market(tick(99.0, 99.5, bid_size=0.0, ask_size=0.0))) == [(100.0, 5.0)]

    def test_beside_a_book_a_tick_without_sizes_leaves_the_book_the_live_quote(self) -> None:
        """Book 1@101 then a sizeless tick (b25's ticker beside its book): a buy of 3 fills 1 from the book."""
        eng = engine()
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=((99.0, 1.0),), asks=((101.0, 1.0),)))
        assert eng.on_market(tick(99.0, 101.0, bid_size=0.0, ask_size=0.0)) == []
        assert pq(eng.submit(order("b", quantity=3.0)).fills) == [(101.0, 1.0)]

    def test_beside_a_book_a_tick_without_sizes_fills_no_resting_order(self) -> None:
        """A resting buy limit 100 is crossed only by sized data: the sizeless tick at 99.5 fills nothing, the
        book that follows it does, sized by its level."""
        eng = engine()
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=((99.0, 1.0),), asks=((101.0, 1.0),)))
        eng.submit(order("b", quantity=5.0, kind=OrderType.LIMIT, price=100.0))
        assert eng.on_market(tick(99.0, 99.5, bid_size=0.0, ask_size=0.0)) == []
        assert pq(eng.on_market(Book(symbol=SYM, timestamp_ns=2, bids=((99.0, 1.0),), asks=((99.5, 2.0),)))) == [
            (100.0, 2.0)
        ]

    def test_beside_a_book_a_tick_without_sizes_still_triggers_stops_against_the_book(self) -> None:
        """A buy stop at 102: the sizeless tick's ask 102 triggers it; it fills from the book's sizes."""
        eng = engine()
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=((99.0, 1.0),), asks=((101.0, 0.5), (102.0, 4.0))))
        eng.submit(order("b", quantity=2.0, kind=OrderType.STOP, stop=102.0))
        fills = eng.on_market(tick(101.0, 102.0, bid_size=0.0, ask_size=0.0))
        assert pq(fills) == [(101.0, 0.5), (102.0, 1.5)]

    def test_a_sized_tick_replaces_the_book_as_the_live_quote(self) -> None:
        """A tick with sizes is as fine as a book: it is the live quote after it."""
        eng = engine()
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=((99.0, 1.0),), asks=((101.0, 1.0),)))
        eng.on_market(tick(99.0, 100.0, bid_size=1.0, ask_size=2.0))
        assert pq(eng.submit(order("b", quantity=3.0)).fills) == [(100.0, 2.0)]

    def test_trades_do_not_replace_prices_from_ticks_without_sizes(self) -> None:
        """Sizeless ticks are finer than trades: a trade after one neither fills nor becomes the quote."""
        eng = engine()
        eng.on_market(tick(99.0, 101.0, bid_size=0.0, ask_size=0.0))
        eng.on_market(Trade(symbol=SYM, timestamp_ns=2, last_price=100.0, volume=0.1))
        assert pq(eng.submit(order("b", quantity=3.0)).fills) == [(101.0, 3.0)]

    def test_a_book_level_of_size_zero_is_still_empty(self) -> None:
        """In a book, size 0 is a level with nothing left: a buy skips it to the next level."""
        eng = engine()
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=((99.0, 1.0),), asks=((101.0, 0.0), (102.0, 1.0))))
        assert pq(eng.submit(order("b", quantity=1.0)).fills) == [(102.0, 1.0)]


class TestLimitOrders:
    def test_marketable_limit_fills_at_the_touch_not_at_its_limit(self) -> None:
        """A buy limit 105 with the ask at 101 fills at 101 (better than its limit), no slippage."""
        eng = engine(slippage_bps=50.0)
        eng.on_market(tick(ask=101.0))
        assert pq(eng.submit(order("b", kind=OrderType.LIMIT, price=105.0)).fills) == [(101.0, 1.0)]

    def test_marketable_limit_takes_only_levels_within_its_limit_and_rests(self) -> None:
        """Asks 1@101, 1@102, 5@103; buy 3 limit 102 takes 101 and 102, then rests 1 at 102."""
        eng = engine()
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=(), asks=((101.0, 1.0), (102.0, 1.0), (103.0, 5.0))))
        result = eng.submit(order("b", quantity=3.0, kind=OrderType.LIMIT, price=102.0))
        assert pq(result.fills) == [(101.0, 1.0), (102.0, 1.0)]
        assert result.order.status is OrderStatus.PARTIALLY_FILLED
        assert [s.intent.client_order_id for s in eng.working(SYM)] == ["b"]

    def test_resting_limit_does_not_fill_while_the_ask_is_above_it(self) -> None:
        """A buy limit 100 rests through ticks with the ask at 100.5 and 101."""
        eng = engine()
        eng.on_market(tick(ask=101.0))
        eng.submit(order("b", kind=OrderType.LIMIT, price=100.0))
        assert eng.on_market(tick(bid=99.0, ask=100.5)) == []
        assert status(eng.status("b")) is OrderStatus.ACCEPTED

    def test_resting_buy_limit_crossed_by_a_later_quote_fills_at_its_limit(self) -> None:
        """Ask falls from 101 to 99 under a resting buy limit 100: the fill is at 100, not 99."""
        eng = engine()
        eng.on_market(tick(ask=101.0))
        eng.submit(order("b", kind=OrderType.LIMIT, price=100.0))
        assert pq(eng.on_market(tick(bid=98.0, ask=99.0))) == [(100.0, 1.0)]

    def test_an_ask_equal_to_the_limit_crosses(self) -> None:
        """A quote crosses at equality: ask 100 fills a resting buy limit 100."""
        eng = engine()
        eng.submit(order("b", kind=OrderType.LIMIT, price=100.0))
        assert len(eng.on_market(tick(bid=99.0, ask=100.0))) == 1

    def test_resting_sell_limit_crossed_by_the_bid_fills_at_its_limit_sized_by_the_bid(self) -> None:
        """Sell 3 limit 102 rests; bid jumps to 103 with 2 shown: 2 fill at 102, 1 keeps resting."""
        eng = engine()
        eng.on_market(tick(99.0, 101.0))
        eng.submit(order("s", Side.SELL, 3.0, OrderType.LIMIT, price=102.0))
        fills = eng.on_market(tick(bid=103.0, ask=104.0, bid_size=2.0))
        assert pq(fills) == [(102.0, 2.0)]
        assert status(eng.status("s")) is OrderStatus.PARTIALLY_FILLED

    def test_a_trade_must_go_through_the_limit(self) -> None:
        """Trades only: a print AT the buy limit 100 does not fill it, a print at 99.9 does, at 100."""
        eng = engine()
        eng.on_market(Trade(symbol=SYM, timestamp_ns=1, last_price=101.0, volume=1.0))
        eng.submit(order("b", kind=OrderType.LIMIT, price=100.0))
        assert eng.on_market(Trade(symbol=SYM, timestamp_ns=2, last_price=100.0, volume=5.0)) == []
        assert pq(eng.on_market(Trade(symbol=SYM, timestamp_ns=3, last_price=99.9, volume=5.0))) == [(100.0, 1.0)]

    def test_a_candle_must_go_through_the_limit(self) -> None:
        """Candles only: low == 100 leaves a buy limit 100 resting; low 99.5 fills it at 100."""
        eng = engine()
        eng.on_market(candle(101.0, 102.0, 100.5, 101.5))
        eng.submit(order("b", kind=OrderType.LIMIT, price=100.0))
        assert eng.on_market(candle(101.0, 102.0, 100.0, 101.0)) == []
        assert pq(eng.on_market(candle(101.0, 102.0, 99.5, 101.0))) == [(100.0, 1.0)]

    def test_candles_do_not_fill_a_symbol_that_has_quotes(self) -> None:
        """A symbol with ticks is matched on ticks: a candle whose low crosses the limit fills nothing."""
        eng = engine()
        eng.on_market(tick(ask=101.0))
        eng.submit(order("b", kind=OrderType.LIMIT, price=100.0))
        assert eng.on_market(candle(101.0, 102.0, 95.0, 101.0)) == []


class TestStopOrders:
    def test_buy_stop_triggers_when_the_ask_reaches_it_then_fills_as_market(self) -> None:
        """Buy stop 103: ask 102 leaves it waiting; ask 103.5 triggers it, fill 103.5 + 10 bps = 103.6035."""
        eng = engine(slippage_bps=10.0)
        eng.on_market(tick(ask=101.0))
        assert eng.submit(order("b", kind=OrderType.STOP, stop=103.0)).fills == ()
        assert eng.on_market(tick(bid=101.0, ask=102.0)) == []
        fills = eng.on_market(tick(bid=103.0, ask=103.5))
        assert pq(fills) == [(103.6035, 1.0)]

    def test_sell_stop_triggered_by_a_trade_fills_at_the_live_bid(self) -> None:
        """Sell stop 98 on a quoted symbol: a trade at 97.9 triggers it; it sells at the bid 98.5."""
        eng = engine()
        eng.on_market(tick(bid=98.5, ask=99.0))
        eng.submit(order("s", Side.SELL, kind=OrderType.STOP, stop=98.0))
        assert pq(eng.on_market(Trade(symbol=SYM, timestamp_ns=2, last_price=97.9, volume=1.0))) == [(98.5, 1.0)]

    def test_stop_already_through_on_arrival_triggers_at_once(self) -> None:
        """A buy stop 100 submitted with the ask at 101 fills immediately at 101."""
        eng = engine()
        eng.on_market(tick(ask=101.0))
        assert pq(eng.submit(order("b", kind=OrderType.STOP, stop=100.0)).fills) == [(101.0, 1.0)]

    def test_triggered_stop_limit_rests_as_a_limit_and_fills_at_its_limit(self) -> None:
        """Buy stop 103 limit 103.2: the ask 103.5 triggers it but is above the limit; ask 103 then fills at 103.2."""
        eng = engine()
        eng.on_market(tick(ask=101.0))
        eng.submit(order("b", kind=OrderType.STOP_LIMIT, price=103.2, stop=103.0))
        assert eng.on_market(tick(bid=103.0, ask=103.5)) == []
        assert pq(eng.on_market(tick(bid=102.0, ask=103.0))) == [(103.2, 1.0)]

    def test_triggered_stop_limit_that_is_marketable_fills_at_the_touch(self) -> None:
        """Buy stop 103 limit 104: ask 103.5 triggers it and is within the limit: fill at 103.5."""
        eng = engine(slippage_bps=10.0)
        eng.on_market(tick(ask=101.0))
        eng.submit(order("b", kind=OrderType.STOP_LIMIT, price=104.0, stop=103.0))
        assert pq(eng.on_market(tick(bid=103.0, ask=103.5))) == [(103.5, 1.0)]

    def test_stop_triggered_by_a_tick_last_price(self) -> None:
        """A tick's last_price is a reference: sell stop 98 triggers on last 97.5 while the bid is 98.2."""
        eng = engine()
        eng.on_market(tick(bid=99.0, ask=99.5))
        eng.submit(order("s", Side.SELL, kind=OrderType.STOP, stop=98.0))
        assert pq(eng.on_market(tick(bid=98.2, ask=98.6, last_price=97.5))) == [(98.2, 1.0)]

    @pytest.mark.parametrize(
        ("open_", "expected"),
        [(100.0, 102.0), (104.0, 104.0)],
        ids=["stop-inside-bar-fills-at-stop", "gap-over-stop-fills-at-open"],
    )
    def test_stop_inside_a_candle_fills_at_max_of_open_and_stop(self, open_: float, expected: float) -> None:
        """Candles only: a buy stop 102 whose bar reaches 105 fills at max(open, 102)."""
        eng = engine()
        eng.on_market(candle(99.0, 101.0, 98.0, 100.0))
        eng.submit(order("b", kind=OrderType.STOP, stop=102.0))
        fills = eng.on_market(candle(open_, 105.0, min(open_, 99.0), 104.5))
        assert pq(fills) == [(expected, 1.0)]


class TestTimeInForce:
    def test_ioc_fills_what_is_there_and_cancels_the_rest(self) -> None:
        """IOC buy 1 with 0.4 shown: 0.4 filled, status CANCELLED, nothing left working."""
        eng = engine()
        eng.on_market(tick(ask_size=0.4))
        result = eng.submit(order("b", tif=TimeInForce.IOC))
        assert pq(result.fills) == [(101.0, 0.4)]
        assert result.order.status is OrderStatus.CANCELLED and result.order.filled_quantity == 0.4
        assert eng.working() == []

    def test_ioc_limit_that_is_not_marketable_is_cancelled_unfilled(self) -> None:
        """An IOC buy limit 100 under an ask of 101 is cancelled with nothing filled."""
        eng = engine()
        eng.on_market(tick(ask=101.0))
        result = eng.submit(order("b", kind=OrderType.LIMIT, price=100.0, tif=TimeInForce.IOC))
        assert result.fills == () and result.order.status is OrderStatus.CANCELLED

    def test_fok_without_the_whole_quantity_fills_nothing_and_takes_nothing(self) -> None:
        """FOK buy 1 with 0.4 shown is cancelled unfilled; the 0.4 is still there for the next order."""
        eng = engine()
        eng.on_market(tick(ask_size=0.4))
        result = eng.submit(order("f", tif=TimeInForce.FOK))
        assert result.fills == () and result.order.status is OrderStatus.CANCELLED
        assert pq(eng.submit(order("b", quantity=0.4)).fills) == [(101.0, 0.4)]

    def test_fok_with_the_whole_quantity_fills_across_levels(self) -> None:
        """FOK buy 3 limit 102 against 1@101, 2@102: all of it fills."""
        eng = engine()
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=(), asks=((101.0, 1.0), (102.0, 2.0))))
        result = eng.submit(order("f", quantity=3.0, kind=OrderType.LIMIT, price=102.0, tif=TimeInForce.FOK))
        assert pq(result.fills) == [(101.0, 1.0), (102.0, 2.0)]
        assert result.order.status is OrderStatus.FILLED

    def test_a_waiting_market_ioc_applies_its_tif_when_the_price_comes(self) -> None:
        """Candles only: an IOC market buy waits for the next open, then fills (candles are unlimited)."""
        eng = engine()
        eng.on_market(candle(100.0, 101.0, 99.0, 100.5))
        assert eng.submit(order("b", tif=TimeInForce.IOC)).order.status is OrderStatus.ACCEPTED
        assert pq(eng.on_market(candle(100.6, 101.0, 100.0, 100.8))) == [(100.6, 1.0)]


class TestFeesAndFillRecords:
    def test_fee_is_rate_times_notional_after_slippage(self) -> None:
        """fee 0.1 %, 5 bps: buy 2 at ask 101 fills at 101.0505, fee 0.001 * 101.0505 * 2 = 0.202101."""
        eng = engine(fee_rate=0.001, slippage_bps=5.0)
        eng.on_market(tick(ask=101.0))
        fill = eng.submit(order("b", quantity=2.0)).fills[0]
        assert fill.price == pytest.approx(101.0505)
        assert fill.fee == pytest.approx(0.202101)

    def test_every_fill_has_a_unique_id_the_venue_order_id_strategy_and_clock_time(self) -> None:
        """Fill ids are {venue order id}-{k}; order ids {prefix}{n}; strategy from the intent; clock time."""
        clock = ManualClocks(wall_ns=42)
        eng = MatchingEngine(clock=clock, id_prefix="X-")
        eng.on_market(Book(symbol=SYM, timestamp_ns=1, bids=(), asks=((101.0, 1.0), (102.0, 2.0))))
        first = eng.submit(order("a", quantity=2.0))
        second = eng.submit(order("b", quantity=0.5))
        ids = [f.fill_id for f in (*first.fills, *second.fills)]
        assert ids == ["X-1-1", "X-1-2", "X-2-1"]
        assert {f.order_id for f in first.fills} == {"X-1"} and first.order.venue_order_id == "X-1"
        assert {(f.strategy, f.timestamp_ns) for f in (*first.fills, *second.fills)} == {("alpha", 42)}


class TestCancelStatusAndIdempotency:
    def test_cancelled_order_never_fills(self) -> None:
        """A cancelled resting limit stays cancelled when the market later crosses it."""
        eng = engine()
        eng.submit(order("b", kind=OrderType.LIMIT, price=100.0))
        assert status(eng.cancel("b")) is OrderStatus.CANCELLED
        assert eng.on_market(tick(bid=98.0, ask=99.0)) == []
        assert eng.working() == []

    def test_cancel_after_a_partial_fill_keeps_the_filled_quantity(self) -> None:
        """Cancelling a partially filled order: CANCELLED with its 0.4 filled."""
        eng = engine()
        eng.on_market(tick(ask_size=0.4))
        eng.submit(order("b"))
        state = eng.cancel("b")
        assert state is not None and state.status is OrderStatus.CANCELLED and state.filled_quantity == 0.4

    def test_cancel_of_a_filled_order_changes_nothing(self) -> None:
        """A filled order comes back FILLED from cancel."""
        eng = engine()
        eng.on_market(tick())
        eng.submit(order("b"))
        assert status(eng.cancel("b")) is OrderStatus.FILLED

    def test_unknown_ids_give_none(self) -> None:
        """Status and cancel of an id the engine never saw return None."""
        eng = engine()
        assert eng.status("nope") is None and eng.cancel("nope") is None

    def test_resubmitting_the_same_client_order_id_returns_the_existing_order(self) -> None:
        """Same id twice: one order, one fill; the second call is a duplicate with no fills."""
        eng = engine()
        eng.on_market(tick())
        first = eng.submit(order("b"))
        again = eng.submit(order("b", quantity=5.0))
        assert again.duplicate and again.fills == ()
        assert again.order.venue_order_id == first.order.venue_order_id
        assert again.order.intent.quantity == 1.0 and len(eng) == 1

    @pytest.mark.parametrize(
        ("intent", "field"),
        [
            (order("q", quantity=0.0), "quantity"),
            (order("p", kind=OrderType.LIMIT), "price"),
            (order("t", kind=OrderType.STOP), "stop_price"),
            (order("", quantity=1.0), "client_order_id"),
        ],
        ids=["zero-quantity", "limit-without-price", "stop-without-stop", "no-id"],
    )
    def test_invalid_orders_are_rejected_naming_the_field(self, intent: OrderIntent, field: str) -> None:
        """Unusable intents are REJECTED with the field named in the reason."""
        result = engine().submit(intent)
        assert result.order.status is OrderStatus.REJECTED
        assert result.order.reason.startswith(field)

    def test_a_rejected_id_stays_rejected_on_resubmit(self) -> None:
        """A rejected order is remembered: resubmitting its id returns the rejection, not a new order."""
        eng = engine()
        eng.submit(order("q", quantity=0.0))
        again = eng.submit(order("q", quantity=1.0))
        assert again.duplicate and again.order.status is OrderStatus.REJECTED


def windowed(keep_finished: int = 10_000, keep_finished_s: float = 600.0) -> tuple[MatchingEngine, ManualClocks]:
    clock = ManualClocks()
    eng = MatchingEngine(clock=clock, keep_finished=keep_finished, keep_finished_s=keep_finished_s)
    eng.on_market(tick(bid_size=1e9, ask_size=1e9))
    return eng, clock


class TestFinishedOrderWindow:
    def test_a_finished_order_is_answered_and_not_placed_again_within_the_window(self) -> None:
        """599 s after it filled, status still says FILLED and a resend under its id is a duplicate with no fill."""
        eng, clock = windowed()
        first = eng.submit(order("b"))
        clock.advance(599.0)
        assert status(eng.status("b")) is OrderStatus.FILLED
        again = eng.submit(order("b"))
        assert again.duplicate and again.fills == () and again.order.venue_order_id == first.order.venue_order_id
        assert eng.client_order_id(first.order.venue_order_id) == "b"

    def test_a_finished_order_is_forgotten_keep_finished_s_after_it_finished(self) -> None:
        """Past the window the id is unknown (status None, venue id unknown) and the engine holds nothing."""
        eng, clock = windowed()
        venue_id = eng.submit(order("b")).order.venue_order_id
        clock.advance(600.001)
        assert eng.status("b") is None and eng.client_order_id(venue_id) is None and len(eng) == 0

    def test_a_forgotten_id_resent_places_a_new_order(self) -> None:
        """The documented limit of the window: a resend after it is a new order (a client settles within it)."""
        eng, clock = windowed()
        eng.submit(order("b"))
        clock.advance(601.0)
        again = eng.submit(order("b"))
        assert not again.duplicate and len(again.fills) == 1

    def test_only_the_last_keep_finished_orders_are_kept(self) -> None:
        """With keep_finished=100, after 1,000 filled orders the engine holds the newest 100 and no older one."""
        eng, _ = windowed(keep_finished=100)
        for n in range(1000):
            eng.submit(order(f"o{n}"))
        assert len(eng) == 100
        assert eng.status("o899") is None and status(eng.status("o900")) is OrderStatus.FILLED
        assert [o.intent.client_order_id for o in eng.orders()] == [f"o{n}" for n in range(900, 1000)]

    def test_memory_follows_working_orders_not_history(self) -> None:
        """5 resting limits among 10,000 orders that fill, an hour apart from the first: the 5 stay working and
        cancellable, and the engine holds them plus the window of finished ones, never the whole history."""
        eng, clock = windowed(keep_finished=50)
        for n in range(5):
            eng.submit(order(f"rest{n}", kind=OrderType.LIMIT, price=50.0))
        for n in range(10_000):
            eng.submit(order(f"o{n}", side=Side.SELL if n % 2 else Side.BUY))
            clock.advance(0.36)
        assert len(eng.working()) == 5 and len(eng) == 5 + 50
        assert status(eng.cancel("rest0")) is OrderStatus.CANCELLED and len(eng.working()) == 4

    def test_a_rejected_order_joins_the_window_and_leaves_it(self) -> None:
        """A rejected id is a duplicate within the window and unknown after it."""
        eng, clock = windowed()
        eng.submit(order("q", quantity=0.0))
        assert eng.submit(order("q")).duplicate
        clock.advance(601.0)
        assert eng.status("q") is None

    def test_a_cancelled_order_joins_the_window(self) -> None:
        """A cancelled resting order is answered CANCELLED until the window ends, then forgotten."""
        eng, clock = windowed()
        eng.submit(order("r", kind=OrderType.LIMIT, price=50.0))
        eng.cancel("r")
        clock.advance(300.0)
        assert status(eng.status("r")) is OrderStatus.CANCELLED
        clock.advance(301.0)
        assert eng.status("r") is None and len(eng) == 0

    def test_the_window_is_validated(self) -> None:
        """A negative size or duration is refused, naming both settings."""
        with pytest.raises(ValueError, match="keep_finished"):
            MatchingEngine(clock=ManualClocks(), keep_finished=-1)

"""Paper matching with an arrival delay (a backtest): no order fills on the event it was decided on."""

from __future__ import annotations

import pytest

from host.clock import ReplayClock
from host.execution.matching import Arrival, MatchingEngine, Reach
from host.orders import OrderIntent, OrderStatus
from sdk.events import Candle, OrderType, Side, Tick, TimeInForce

SYM, OTHER = "BTCUSDT", "ETHUSDT"
MS = 1_000_000


def engine(latency_ms: float = 0.0, candle_fill: str = "open") -> tuple[MatchingEngine, ReplayClock]:
    clock = ReplayClock()
    arrival = Arrival(delay_ns=round(latency_ms * MS), candle_fill=candle_fill)
    return MatchingEngine(0.0, 0.0, clock=clock, arrival=arrival), clock


def order(cid: str, side: Side = Side.BUY, kind: OrderType = OrderType.MARKET, price: float | None = None,
          stop: float | None = None, tif: TimeInForce = TimeInForce.GTC, symbol: str = SYM) -> OrderIntent:  # fmt: skip
    return OrderIntent(client_order_id=cid, strategy="alpha", symbol=symbol, side=side, order_type=kind,
                       quantity=1.0, price=price, stop_price=stop, time_in_force=tif)  # fmt: skip


def tick(ts_ms: int, bid: float, ask: float, symbol: str = SYM) -> Tick:
    return Tick(symbol=symbol, timestamp_ns=ts_ms * MS, bid_price=bid, bid_size=5.0, ask_price=ask, ask_size=5.0)


def bar(ts_ms: int, o: float, h: float, low: float, c: float) -> Candle:
    return Candle(symbol=SYM, timestamp_ns=ts_ms * MS, open=o, high=h, low=low, close=c)


def feed(matching: MatchingEngine, clock: ReplayClock, event: Tick | Candle) -> list[tuple[float, int]]:
    clock.advance(event.timestamp_ns)
    return [(fill.price, fill.timestamp_ns // MS) for fill in matching.on_market(event)]


def test_a_market_order_fills_at_the_next_ticks_touch_not_the_one_it_saw() -> None:
    matching, clock = engine()
    feed(matching, clock, tick(1, 99.0, 101.0))
    result = matching.submit(order("a"))
    assert (result.order.status, result.fills) == (OrderStatus.ACCEPTED, ())
    assert matching.reach("alpha") == {SYM: Reach(since=1 * MS)}
    assert feed(matching, clock, tick(2, 99.5, 100.5, symbol=OTHER)) == []  # another symbol's event
    assert feed(matching, clock, tick(3, 102.0, 103.0)) == [(103.0, 3)]
    assert matching.reach("alpha") == {}


def test_latency_holds_the_order_until_an_event_at_or_after_its_arrival() -> None:
    matching, clock = engine(latency_ms=50)
    feed(matching, clock, tick(100, 99.0, 101.0))
    matching.submit(order("a", Side.SELL))
    assert matching.reach("alpha") == {SYM: Reach(since=150 * MS)}
    assert feed(matching, clock, tick(120, 98.0, 100.0)) == []
    assert feed(matching, clock, tick(150, 97.0, 99.0)) == [(97.0, 150)]


def test_candles_fill_at_the_next_bars_open_or_with_close_at_the_decision_bars_close() -> None:
    matching, clock = engine()
    feed(matching, clock, bar(60_000, 100, 104, 99, 103))
    matching.submit(order("a"))
    assert feed(matching, clock, bar(120_000, 105, 106, 101, 102)) == [(105.0, 120_000)]

    on_close, clock = engine(candle_fill="close")
    feed(on_close, clock, bar(60_000, 100, 104, 99, 103))
    result = on_close.submit(order("b"))
    assert [(fill.price, fill.timestamp_ns // MS) for fill in result.fills] == [(103.0, 60_000)]


def test_a_limit_rests_from_its_arrival_and_fills_at_its_price_when_the_price_goes_through() -> None:
    matching, clock = engine()
    feed(matching, clock, bar(60_000, 100, 101, 99, 100))
    matching.submit(order("a", kind=OrderType.LIMIT, price=98.0))
    assert feed(matching, clock, bar(120_000, 100, 101, 98.0, 99)) == []  # touched, not through
    assert matching.reach("alpha") == {SYM: Reach(low=98.0)}  # resting: a price at or below 98 may fill it
    assert feed(matching, clock, bar(180_000, 99, 99.5, 97.0, 98.5)) == [(98.0, 180_000)]


def test_a_marketable_limit_on_ticks_takes_the_next_touch_within_its_limit() -> None:
    matching, clock = engine()
    feed(matching, clock, tick(1, 99.0, 100.0))
    matching.submit(order("a", kind=OrderType.LIMIT, price=100.0, tif=TimeInForce.IOC))
    assert feed(matching, clock, tick(2, 100.5, 101.0)) == []  # the next touch is above the limit: IOC cancelled
    assert matching.status("a") is not None and matching.status("a").status is OrderStatus.CANCELLED  # type: ignore[union-attr]


def test_a_stop_is_checked_from_the_next_bar() -> None:
    matching, clock = engine()
    feed(matching, clock, bar(60_000, 100, 110, 99, 109))  # this bar's high is above the stop: not for this order
    matching.submit(order("a", kind=OrderType.STOP, stop=108.0))
    assert feed(matching, clock, bar(120_000, 107, 107.5, 105, 106)) == []
    assert feed(matching, clock, bar(180_000, 106, 109, 105, 108.5)) == [(108.0, 180_000)]


def test_an_order_on_its_way_can_be_cancelled() -> None:
    matching, clock = engine()
    feed(matching, clock, tick(1, 99.0, 101.0))
    matching.submit(order("a"))
    state = matching.cancel("a")
    assert state is not None and state.status is OrderStatus.CANCELLED
    assert feed(matching, clock, tick(2, 99.0, 101.0)) == []


def test_arrival_rejects_a_negative_latency_and_an_unknown_candle_fill() -> None:
    with pytest.raises(ValueError, match="latency"):
        Arrival(delay_ns=-1)
    with pytest.raises(ValueError, match="candle fill"):
        Arrival(candle_fill="vwap")

"""``MatchingEngine.reach``: which events may change a strategy's working orders (a backtest lets the
strategy see every other event before the host steps through it, so a wrong answer breaks causality)."""

from __future__ import annotations

import random

import pytest

from host.clock import ReplayClock
from host.execution.matching import Arrival, MatchingEngine, Reach
from host.orders import OrderIntent
from sdk.events import Book, Candle, MarketEvent, OrderType, Side, Tick, TimeInForce, Trade

SYM = "BTCUSDT"
_KINDS = ("tick", "tick", "price", "trade", "book", "candle")
MS = 1_000_000


def engine(latency_ms: int = 0) -> tuple[MatchingEngine, ReplayClock]:
    clock = ReplayClock()
    return MatchingEngine(0.0, 0.0, clock=clock, arrival=Arrival(delay_ns=latency_ms * MS)), clock


def intent(cid: str, side: Side, kind: OrderType, price: float | None = None, stop: float | None = None,
           tif: TimeInForce = TimeInForce.GTC) -> OrderIntent:  # fmt: skip
    return OrderIntent(client_order_id=cid, strategy="alpha", symbol=SYM, side=side, order_type=kind, quantity=1.0,
                       price=price, stop_price=stop, time_in_force=tif)  # fmt: skip


def tick(ts_ms: int, bid: float, ask: float, size: float = 5.0, last: float | None = None) -> Tick:
    return Tick(symbol=SYM, timestamp_ns=ts_ms * MS, bid_price=bid, bid_size=size, ask_price=ask, ask_size=size,
                last_price=last)  # fmt: skip


def _trade(ts_ms: int, price: float) -> Trade:
    return Trade(symbol=SYM, timestamp_ns=ts_ms * MS, last_price=price, volume=1.0)


def _bar(ts_ms: int, low: float, high: float) -> Candle:
    return Candle(symbol=SYM, timestamp_ns=ts_ms * MS, open=high, high=high, low=low, close=low)


class TestReach:
    def test_no_working_orders_no_reach(self) -> None:
        """A strategy without working orders is reached by nothing."""
        matching, _ = engine()
        assert matching.reach("alpha") == {}

    def test_an_order_on_its_way_is_reached_from_its_arrival_time(self) -> None:
        """An order submitted in a backtest arrives with any event at or after submit time + latency."""
        matching, clock = engine(latency_ms=50)
        clock.advance(100 * MS)
        matching.submit(intent("a", Side.BUY, OrderType.LIMIT, price=90.0))
        reach = matching.reach("alpha")[SYM]
        assert reach == Reach(since=150 * MS)
        assert not reach.touches(tick(149, 100.0, 101.0)) and reach.touches(tick(150, 100.0, 101.0))

    @pytest.mark.parametrize(
        ("side", "kind", "price", "stop", "touching", "clear"),
        [
            (Side.BUY, OrderType.LIMIT, 99.0, None, tick(2, 98.0, 99.0), tick(2, 99.5, 100.5)),
            (Side.SELL, OrderType.LIMIT, 101.0, None, tick(2, 101.0, 102.0), tick(2, 99.5, 100.5)),
            (Side.BUY, OrderType.STOP, None, 102.0, tick(2, 101.0, 102.0), tick(2, 100.0, 101.0)),
            (Side.SELL, OrderType.STOP, None, 98.0, tick(2, 99.0, 99.5, last=98.0), tick(2, 99.0, 100.0)),
        ],
    )
    def test_a_resting_limit_or_waiting_stop_is_reached_only_by_a_price_across_it(
        self, side: Side, kind: OrderType, price: float | None, stop: float | None, touching: Tick, clear: Tick
    ) -> None:
        """A buy limit (sell stop) is reached by a price at or below it, a sell limit (buy stop) at or above."""
        matching, clock = engine()
        clock.advance(1 * MS)
        matching.on_market(tick(1, 99.5, 100.5))
        matching.submit(intent("a", side, kind, price=price, stop=stop))
        clock.advance(2 * MS)
        matching.on_market(tick(2, 99.5, 100.5))  # it arrives, and rests or waits
        reach = matching.reach("alpha")[SYM]
        assert reach.touches(touching) and not reach.touches(clear)

    @pytest.mark.parametrize(
        ("first", "touching", "clear"),
        [
            (_trade(1, 100.0), _trade(2, 98.9), _trade(2, 99.1)),
            (_bar(1, 100.0, 100.0), _bar(2, 98.9, 100.5), _bar(2, 99.1, 100.5)),
            (_trade(1, 100.0), Book(symbol=SYM, timestamp_ns=2 * MS, bids=((98.0, 1.0),), asks=((99.0, 1.0),)),
             Book(symbol=SYM, timestamp_ns=2 * MS, bids=((99.5, 1.0),), asks=((99.6, 1.0),))),
        ],
    )  # fmt: skip
    def test_a_buy_limit_on_trades_bars_and_books(self, first: MarketEvent, touching: MarketEvent,
                                                  clear: MarketEvent) -> None:  # fmt: skip
        """A resting buy limit at 99 is reached by a trade, a bar's low or a book's best ask at or below 99."""
        matching, clock = engine()
        clock.advance(1 * MS)
        matching.on_market(first)
        matching.submit(intent("a", Side.BUY, OrderType.LIMIT, price=99.0))
        clock.advance(2 * MS)
        matching.on_market(first)  # it arrives, above the limit: it rests
        reach = matching.reach("alpha")[SYM]
        assert reach == Reach(low=99.0)
        assert reach.touches(touching) and not reach.touches(clear)

    def test_a_market_order_not_filled_yet_is_reached_by_any_event(self) -> None:
        """A market order that found no asks rests and takes the next price, whatever it is."""
        matching, clock = engine()
        matching.submit(intent("a", Side.BUY, OrderType.MARKET))
        clock.advance(1 * MS)
        assert matching.on_market(Book(symbol=SYM, timestamp_ns=1 * MS, bids=((99.0, 1.0),), asks=())) == []
        assert matching.reach("alpha") == {SYM: Reach(since=0)}

    @pytest.mark.parametrize("seed", range(20))
    @pytest.mark.parametrize("kinds", [_KINDS, ("candle",), ("trade",), ("price", "trade")])
    def test_an_event_out_of_reach_changes_nothing(self, seed: int, kinds: tuple[str, ...]) -> None:
        """Random orders of every kind against random ticks, trades, books and bars (mixed, and each level of
        detail alone): an event that ``reach`` says cannot change the strategy's orders makes no fill,
        changes no order and leaves the reach as it was."""
        rng = random.Random(seed)
        matching, clock = engine(latency_ms=rng.choice([0, 0, 30]))
        checked = 0
        for step in range(1, 300):
            ts = step * 10
            if rng.random() < 0.15:
                matching.submit(_random_intent(rng, f"o{step}"))
            event = _random_event(rng, ts, kinds)
            clock.advance(ts * MS)
            reach = matching.reach("alpha").get(SYM)
            before = sorted(map(repr, matching.working(SYM)))
            fills = matching.on_market(event)
            if reach is not None and not reach.touches(event):
                checked += 1
                assert fills == [], (event, reach)
                assert sorted(map(repr, matching.working(SYM))) == before, (event, reach)
                assert matching.reach("alpha").get(SYM) == reach
        assert checked > 0  # the property was put to the test


def _random_intent(rng: random.Random, cid: str) -> OrderIntent:
    side = rng.choice([Side.BUY, Side.SELL])
    kind = rng.choice([OrderType.MARKET, OrderType.LIMIT, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT])
    price = round(rng.uniform(98, 102), 1) if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop = round(rng.uniform(98, 102), 1) if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    tif = rng.choice([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])
    return intent(cid, side, kind, price=price, stop=stop, tif=tif)


def _random_event(rng: random.Random, ts_ms: int, kinds: tuple[str, ...]) -> MarketEvent:
    mid = 100 + rng.uniform(-2, 2)
    half = rng.uniform(0.05, 0.5)
    kind = rng.choice(kinds)
    ts = ts_ms * MS
    if kind in ("tick", "price"):
        last = rng.choice([None, round(mid + rng.uniform(-1, 1), 2)])
        return tick(ts_ms, round(mid - half, 2), round(mid + half, 2), 0.0 if kind == "price" else 2.0, last)
    if kind == "trade":
        return Trade(symbol=SYM, timestamp_ns=ts, last_price=round(mid, 2), volume=rng.choice([0.0, 0.5, 3.0]))
    if kind == "book":
        bids = tuple((round(mid - half - i * 0.3, 2), rng.choice([0.0, 0.5, 2.0])) for i in range(rng.randint(0, 3)))
        asks = tuple((round(mid + half + i * 0.3, 2), rng.choice([0.0, 0.5, 2.0])) for i in range(rng.randint(0, 3)))
        return Book(symbol=SYM, timestamp_ns=ts, bids=bids, asks=asks)
    low, high = mid - rng.uniform(0, 1), mid + rng.uniform(0, 1)
    return Candle(symbol=SYM, timestamp_ns=ts, open=round(rng.uniform(low, high), 2), high=round(high, 2),
                  low=round(low, 2), close=round(rng.uniform(low, high), 2))  # fmt: skip

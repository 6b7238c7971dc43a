"""The generated demo feed ``strategy-engine run`` replays when it has no config at all.

Deterministic for a seed: two symbols (BTCUSDT near 60,000 and ETHUSDT near 2,600) stepping
every 100 ms of feed time, each step a best bid/ask ``Tick``, a top-10 ``Book`` every second
step, a ``Trade`` on most steps and a one-minute ``Candle`` when a minute closes. Prices follow
a random walk whose drift switches regime every few minutes (up, down, flat), so momentum has
trends to find; spreads and book imbalance vary, so market making and scalping have something
to do. Nothing here reads the network or a file: the feed is made, not shipped.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from sdk.events import Book, Candle, Event, Tick, Trade

__all__ = ["DemoSymbol", "demo_feed"]

_STEP_NS = 100_000_000
_MINUTE_NS = 60_000_000_000
_START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


@dataclass
class DemoSymbol:
    symbol: str
    price: float
    tick_size: float
    volatility: float  # per-step standard deviation, as a fraction
    lot: float
    open: float = 0.0
    high: float = 0.0
    low: float = math.inf
    volume: float = 0.0
    quote_volume: float = 0.0
    sequence: int = 0
    drift: float = 0.0
    levels: list[float] = field(default_factory=list)

    def round(self, price: float) -> float:
        return round(round(price / self.tick_size) * self.tick_size, 8)


def _symbols() -> list[DemoSymbol]:
    return [
        DemoSymbol("BTCUSDT", 60_000.0, 0.01, 0.00012, 0.002),
        DemoSymbol("ETHUSDT", 2_600.0, 0.01, 0.00015, 0.05),
    ]


def demo_feed(minutes: float = 20.0, seed: int = 7) -> Iterator[Event]:
    """Market data for ``minutes`` of feed time, in time order."""
    rng = random.Random(seed)
    symbols = _symbols()
    steps = int(minutes * 60 * 10)
    for step in range(steps):
        now = _START_NS + step * _STEP_NS
        if step % 1800 == 0:
            for s in symbols:
                s.drift = rng.choice((1.0, -1.0, 0.0)) * s.volatility * 0.02
        for s in symbols:
            yield from _step(s, now, step, rng)


def _step(s: DemoSymbol, now: int, step: int, rng: random.Random) -> Iterator[Event]:
    if s.open == 0.0:
        s.open = s.high = s.low = s.price
    s.price *= math.exp(s.drift + rng.gauss(0.0, s.volatility))
    spread_ticks = 1 + int(rng.expovariate(1.0) * 2)
    bid = s.round(s.price - spread_ticks * s.tick_size / 2)
    ask = max(s.round(bid + spread_ticks * s.tick_size), bid + s.tick_size)
    s.sequence += 1
    yield Tick(
        symbol=s.symbol,
        timestamp_ns=now,
        bid_price=bid,
        bid_size=_size(rng, s.lot),
        ask_price=ask,
        ask_size=_size(rng, s.lot),
        last_price=None,
        sequence=s.sequence,
    )
    if step % 2 == 0:
        s.sequence += 1
        yield _book(s, now + 1_000, bid, ask, rng)
    if rng.random() < 0.7:
        price = ask if rng.random() < 0.5 else bid
        quantity = round(_size(rng, s.lot) / 4, 6) or s.lot
        s.volume += quantity
        s.quote_volume += quantity * price
        s.high, s.low = max(s.high, price), min(s.low, price)
        s.sequence += 1
        yield Trade(
            symbol=s.symbol,
            timestamp_ns=now + 2_000,
            last_price=price,
            volume=quantity,
            volume_quote=round(quantity * price, 8),
            side=None,
            sequence=s.sequence,
        )
    if (step + 1) % 600 == 0:
        s.sequence += 1
        yield _candle(s, now + _STEP_NS - _MINUTE_NS)


def _size(rng: random.Random, lot: float) -> float:
    return round(lot * (1 + rng.expovariate(0.5)), 6)


def _book(s: DemoSymbol, now: int, bid: float, ask: float, rng: random.Random) -> Book:
    skew = rng.uniform(-0.8, 0.8)
    bids = tuple((s.round(bid - i * s.tick_size), _size(rng, s.lot) * (1 + skew)) for i in range(10))
    asks = tuple((s.round(ask + i * s.tick_size), _size(rng, s.lot) * (1 - skew)) for i in range(10))
    return Book(symbol=s.symbol, timestamp_ns=now, bids=bids, asks=asks, last_price=None, sequence=s.sequence)


def _candle(s: DemoSymbol, open_ns: int) -> Candle:
    close = s.round(s.price)
    high, low = max(s.high, s.open, close), min(s.low, s.open, close)
    candle = Candle(
        symbol=s.symbol,
        timestamp_ns=open_ns,
        open=s.round(s.open),
        high=s.round(high),
        low=s.round(low),
        close=close,
        volume=round(s.volume, 6),
        volume_quote=round(s.quote_volume, 2),
        sequence=s.sequence,
    )
    s.open, s.high, s.low, s.volume, s.quote_volume = close, close, close, 0.0, 0.0
    return candle

"""The host's feeds: market data from Redis pub/sub (``market``; its formats, the seed's and b25's, in
``formats``; ``health``); fills and positions from NATS (``host.feeds.fills``)."""

from __future__ import annotations

from host.feeds.formats import FORMATS, WireFormat
from host.feeds.health import FeedHealth, Gap, Numbering, SymbolHealth
from host.feeds.market import FeedStats, MarketDataFeed, RedisCommandError

__all__ = [
    "FORMATS",
    "FeedHealth",
    "FeedStats",
    "Gap",
    "MarketDataFeed",
    "Numbering",
    "RedisCommandError",
    "SymbolHealth",
    "WireFormat",
]

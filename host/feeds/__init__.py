"""The host's feeds: market data from Redis pub/sub (``market``, ``health``); fills and positions from NATS
(``host.feeds.fills``)."""

from __future__ import annotations

from host.feeds.health import FeedHealth, Gap, SymbolHealth
from host.feeds.market import FeedStats, MarketDataFeed, RedisCommandError

__all__ = ["FeedHealth", "FeedStats", "Gap", "MarketDataFeed", "RedisCommandError", "SymbolHealth"]

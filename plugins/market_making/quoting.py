"""Where to quote: a pure function of the market's top of book, our inventory and the config.

No state and no I/O, so every pricing rule is tested on plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import MarketMakingConfig

__all__ = ["BPS", "Quotes", "quotes"]

BPS = 10_000.0
_EPSILON = 1e-12


@dataclass(frozen=True, slots=True)
class Quotes:
    """The prices we want on each side; None means that side must not be quoted."""

    bid: float | None
    ask: float | None


NO_QUOTES = Quotes(None, None)


def quotes(config: MarketMakingConfig, best_bid: float, best_ask: float, inventory: float) -> Quotes:
    """Inventory-skewed quotes around the mid, passive, within max_inventory; none in a narrow market."""
    mid = (best_bid + best_ask) / 2
    market_spread_bps = (best_ask - best_bid) / mid * BPS
    if best_ask <= best_bid or market_spread_bps < config.min_spread_bps:
        return NO_QUOTES
    ratio = max(-1.0, min(1.0, inventory / config.max_inventory))
    shift = config.inventory_skew * ratio
    bid = mid * (1 - config.spread / 2 - shift)
    ask = mid * (1 + config.spread / 2 - shift)
    # A quote that would cross the market goes back to the touch on its own side, so we never take.
    if bid >= best_ask:
        bid = best_bid
    if ask <= best_bid:
        ask = best_ask
    can_buy = inventory + config.order_size <= config.max_inventory + _EPSILON
    can_sell = inventory - config.order_size >= -config.max_inventory - _EPSILON
    return Quotes(bid if can_buy else None, ask if can_sell else None)

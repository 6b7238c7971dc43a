"""Parameters of the market-making strategy (the seed service's names, plus the requote threshold)."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import StrategyConfig

__all__ = ["MarketMakingConfig"]


@dataclass(frozen=True)
class MarketMakingConfig(StrategyConfig):
    """Two-sided quotes around the mid, skewed by inventory. Fractions are of the mid price."""

    spread: float = 0.002
    """Full width of our quotes as a fraction of the mid (0.002: bid 0.1 % below, ask 0.1 % above)."""
    order_size: float = 0.01
    """Size of each quote (base asset)."""
    max_inventory: float = 0.1
    """Largest absolute inventory (base asset) a fill of one of our quotes may lead to."""
    inventory_skew: float = 0.001
    """How far both quotes shift against the inventory at full inventory, as a fraction of the mid.

    The shift is ``inventory_skew * inventory / max_inventory``: long, both quotes move down (sell
    sooner, buy later); short, both move up. 0 disables skewing."""
    min_spread_bps: float = 0.0
    """No quotes while the market's own spread (best ask - best bid) is narrower than this, in basis
    points of the mid (1 bp = 0.01 %). 0 disables the check."""
    requote_threshold_bps: float = 1.0
    """A working quote stays while the price we want moved at most this much (basis points of the mid)."""

    def validate(self) -> None:
        if not 0 < self.spread < 1:
            self.fail("spread", f"must be a fraction in (0, 1) such as 0.002, got {self.spread}")
        if self.max_inventory <= 0:
            self.fail("max_inventory", f"must be > 0, got {self.max_inventory}")
        if not 0 < self.order_size <= self.max_inventory:
            self.fail("order_size", f"must be > 0 and <= max_inventory ({self.max_inventory}), got {self.order_size}")
        if self.inventory_skew < 0 or self.spread / 2 + self.inventory_skew >= 1:
            self.fail("inventory_skew", f"must be >= 0 and below 1 - spread/2, got {self.inventory_skew}")
        if self.min_spread_bps < 0:
            self.fail("min_spread_bps", f"must be >= 0 (basis points), got {self.min_spread_bps}")
        if self.requote_threshold_bps < 0:
            self.fail("requote_threshold_bps", f"must be >= 0 (basis points), got {self.requote_threshold_bps}")

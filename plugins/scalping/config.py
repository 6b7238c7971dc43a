"""Parameters of the scalping strategy (the seed service's names, plus entry size and plumbing).

Units: ``target_spread_bps`` is in basis points of the mid (1 bp = 0.01 %); ``profit_target`` and
``stop_loss`` are fractions of the entry price (0.001 = 0.1 % = 10 bp); times are seconds of event
time; sizes are in the base asset.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdk import StrategyConfig

__all__ = ["ScalpingConfig"]


@dataclass(frozen=True)
class ScalpingConfig(StrategyConfig):
    """Order-book-imbalance scalps with a profit target, a stop loss and a time limit."""

    target_spread_bps: float = 5.0
    """Enter only while the market spread (best ask - best bid) is at most this, in bp of the mid."""
    profit_target: float = 0.001
    """Close when the position gains this fraction of its entry price (0.001 = 0.1 %)."""
    stop_loss: float = 0.0005
    """Close when the position loses this fraction of its entry price (0.0005 = 0.05 %)."""
    max_hold_time_seconds: float = 60.0
    """Close a position this many event-time seconds after its entry fill, whatever its P&L."""
    max_position: float = 0.1
    """Largest absolute position. One scalp at a time, entered from flat, so it bounds order_size."""
    order_size: float = 0.01
    """Size of each entry (base asset)."""
    imbalance_threshold: float = 0.3
    """Enter long when book imbalance >= this, short when <= -this (imbalance is in [-1, 1])."""
    depth: int = 5
    """Book levels per side counted in the imbalance."""
    retry_after_seconds: float = 10.0
    """After an order is rejected, event-time seconds before the next one for that symbol."""
    pending_timeout_seconds: float = 10.0
    """Safety net for an order restored from saved state only: one that hears nothing (no fill, no
    order update) this many event-time seconds after it was sent no longer blocks the symbol.
    Orders this instance sends are tracked by their order updates and never time out."""

    def validate(self) -> None:
        if self.target_spread_bps <= 0:
            self.fail("target_spread_bps", f"must be > 0 (basis points), got {self.target_spread_bps}")
        for name in ("profit_target", "stop_loss"):
            value = getattr(self, name)
            if not 0 < value < 1:
                self.fail(name, f"must be a fraction of the entry price in (0, 1) such as 0.001, got {value}")
        if self.max_hold_time_seconds <= 0:
            self.fail("max_hold_time_seconds", f"must be > 0, got {self.max_hold_time_seconds}")
        if self.max_position <= 0:
            self.fail("max_position", f"must be > 0, got {self.max_position}")
        if not 0 < self.order_size <= self.max_position:
            self.fail("order_size", f"must be > 0 and <= max_position ({self.max_position}), got {self.order_size}")
        if not 0 < self.imbalance_threshold <= 1:
            self.fail("imbalance_threshold", f"must be in (0, 1], got {self.imbalance_threshold}")
        if self.depth < 1:
            self.fail("depth", f"must be >= 1, got {self.depth}")
        if self.retry_after_seconds < 0:
            self.fail("retry_after_seconds", f"must be >= 0, got {self.retry_after_seconds}")
        if self.pending_timeout_seconds <= 0:
            self.fail("pending_timeout_seconds", f"must be > 0, got {self.pending_timeout_seconds}")

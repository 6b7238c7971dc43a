"""Parameters of the momentum strategy (the seed service's names, plus order size and plumbing)."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import StrategyConfig

__all__ = ["PRICE_SOURCES", "MomentumConfig"]

PRICE_SOURCES = ("candle", "trade", "tick")


@dataclass(frozen=True)
class MomentumConfig(StrategyConfig):
    """Momentum over the last ``lookback_period`` prices of one source."""

    lookback_period: int = 20
    """Prices between the two compared: return = latest / price ``lookback_period`` observations ago - 1."""
    threshold: float = 0.02
    """Return, as a fraction (0.02 = 2 %), beyond which momentum counts as up (> +t) or down (< -t)."""
    max_position: float = 1.0
    """Largest absolute position (base asset), orders in flight included."""
    quantity: float = 0.1
    """Size of one order (base asset); the last one before the limit is cut down to fit."""
    price_source: str = "candle"
    """Which prices form the lookback: "candle" (closes), "trade" (trade prices) or "tick" (bid/ask mids)."""
    pending_timeout_seconds: float = 120.0
    """Safety net for orders restored from saved state only: one that hears nothing (no fill, no
    order update) this many event-time seconds after it was sent is taken as gone. Orders this
    instance sends are tracked by their order updates and never time out."""

    def validate(self) -> None:
        if self.lookback_period < 1:
            self.fail("lookback_period", f"must be >= 1, got {self.lookback_period}")
        if not 0 < self.threshold < 1:
            self.fail("threshold", f"must be a fraction in (0, 1) such as 0.02, got {self.threshold}")
        if self.max_position <= 0:
            self.fail("max_position", f"must be > 0, got {self.max_position}")
        if not 0 < self.quantity <= self.max_position:
            self.fail("quantity", f"must be > 0 and <= max_position ({self.max_position}), got {self.quantity}")
        if self.price_source not in PRICE_SOURCES:
            self.fail("price_source", f"must be one of {', '.join(PRICE_SOURCES)}, got {self.price_source!r}")
        if self.pending_timeout_seconds <= 0:
            self.fail("pending_timeout_seconds", f"must be > 0, got {self.pending_timeout_seconds}")

"""Position accounting from fills: signed quantity, average entry price, realized and unrealized P&L.

Pure and shared: the SDK's test harness and the host's ledger both use it, so a position means
the same everywhere. Conventions:
- A fill in the direction of the position (or from flat) moves the average entry price to the
  quantity-weighted mean; a fill against it realizes ``(price - avg_entry) * closed * sign``.
- A fill larger than the position flips it: the rest opens a new position at the fill price.
- Fees are subtracted from realized P&L when the fill happens.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdk.events import Fill, Position, Side

__all__ = ["PositionBook", "PositionState"]

_EPSILON = 1e-12


@dataclass(slots=True)
class PositionState:
    """One symbol's running position (mutable; use ``snapshot`` for an immutable Position)."""

    symbol: str
    quantity: float = 0.0
    avg_entry_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    last_price: float = 0.0

    def apply(self, side: Side, quantity: float, price: float, fee: float = 0.0) -> float:
        """Apply one fill; return the P&L it realized (fee included)."""
        signed = quantity * side.sign
        realized = -fee
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            total = self.quantity + signed
            self.avg_entry_price = (self.avg_entry_price * abs(self.quantity) + price * quantity) / abs(total)
            self.quantity = total
        else:
            closed = min(quantity, abs(self.quantity))
            direction = 1 if self.quantity > 0 else -1
            realized += (price - self.avg_entry_price) * closed * direction
            remainder = quantity - closed
            self.quantity += closed * side.sign
            if abs(self.quantity) < _EPSILON:
                self.quantity = 0.0
                self.avg_entry_price = 0.0
            if remainder > _EPSILON:
                self.quantity = remainder * side.sign
                self.avg_entry_price = price
        self.realized_pnl += realized
        self.fees += fee
        self.last_price = price
        return realized

    def unrealized_pnl(self, mark: float | None = None) -> float:
        price = self.last_price if mark is None else mark
        if self.quantity == 0 or price <= 0:
            return 0.0
        return (price - self.avg_entry_price) * self.quantity

    def snapshot(self, timestamp_ns: int, strategy: str = "", mark: float | None = None) -> Position:
        price = self.last_price if mark is None else mark
        return Position(
            symbol=self.symbol,
            quantity=self.quantity,
            avg_entry_price=self.avg_entry_price,
            timestamp_ns=timestamp_ns,
            current_price=price,
            unrealized_pnl=self.unrealized_pnl(price),
            realized_pnl=self.realized_pnl,
            strategy=strategy,
        )


class PositionBook:
    """Positions of one strategy, per symbol, built from its fills."""

    def __init__(self, strategy: str = "") -> None:
        self.strategy = strategy
        self._states: dict[str, PositionState] = {}

    def state(self, symbol: str) -> PositionState:
        state = self._states.get(symbol)
        if state is None:
            state = self._states[symbol] = PositionState(symbol)
        return state

    def apply_fill(self, fill: Fill) -> Position:
        """Apply a fill and return the symbol's position after it."""
        state = self.state(fill.symbol)
        state.apply(fill.side, fill.quantity, fill.price, fill.fee)
        return state.snapshot(fill.timestamp_ns, self.strategy)

    def mark(self, symbol: str, price: float) -> None:
        """Record the latest market price used for unrealized P&L."""
        self.state(symbol).last_price = price

    def positions(self) -> dict[str, PositionState]:
        return dict(self._states)

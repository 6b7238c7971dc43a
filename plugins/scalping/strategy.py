"""Scalping: short trades on order-book imbalance, closed at a profit target, a stop loss or a time limit.

Model, per symbol, one scalp at a time:

- Entry (``Book`` events only): while flat with no order in flight, if the market spread is at
  most ``target_spread_bps`` and ``book.imbalance(depth)`` is at least ``imbalance_threshold``,
  buy ``order_size`` at market; at most ``-imbalance_threshold``, sell. More resting size on the
  bid than on the ask is read as buying pressure.
- Exit (``Book``, ``Tick`` and ``Timer`` events): the whole position is closed at market when
  its return reaches ``profit_target`` or ``-stop_loss``, or when it has been held
  ``max_hold_time_seconds``. The return is marked at the price the exit would get (the best bid
  for a long, the best ask for a short) against the host's average entry price. A ``Timer``
  event checks only the time limit, so a quiet market cannot hold a position past it.
- Hold time is event time from the entry *fill* (not from sending the order, and never the wall
  clock), so a backtest exits at the same moments as live trading. A position this strategy
  did not see open (say, after a restart without state) is timed from when it is first seen.
- An order in flight blocks further orders for that symbol until fills cover it, the position
  goes flat (for an exit), or its ``OrderUpdate`` (``on_order``, matched by the client order id
  ``emit`` returned) says it ended unfilled: cancelled or expired frees the symbol at once, rejected
  after ``retry_after_seconds``, so a rule that keeps refusing (a rate limit, a stale price) is not
  asked again on every book. An exit whose reason still holds is then sent again.
- ``pending_timeout_seconds`` is only a safety net for an order restored from saved state: one
  that hears nothing that long after it was sent no longer blocks, with a warning, because its
  updates may have gone to the runner that saved it (an order that settled while the engine was
  stopping). Orders this instance sends never time out.

Positions are the host's (``self.position``, built from fills). Handlers run one at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from sdk import Book, Fill, OrderUpdate, OrderUpdateStatus, Position, Side, Signal, Strategy, Tick, Timer

from .config import ScalpingConfig

__all__ = ["Scalping"]

BPS = 10_000.0
_NS_PER_SECOND = 1_000_000_000
_EPSILON = 1e-12
_STATE_VERSION = 2


@dataclass(slots=True)
class _Order:
    """An order sent and not yet filled."""

    client_order_id: str
    side: Side
    quantity: float
    since_ns: int
    entry: bool  # True: opens a scalp; False: closes one
    restored: bool = False  # from saved state, and not heard of since


@dataclass(slots=True)
class _SymbolState:
    pending: _Order | None = None
    entry_ns: int | None = None  # event time of the open position's first entry fill
    retry_at_ns: int = 0  # after a rejection: no new order before this event time


class Scalping(Strategy[ScalpingConfig]):
    """Enters on strong book imbalance in a tight market; exits on target, stop or time."""

    name: ClassVar[str] = "scalping"

    def __init__(self, config: ScalpingConfig) -> None:
        super().__init__(config)
        self._symbols: dict[str, _SymbolState] = {}

    # ---------------------------------------------------------------- events

    def on_book(self, book: Book) -> None:
        if book.best_bid is None or book.best_ask is None or not self._ready(book.symbol):
            return
        bid, ask = book.best_bid[0], book.best_ask[0]
        if self._flat(book.symbol):
            self._maybe_enter(book, bid, ask)
        else:
            self._maybe_exit(book.symbol, bid, ask)

    def on_tick(self, tick: Tick) -> None:
        if self._ready(tick.symbol) and not self._flat(tick.symbol):
            self._maybe_exit(tick.symbol, tick.bid_price, tick.ask_price)

    def on_timer(self, timer: Timer) -> None:
        for symbol in list(self._symbols):
            if self._ready(symbol) and not self._flat(symbol) and self._held_too_long(symbol):
                self._close(symbol, "max_hold_time")

    def on_fill(self, fill: Fill) -> None:
        state = self._state(fill.symbol)
        pending = state.pending
        if state.entry_ns is None and (pending is None or pending.entry):
            state.entry_ns = fill.timestamp_ns
        if pending is not None and pending.side is fill.side:
            pending.quantity -= fill.quantity
            pending.restored = False
            if pending.quantity <= _EPSILON:
                state.pending = None

    def on_order(self, update: OrderUpdate) -> None:
        """The order in flight: what remains of it, or that it ended (see the module docstring)."""
        state = self._symbols.get(update.symbol)
        pending = None if state is None else state.pending
        if state is None or pending is None or pending.client_order_id != update.client_order_id:
            return
        if not update.done:
            pending.quantity, pending.restored = update.remaining_quantity, False
            return
        state.pending = None
        if update.status is OrderUpdateStatus.FILLED:
            return
        if update.status is OrderUpdateStatus.REJECTED:
            state.retry_at_ns = self.now_ns + round(self.config.retry_after_seconds * _NS_PER_SECOND)
        self.log.info(
            "order_not_filled", symbol=update.symbol, entry=pending.entry, status=update.status.value,
            rule=update.rule, reason=update.reason,
        )  # fmt: skip

    def on_position(self, position: Position) -> None:
        if abs(position.quantity) > _EPSILON:
            return
        state = self._state(position.symbol)
        state.entry_ns = None
        if state.pending is not None and not state.pending.entry:
            state.pending = None

    # ---------------------------------------------------------------- decisions

    def _maybe_enter(self, book: Book, bid: float, ask: float) -> None:
        mid = (bid + ask) / 2
        if ask <= bid or (ask - bid) / mid * BPS > self.config.target_spread_bps:
            return
        imbalance = book.imbalance(self.config.depth)
        if abs(imbalance) < self.config.imbalance_threshold:
            return
        side = Side.BUY if imbalance > 0 else Side.SELL
        state = self._state(book.symbol)
        state.entry_ns = None
        self._send(book.symbol, side, self.config.order_size, entry=True, reason="imbalance")

    def _maybe_exit(self, symbol: str, bid: float, ask: float) -> None:
        position = self.position(symbol)
        if position is None or position.avg_entry_price <= 0:
            reason = None
        else:
            mark = bid if position.quantity > 0 else ask
            direction = 1 if position.quantity > 0 else -1
            gain = (mark / position.avg_entry_price - 1) * direction
            reason = self._exit_reason(gain)
        if reason is None and self._held_too_long(symbol):
            reason = "max_hold_time"
        if reason is not None:
            self._close(symbol, reason)

    def _exit_reason(self, gain: float) -> str | None:
        if gain >= self.config.profit_target:
            return "profit_target"
        if gain <= -self.config.stop_loss:
            return "stop_loss"
        return None

    def _held_too_long(self, symbol: str) -> bool:
        state = self._state(symbol)
        if state.entry_ns is None:
            state.entry_ns = self.now_ns  # a position we did not see open: time it from now
        return self.now_ns - state.entry_ns >= self.config.max_hold_time_seconds * _NS_PER_SECOND

    def _close(self, symbol: str, reason: str) -> None:
        quantity = self.position_quantity(symbol)
        side = Side.SELL if quantity > 0 else Side.BUY
        self._send(symbol, side, abs(quantity), entry=False, reason=reason)

    def _send(self, symbol: str, side: Side, quantity: float, *, entry: bool, reason: str) -> None:
        client_order_id = self.emit(Signal(symbol=symbol, side=side, quantity=quantity, metadata={"reason": reason}))
        self._state(symbol).pending = _Order(client_order_id, side, quantity, self.now_ns, entry)

    # ---------------------------------------------------------------- helpers

    def _ready(self, symbol: str) -> bool:
        """No order in flight for ``symbol`` and no rejection to sit out (a restored order that heard
        nothing for ``pending_timeout_seconds`` is dropped with a warning first)."""
        state = self._state(symbol)
        pending = state.pending
        if self.now_ns < state.retry_at_ns:
            return False
        if pending is None:
            return True
        if (
            not pending.restored
            or self.now_ns - pending.since_ns <= self.config.pending_timeout_seconds * _NS_PER_SECOND
        ):
            return False
        self.log.warning(
            "pending_order_expired", symbol=symbol, client_order_id=pending.client_order_id, side=pending.side.value,
            quantity=pending.quantity,
        )  # fmt: skip
        state.pending = None
        return True

    def _flat(self, symbol: str) -> bool:
        return abs(self.position_quantity(symbol)) <= _EPSILON

    def _state(self, symbol: str) -> _SymbolState:
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = _SymbolState()
        return state

    # ---------------------------------------------------------------- hot reload

    def on_save(self) -> bytes:
        symbols = {symbol: _dump_state(state) for symbol, state in self._symbols.items()}
        return json.dumps({"version": _STATE_VERSION, "symbols": symbols}).encode()

    def on_load(self, state: bytes) -> None:
        """Restore entry times and orders in flight; unreadable state is dropped with a warning."""
        try:
            data = json.loads(state)
            if data.get("version") != _STATE_VERSION:
                raise ValueError(f"state version {data.get('version')!r}, expected {_STATE_VERSION}")
            self._symbols = {str(symbol): _load_state(item) for symbol, item in data["symbols"].items()}
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            self.log.warning("state_discarded", reason=str(err))
            self._symbols = {}


def _dump_state(state: _SymbolState) -> dict[str, Any]:
    p = state.pending
    order = None if p is None else [p.client_order_id, p.side.value, p.quantity, p.since_ns, p.entry]
    return {"entry_ns": state.entry_ns, "pending": order}


def _load_state(item: Any) -> _SymbolState:
    entry_ns = None if item["entry_ns"] is None else int(item["entry_ns"])
    if item["pending"] is None:
        return _SymbolState(None, entry_ns)
    client_order_id, side, quantity, since_ns, entry = item["pending"]
    order = _Order(str(client_order_id), Side(side), float(quantity), int(since_ns), bool(entry), restored=True)
    return _SymbolState(order, entry_ns)

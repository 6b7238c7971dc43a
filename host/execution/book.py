"""The host's books in memory: reference prices, positions, working orders, P&L, equity.

Model. The ledger is the durable truth; ``Book`` is its in-memory face for the per-order and
per-tick paths, loaded from the ledger at start and then kept in step by the execution engine
(``order_changed`` after every journaled transition, ``position_changed`` after every recorded
fill). Risk reads it synchronously through ``MarketView`` and ``BookView`` (host/risk/seams.py),
so a check never touches SQLite. Market data updates the reference prices (the mid of the latest
tick or book; else the last trade price or candle close, stamped with the bar's close time) and
with them unrealized P&L and equity; the equity high-water mark is kept here and persisted by the
engine now and then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from host.ledger import Ledger
from host.orders import OrderState, WorkingOrders
from sdk.events import Book as BookEvent
from sdk.events import Candle, MarketEvent, Position, Tick, Trade

__all__ = ["Book"]

_MINUTE_NS = 60_000_000_000


def _reference(event: MarketEvent) -> float | None:
    match event:
        case Tick():
            return (event.bid_price + event.ask_price) / 2
        case BookEvent():
            return event.mid
        case Trade():
            return event.last_price
        case Candle():
            return event.close
    return None


class Book:
    """Positions, working orders and prices as the host knows them now."""

    def __init__(self, initial_balance: float) -> None:
        self.initial_balance = initial_balance
        self._refs: dict[str, tuple[float, int]] = {}
        self._candle_open: dict[str, int] = {}
        self._positions: dict[tuple[str, str], Position] = {}
        self._orders = WorkingOrders()  # risk reads its running sums: O(1) per check
        self._slots: dict[tuple[str, str, str], str] = {}
        self._daily: dict[date, float] = {}
        self._realized = 0.0
        self._peak = initial_balance

    @classmethod
    def load(cls, ledger: Ledger, initial_balance: float, today: date) -> Book:
        """The books as the ledger holds them (after a restart: positions, working orders, peak)."""
        book = cls(initial_balance)
        for position in ledger.positions():
            book._positions[(position.strategy, position.symbol)] = position
            book._realized += position.realized_pnl
        for order in ledger.working_orders():
            book.order_changed(order)
        book._daily[today] = ledger.daily_pnl(today)
        book._peak = max(initial_balance, ledger.peak_equity() or initial_balance)
        return book

    # ---------------------------------------------------------------- updates

    def on_market(self, event: MarketEvent) -> None:
        price = _reference(event)
        if price is None:
            return
        stamp = self._candle_close(event) if isinstance(event, Candle) else event.timestamp_ns
        current = self._refs.get(event.symbol)
        if current is None or stamp >= current[1]:  # an older bar never overwrites a fresher quote
            self._refs[event.symbol] = (price, stamp)

    def _candle_close(self, candle: Candle) -> int:
        """A candle is stamped with its open time; its close is known when it closes, one interval later.

        The interval is the gap to the previous bar of the symbol (one minute until a second bar).
        """
        previous = self._candle_open.get(candle.symbol)
        self._candle_open[candle.symbol] = candle.timestamp_ns
        interval = candle.timestamp_ns - previous if previous and candle.timestamp_ns > previous else _MINUTE_NS
        return candle.timestamp_ns + interval

    def order_changed(self, state: OrderState) -> None:
        intent = state.intent
        key = intent.client_order_id
        slot = (intent.strategy, intent.symbol, intent.slot) if intent.slot else None
        new = key not in self._orders
        self._orders.update(state)
        if state.working:
            # The newest order in a slot holds it: a later update of the one it replaced (a fill or
            # a reply while that one's cancel is pending) must not take the slot back.
            if slot is not None and new:
                self._slots[slot] = key
        elif slot is not None and self._slots.get(slot) == key:
            del self._slots[slot]

    def position_changed(self, position: Position, day: date) -> None:
        key = (position.strategy, position.symbol)
        before = self._positions.get(key)
        realized = position.realized_pnl - (before.realized_pnl if before else 0.0)
        self._positions[key] = position
        self._realized += realized
        self._daily[day] = self._daily.get(day, 0.0) + realized

    # ---------------------------------------------------------------- MarketView

    def reference(self, symbol: str) -> tuple[float, int] | None:
        return self._refs.get(symbol)

    # ---------------------------------------------------------------- BookView

    def positions(self, strategy: str) -> Mapping[str, float]:
        return {sym: p.quantity for (sid, sym), p in self._positions.items() if sid == strategy and p.quantity}

    def all_positions(self) -> Mapping[str, float]:
        net: dict[str, float] = {}
        for (_, symbol), position in self._positions.items():
            net[symbol] = net.get(symbol, 0.0) + position.quantity
        return {symbol: quantity for symbol, quantity in net.items() if quantity}

    def working_orders(self) -> Iterable[OrderState]:
        return self._orders

    def daily_pnl(self, day: date) -> float:
        return self._daily.get(day, 0.0)

    def balance(self) -> float:
        return self.initial_balance + self._realized

    def equity(self) -> float:
        value = self.balance() + self.unrealized()
        if value > self._peak:
            self._peak = value
        return value

    def peak_equity(self) -> float:
        return self._peak

    # ---------------------------------------------------------------- queries

    def unrealized(self, strategy: str | None = None) -> float:
        return sum(self._marked(p)[1] for (sid, _), p in self._positions.items() if strategy is None or sid == strategy)

    def _marked(self, position: Position) -> tuple[float, float, int]:
        """(mark, unrealized P&L, time) of a position at the latest reference price, else its own."""
        ref = self._refs.get(position.symbol)
        mark = ref[0] if ref else position.current_price
        unrealized = (mark - position.avg_entry_price) * position.quantity if position.quantity and mark > 0 else 0.0
        return mark, unrealized, max(position.timestamp_ns, ref[1] if ref else 0)

    def realized(self, strategy: str | None = None) -> float:
        if strategy is None:
            return self._realized
        return sum(p.realized_pnl for (sid, _), p in self._positions.items() if sid == strategy)

    def strategy_positions(self, strategy: str) -> list[Position]:
        """This strategy's positions marked at the latest reference prices (what a new runner is given)."""
        out = []
        for (sid, symbol), p in self._positions.items():
            if sid == strategy:
                mark, unrealized, stamp = self._marked(p)
                out.append(
                    Position(
                        symbol=symbol,
                        quantity=p.quantity,
                        avg_entry_price=p.avg_entry_price,
                        timestamp_ns=stamp,
                        current_price=mark,
                        unrealized_pnl=unrealized,
                        realized_pnl=p.realized_pnl,
                        strategy=sid,
                    )
                )
        return out

    def all_strategy_positions(self) -> list[Position]:
        """Every (strategy, symbol) position held, as last recorded."""
        return list(self._positions.values())

    def order(self, client_order_id: str) -> OrderState | None:
        return self._orders.get(client_order_id)

    def slot_order(self, strategy: str, symbol: str, slot: str) -> OrderState | None:
        key = self._slots.get((strategy, symbol, slot))
        return None if key is None else self._orders.get(key)

    def strategy_orders(self, strategy: str | None = None) -> list[OrderState]:
        return [o for o in self._orders if strategy is None or o.intent.strategy == strategy]

"""sdk.testing.run_strategy: running a strategy over events with no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sdk import (
    Event,
    Fill,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    Side,
    Signal,
    Strategy,
    StrategyConfig,
    Tick,
    Timer,
)
from sdk.testing import run_strategy

TS = 1_704_164_645_000_000_000


def tick(price: float = 100.0, ts: int = TS, symbol: str = "BTCUSDT") -> Tick:
    return Tick(symbol=symbol, timestamp_ns=ts, bid_price=price, bid_size=1.0, ask_price=price + 1, ask_size=1.0)


def fill(side: Side = Side.BUY, quantity: float = 2.0, price: float = 100.0, strategy: str = "") -> Fill:
    return Fill(
        fill_id="f1",
        order_id="o1",
        symbol="BTCUSDT",
        side=side,
        price=price,
        quantity=quantity,
        timestamp_ns=TS,
        strategy=strategy,
    )


class BuyEveryTick(Strategy[StrategyConfig]):
    """Buys 1 on every tick; emits on start and stop too, records what it sees."""

    name = "buyer"

    def __init__(self, config: StrategyConfig | None = None, *, signal_on_start: bool = False) -> None:
        super().__init__(config if config is not None else StrategyConfig())
        self.signal_on_start = signal_on_start
        self.loaded: list[bytes] = []
        self.positions_seen: list[Position | None] = []
        self.ticks = 0

    def on_start(self) -> None:
        if self.signal_on_start:
            self.emit(Signal(symbol="BTCUSDT", side=Side.SELL, quantity=1.0))

    def on_load(self, state: bytes) -> None:
        self.loaded.append(state)

    def on_tick(self, tick: Tick) -> None:
        self.ticks += 1
        self.positions_seen.append(self.position(tick.symbol))
        self.emit(Signal(symbol=tick.symbol, side=Side.BUY, quantity=1.0))
        self.log.info("bought", price=tick.bid_price)

    def on_timer(self, timer: Timer) -> None:
        self.cancel("BTCUSDT", "bid")

    def on_save(self) -> bytes:
        return str(self.ticks).encode()


class Flaky(BuyEveryTick):
    """Raises on the tick priced 13."""

    def on_tick(self, tick: Tick) -> None:
        if tick.bid_price == 13.0:
            raise ZeroDivisionError("unlucky")
        super().on_tick(tick)


class Answered(BuyEveryTick):
    """Remembers the id of each order it asked for and the updates it heard about them."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []
        self.updates: list[OrderUpdate] = []

    def on_tick(self, tick: Tick) -> None:
        self.sent.append(self.emit(Signal(symbol=tick.symbol, side=Side.BUY, quantity=1.0)))

    def on_order(self, update: OrderUpdate) -> None:
        self.updates.append(update)


def rejected(client_order_id: str, strategy: str = "") -> OrderUpdate:
    return OrderUpdate(
        client_order_id=client_order_id, strategy=strategy, symbol="BTCUSDT", side=Side.BUY,
        status=OrderUpdateStatus.REJECTED, quantity=1.0, rule="max_position_size", timestamp_ns=TS + 1,
    )  # fmt: skip


class BadState(BuyEveryTick):
    def on_save(self) -> bytes:
        return {"ticks": self.ticks}  # type: ignore[return-value]


class TestInputs:
    def test_list_of_events(self) -> None:
        """A list of events is run in order; each tick's signal is collected."""
        result = run_strategy(BuyEveryTick(), [tick(), tick(101.0)])
        assert [s.side for s in result.signals] == [Side.BUY, Side.BUY]
        assert result.errors == []

    def test_json_lines_path(self, tmp_path: Path) -> None:
        """A JSON-lines file path (str or Path) is decoded through sdk._codec and run."""
        path = tmp_path / "events.jsonl"
        lines = [
            {"symbol": "BTCUSDT", "timestamp": "2024-01-02T03:04:05Z", "bid_price": "100", "ask_price": "101"},
            {"symbol": "BTCUSDT", "timestamp": "2024-01-02T03:04:06Z", "bid_price": "101", "ask_price": "102"},
        ]
        path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
        for source in (path, str(path)):
            strategy = BuyEveryTick()
            result = run_strategy(strategy, source)
            assert (strategy.ticks, len(result.signals)) == (2, 2)

    def test_generator_input(self) -> None:
        """Any iterable of events works, including a generator."""
        result = run_strategy(BuyEveryTick(), (tick(float(p)) for p in range(1, 4)))
        assert len(result.signals) == 3


class TestSignalEvents:
    def test_signal_event_indices(self) -> None:
        """signal_events gives, per signal, the index of the input event that produced it; -1 for on_start."""
        events: list[Event] = [tick(), Timer(name="minute", timestamp_ns=TS), tick(symbol="ETHUSDT"), tick()]
        result = run_strategy(BuyEveryTick(signal_on_start=True), events)
        assert result.signal_events == [-1, 0, 2, 3]
        assert [s.symbol for s in result.signals] == ["BTCUSDT", "BTCUSDT", "ETHUSDT", "BTCUSDT"]

    def test_indices_count_filtered_events(self) -> None:
        """Events the strategy does not want still count toward the index."""
        config = StrategyConfig(symbols=("BTCUSDT",))
        result = run_strategy(BuyEveryTick(config), [tick(symbol="ETHUSDT"), tick()])
        assert result.signal_events == [1]


class TestErrors:
    def test_raise_errors_reraises_the_strategy_exception(self) -> None:
        """With raise_errors=True (the default), the strategy's own exception propagates."""
        with pytest.raises(ZeroDivisionError, match="unlucky"):
            run_strategy(Flaky(), [tick(12.0), tick(13.0), tick(14.0)])

    def test_collected_errors_and_run_continues(self) -> None:
        """With raise_errors=False the error is collected and later events are still handled."""
        strategy = Flaky()
        result = run_strategy(strategy, [tick(12.0), tick(13.0), tick(14.0)], raise_errors=False)
        assert [(e.handler, e.kind, e.text) for e in result.errors] == [
            ("on_tick", "exception", "ZeroDivisionError: unlucky")
        ]
        assert result.signal_events == [0, 2]
        assert strategy.ticks == 2

    def test_collected_errors_are_the_public_handler_error(self) -> None:
        """result.errors holds sdk.testing.HandlerError, named in sdk.testing's public API."""
        from sdk import testing

        result = run_strategy(Flaky(StrategyConfig()), [tick(13.0), tick()], raise_errors=False)
        assert "HandlerError" in testing.__all__
        assert result.errors and all(isinstance(e, testing.HandlerError) for e in result.errors)

    def test_bad_state_raises_assertion(self) -> None:
        """A non-bytes on_save fails the run with an AssertionError naming on_save."""
        with pytest.raises(AssertionError, match="on_save: on_save returned dict, expected bytes"):
            run_strategy(BadState(), [tick()])

    def test_bad_state_collected(self) -> None:
        """With raise_errors=False a bad state is a collected bad_state error and state stays empty."""
        result = run_strategy(BadState(), [tick()], raise_errors=False)
        assert [e.kind for e in result.errors] == ["bad_state"]
        assert result.state == b""


class TestPositions:
    def test_fill_produces_position_visible_to_strategy(self) -> None:
        """After a fill, the strategy reads the position it produced via self.position()."""
        strategy = BuyEveryTick()
        run_strategy(strategy, [tick(), fill(Side.BUY, 2.0, 100.0), tick(), fill(Side.SELL, 0.5, 110.0), tick()])
        first, second, third = strategy.positions_seen
        assert first is None
        assert second is not None
        assert (second.quantity, second.avg_entry_price, second.strategy) == (2.0, 100.0, "test")
        assert third is not None
        assert third.quantity == 1.5
        assert third.realized_pnl == pytest.approx(5.0)

    def test_positions_from_fills_can_be_turned_off(self) -> None:
        """positions_from_fills=False delivers fills without synthesizing positions."""
        strategy = BuyEveryTick()
        run_strategy(strategy, [fill(), tick()], positions_from_fills=False)
        assert strategy.positions_seen == [None]

    def test_other_strategies_fills_are_ignored(self) -> None:
        """A fill attributed to another strategy id is neither delivered nor booked."""
        strategy = BuyEveryTick()
        run_strategy(strategy, [fill(strategy="someone-else"), tick()], strategy_id="mine")
        assert strategy.positions_seen == [None]

    def test_own_fills_are_booked_under_strategy_id(self) -> None:
        """A fill for this strategy id produces a position stamped with that id."""
        strategy = BuyEveryTick()
        run_strategy(strategy, [fill(strategy="mine"), tick()], strategy_id="mine")
        seen = strategy.positions_seen[0]
        assert seen is not None
        assert seen.strategy == "mine"


class TestOrderUpdates:
    def test_orders_are_numbered_in_emission_order(self) -> None:
        """A signal without an id becomes order-1, order-2, ...: a test can name it before the run."""
        strategy = Answered()
        result = run_strategy(strategy, [tick(), tick()])
        assert strategy.sent == ["order-1", "order-2"]
        assert [s.client_order_id for s in result.signals] == ["order-1", "order-2"]

    def test_an_update_in_the_list_reaches_on_order(self) -> None:
        """An OrderUpdate is fed like a tick or a fill, and the strategy matches it to its signal by id."""
        strategy = Answered()
        update = rejected("order-1")
        run_strategy(strategy, [tick(), update, tick()])
        assert strategy.updates == [update]
        assert strategy.updates[0].client_order_id == strategy.sent[0]

    def test_another_strategys_update_is_not_delivered(self) -> None:
        """An update naming another strategy id is not this strategy's; one naming none is."""
        strategy = Answered()
        run_strategy(strategy, [tick(), rejected("order-1", "other"), rejected("order-1", "")], strategy_id="mine")
        assert [u.strategy for u in strategy.updates] == [""]

    def test_updates_from_a_json_lines_file(self, tmp_path: Path) -> None:
        """A file's "type": "order" lines are order updates."""
        path = tmp_path / "events.jsonl"
        lines = [
            {"symbol": "BTCUSDT", "timestamp": "2024-01-02T03:04:05Z", "bid_price": 100, "ask_price": 101},
            {"type": "order", "client_order_id": "order-1", "symbol": "BTCUSDT", "side": "buy",
             "status": "filled", "quantity": 1, "filled_quantity": 1, "average_price": 101,
             "timestamp": "2024-01-02T03:04:06Z"},
        ]  # fmt: skip
        path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
        strategy = Answered()
        run_strategy(strategy, path)
        [update] = strategy.updates
        assert (update.client_order_id, update.status, update.done) == ("order-1", OrderUpdateStatus.FILLED, True)


class TestStateAndOutputs:
    def test_state_from_on_save(self) -> None:
        """result.state is what on_save returned at the end of the run."""
        assert run_strategy(BuyEveryTick(), [tick(), tick(), tick()]).state == b"3"

    def test_restore_is_loaded_before_start(self) -> None:
        """restore= is passed to on_load."""
        strategy = BuyEveryTick()
        run_strategy(strategy, [], restore=b"7")
        assert strategy.loaded == [b"7"]

    def test_no_restore_no_load(self) -> None:
        """Without restore, on_load is not called."""
        strategy = BuyEveryTick()
        run_strategy(strategy, [])
        assert strategy.loaded == []

    def test_logs_and_cancels_are_collected(self) -> None:
        """Log records and cancels end up in the result."""
        result = run_strategy(BuyEveryTick(), [tick(), Timer(name="minute", timestamp_ns=TS)])
        assert result.logs == [("info", "bought", {"price": 100.0})]
        assert [(c.symbol, c.slot) for c in result.cancels] == [("BTCUSDT", "bid")]

    def test_empty_run(self) -> None:
        """A run with no events still starts, saves and stops cleanly."""
        result: Any = run_strategy(BuyEveryTick(), [])
        assert (result.signals, result.errors, result.state) == ([], [], b"0")

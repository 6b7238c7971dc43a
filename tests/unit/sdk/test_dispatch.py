"""StrategySlot: the one place an event meets strategy code, and what it does when that code misbehaves."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sdk import (
    Book,
    Cancel,
    Candle,
    Fill,
    OrderUpdate,
    OrderUpdateStatus,
    Position,
    SdkError,
    Side,
    Signal,
    Strategy,
    StrategyConfig,
    Tick,
    Timer,
    Trade,
)
from sdk.dispatch import HandlerError, RecordingLogger, StrategySlot
from sdk.errors import ValidationError
from sdk.strategy import HANDLERS

TS = 1_704_164_645_000_000_000


def tick(symbol: str = "BTCUSDT", ts: int = TS) -> Tick:
    return Tick(symbol=symbol, timestamp_ns=ts, bid_price=100.0, bid_size=1.0, ask_price=101.0, ask_size=1.0)


def fill(strategy: str = "", ts: int = TS) -> Fill:
    return Fill(
        fill_id="f1",
        order_id="o1",
        symbol="BTCUSDT",
        side=Side.BUY,
        price=100.0,
        quantity=1.0,
        timestamp_ns=ts,
        strategy=strategy,
    )


def position(strategy: str = "", quantity: float = 1.0) -> Position:
    return Position(symbol="BTCUSDT", quantity=quantity, avg_entry_price=100.0, timestamp_ns=TS, strategy=strategy)


def order_update(strategy: str = "", status: OrderUpdateStatus = OrderUpdateStatus.REJECTED) -> OrderUpdate:
    return OrderUpdate(
        client_order_id="o1", strategy=strategy, symbol="BTCUSDT", side=Side.BUY, status=status, quantity=1.0,
        rule="max_position_size" if status is OrderUpdateStatus.REJECTED else "", timestamp_ns=TS,
    )  # fmt: skip


EVENTS: list[tuple[Any, str]] = [
    (tick(), "on_tick"),
    (Trade(symbol="BTCUSDT", timestamp_ns=TS, last_price=100.0, volume=1.0), "on_trade"),
    (Book(symbol="BTCUSDT", timestamp_ns=TS, bids=((100.0, 1.0),), asks=((101.0, 1.0),)), "on_book"),
    (Candle(symbol="BTCUSDT", timestamp_ns=TS, open=100.0, high=101.0, low=99.0, close=100.5), "on_candle"),
    (fill(), "on_fill"),
    (position(), "on_position"),
    (Timer(name="minute", timestamp_ns=TS), "on_timer"),
    (order_update(), "on_order"),
]


class Recorder(Strategy[StrategyConfig]):
    """Records every call, the clock it saw and, on a fill or position, the position it could read."""

    name = "recorder"

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config if config is not None else StrategyConfig())
        self.calls: list[tuple[str, Any]] = []
        self.clock: list[int] = []
        self.seen_positions: list[Position | None] = []

    def _record(self, handler: str, event: Any = None) -> None:
        self.calls.append((handler, event))
        self.clock.append(self.now_ns)

    def on_start(self) -> None:
        self._record("on_start")

    def on_stop(self) -> None:
        self._record("on_stop")

    def on_load(self, state: bytes) -> None:
        self._record("on_load", state)

    def on_tick(self, tick: Tick) -> None:
        self._record("on_tick", tick)

    def on_trade(self, trade: Trade) -> None:
        self._record("on_trade", trade)

    def on_book(self, book: Book) -> None:
        self._record("on_book", book)

    def on_candle(self, candle: Candle) -> None:
        self._record("on_candle", candle)

    def on_fill(self, fill: Fill) -> None:
        self._record("on_fill", fill)

    def on_position(self, position: Position) -> None:
        self._record("on_position", position)
        self.seen_positions.append(self.position(position.symbol))

    def on_timer(self, timer: Timer) -> None:
        self._record("on_timer", timer)

    def on_order(self, update: OrderUpdate) -> None:
        self._record("on_order", update)

    @property
    def handlers(self) -> list[str]:
        return [name for name, _ in self.calls]


class Misbehaving(Recorder):
    """Does what `mode` says on a tick; behaves on everything else."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def on_tick(self, tick: Tick) -> None:
        super().on_tick(tick)
        if self.mode == "raise":
            raise RuntimeError("boom")
        if self.mode == "emit_dict":
            self.emit({"symbol": "BTCUSDT", "side": "buy"})  # type: ignore[arg-type]
        if self.mode == "bad_cancel":
            self.cancel("BTCUSDT", "")
        if self.mode == "exit":
            raise SystemExit(3)

    def on_save(self) -> bytes:
        if self.mode == "save_str":
            return "state"  # type: ignore[return-value]
        if self.mode == "save_raise":
            raise ValueError("cannot save")
        return b"state"


def slot_for(strategy: Strategy[Any], strategy_id: str = "mm") -> StrategySlot:
    return StrategySlot(strategy_id, strategy)


@dataclasses.dataclass(frozen=True)
class BtcOnly(StrategyConfig):
    symbols: tuple[str, ...] = ("BTCUSDT",)


class TestDelivery:
    @pytest.mark.parametrize(("event", "handler"), EVENTS, ids=[h for _, h in EVENTS])
    def test_event_reaches_its_handler(self, event: Any, handler: str) -> None:
        """Each event type is delivered to its own handler, with the event."""
        strategy = Recorder()
        assert slot_for(strategy).deliver(event) is None
        assert strategy.calls == [(handler, event)]

    def test_counts_events(self) -> None:
        """The slot counts the events it delivered."""
        slot = slot_for(Recorder())
        slot.deliver(tick())
        slot.deliver(tick())
        assert slot.events == 2

    def test_position_is_readable_in_its_handler(self) -> None:
        """A position event is in the context before on_position runs."""
        strategy = Recorder()
        pos = position(quantity=-2.0)
        slot_for(strategy).deliver(pos)
        assert strategy.seen_positions == [pos]
        assert strategy.position_quantity("BTCUSDT") == -2.0

    def test_default_logger_records(self) -> None:
        """Outside a runner the strategy's log records (level, event, data)."""
        strategy = Recorder()
        slot = slot_for(strategy)
        strategy.log.info("quoted", bid=1.0)
        assert isinstance(slot.context.log, RecordingLogger)
        assert slot.context.log.records == [("info", "quoted", {"bid": 1.0})]

    def test_context_names_the_strategy(self) -> None:
        """The bound context carries the slot's strategy id."""
        strategy = Recorder()
        slot_for(strategy, "alpha")
        assert strategy.context.strategy_id == "alpha"


class TestWants:
    def test_market_data_filtered_by_config_symbols(self) -> None:
        """With symbols configured, market data for other symbols is not wanted."""
        slot = slot_for(Recorder(BtcOnly()))
        assert slot.wants(tick("BTCUSDT"))
        assert not slot.wants(tick("ETHUSDT"))

    def test_no_symbols_wants_all_market_data(self) -> None:
        """With no symbols configured, every symbol is wanted."""
        assert slot_for(Recorder()).wants(tick("ETHUSDT"))

    @pytest.mark.parametrize(
        ("event", "wanted"),
        [
            (fill("mm"), True),
            (fill("other"), False),
            (fill(""), True),
            (position("mm"), True),
            (position("other"), False),
            (position(""), True),
            (order_update("mm"), True),
            (order_update("other"), False),
            (order_update(""), True),
        ],
        ids=[
            "fill-own", "fill-other", "fill-unowned", "position-own", "position-other", "position-unowned",
            "order-own", "order-other", "order-unowned",
        ],
    )  # fmt: skip
    def test_fills_positions_and_order_updates_only_for_this_strategy(self, event: Any, wanted: bool) -> None:
        """Fills, positions and order updates are wanted only for this strategy id (or when unattributed)."""
        assert slot_for(Recorder(), "mm").wants(event) is wanted

    def test_fills_are_not_filtered_by_symbols(self) -> None:
        """A strategy's own fill is wanted even in a symbol outside its market-data filter."""
        slot = slot_for(Recorder(BtcOnly()), "mm")
        assert slot.wants(
            Fill(
                fill_id="f",
                order_id="o",
                symbol="ETHUSDT",
                side=Side.BUY,
                price=1.0,
                quantity=1.0,
                timestamp_ns=TS,
                strategy="mm",
            )
        )

    def test_timers_always_wanted(self) -> None:
        """Timers reach every strategy."""
        assert slot_for(Recorder(BtcOnly())).wants(Timer(name="minute", timestamp_ns=TS))


class TestHandlerErrors:
    def test_raising_handler_returns_error(self) -> None:
        """A handler that raises gives a HandlerError naming strategy, handler, kind and text, with traceback."""
        strategy = Misbehaving("raise")
        error = slot_for(strategy, "mm").deliver(tick())
        assert isinstance(error, HandlerError)
        assert (error.strategy, error.handler, error.kind) == ("mm", "on_tick", "exception")
        assert error.text == "RuntimeError: boom"
        assert "Traceback" in error.traceback
        assert "in on_tick" in error.traceback
        assert isinstance(error.exception, RuntimeError)

    def test_slot_keeps_working_after_an_error(self) -> None:
        """After a handler raised, the next event is delivered normally."""
        strategy = Misbehaving("raise")
        slot = slot_for(strategy)
        slot.deliver(tick())
        assert slot.deliver(Timer(name="minute", timestamp_ns=TS + 1)) is None
        assert strategy.handlers == ["on_tick", "on_timer"]

    def test_emit_non_signal_is_bad_signal(self) -> None:
        """Emitting something that is not a Signal is a bad_signal error, and nothing is buffered."""
        slot = slot_for(Misbehaving("emit_dict"))
        error = slot.deliver(tick())
        assert error is not None
        assert error.kind == "bad_signal"
        assert "expected a Signal, got dict" in error.text
        assert slot.drain() == ([], [])

    def test_invalid_cancel_is_bad_signal(self) -> None:
        """A cancel that fails validation is a bad_signal error."""
        error = slot_for(Misbehaving("bad_cancel")).deliver(tick())
        assert error is not None
        assert error.kind == "bad_signal"
        assert "Cancel.slot" in error.text

    def test_base_exception_is_not_caught(self) -> None:
        """SystemExit passes through: a strategy that exits takes its own runner down."""
        with pytest.raises(SystemExit):
            slot_for(Misbehaving("exit")).deliver(tick())

    def test_equal_errors_compare_without_exception(self) -> None:
        """HandlerError equality ignores the exception object."""
        a = HandlerError("mm", "on_tick", "exception", "x", "tb", RuntimeError("x"))
        b = HandlerError("mm", "on_tick", "exception", "x", "tb", RuntimeError("x"))
        assert a == b


class TestOutputs:
    def test_emit_and_cancel_are_buffered_until_drain(self) -> None:
        """Signals and cancels are collected and handed out once by drain()."""
        strategy = Recorder()
        slot = slot_for(strategy)
        signal = Signal(symbol="BTCUSDT", side=Side.BUY, quantity=1.0, client_order_id="entry-1")
        strategy.emit(signal)
        strategy.cancel("BTCUSDT", "bid")
        assert slot.drain() == ([signal], [Cancel(symbol="BTCUSDT", slot="bid")])
        assert slot.drain() == ([], [])

    def test_emit_names_the_order_a_signal_without_id_becomes(self) -> None:
        """A signal emitted without a client order id leaves with a fresh one, which emit returns."""
        strategy = Recorder()
        slot = slot_for(strategy)
        first = strategy.emit(Signal(symbol="BTCUSDT", side=Side.BUY, quantity=1.0))
        second = strategy.emit(Signal(symbol="BTCUSDT", side=Side.BUY, quantity=1.0))
        signals, _ = slot.drain()
        assert [s.client_order_id for s in signals] == [first, second]
        assert first != second and len(first) == 32

    def test_emit_keeps_the_id_a_signal_brings(self) -> None:
        """A strategy that names its order gets that name back, and the signal leaves unchanged."""
        strategy = Recorder()
        slot = slot_for(strategy)
        signal = Signal(symbol="BTCUSDT", side=Side.SELL, quantity=2.0, client_order_id="exit-7")
        assert strategy.emit(signal) == "exit-7"
        assert slot.drain()[0] == [signal]

    def test_a_fresh_id_changes_nothing_else(self) -> None:
        """The emitted signal is the strategy's with the new id: every other field as it was, and a valid signal."""
        strategy = Recorder()
        slot = slot_for(strategy)
        signal = Signal(symbol="ETHUSDT", side=Side.SELL, quantity=2.0, order_type="limit", price=10.0, priority=3,
                        max_slippage=0.1, confidence=0.5, metadata={"k": "v"}, slot="ask")  # fmt: skip
        new_id = strategy.emit(signal)
        (sent,), _ = slot.drain()
        assert type(sent) is Signal
        assert sent == dataclasses.replace(signal, client_order_id=new_id)
        assert all(c in "0123456789abcdef" for c in new_id)
        assert signal.client_order_id == ""  # the strategy's own signal is untouched: it may emit it again

    def test_ids_from_another_source_are_checked(self) -> None:
        """An id source other than the default gives ids the Signal rule checks, as a strategy's own would be."""
        strategy = Recorder()
        StrategySlot("mm", strategy, new_id=lambda: "not an id!")
        with pytest.raises(ValidationError, match="client_order_id"):
            strategy.emit(Signal(symbol="BTCUSDT", side=Side.BUY, quantity=1.0))

    def test_ids_come_from_the_slots_source(self) -> None:
        """The id source is the slot's to choose (sdk.testing numbers them)."""
        strategy = Recorder()
        names = iter(["a", "b"])
        StrategySlot("mm", strategy, new_id=lambda: next(names))
        assert [strategy.emit(Signal(symbol="BTCUSDT", side=Side.BUY, quantity=1.0)) for _ in range(2)] == ["a", "b"]


class TestSave:
    def test_bytes_are_returned(self) -> None:
        """on_save's bytes are the slot's saved state."""
        assert slot_for(Misbehaving("none")).save() == b"state"

    def test_default_state_is_empty(self) -> None:
        """A strategy that saves nothing returns b""."""
        assert slot_for(Recorder()).save() == b""

    def test_non_bytes_is_bad_state(self) -> None:
        """on_save returning anything but bytes is a bad_state error."""
        error = slot_for(Misbehaving("save_str"), "mm").save()
        assert isinstance(error, HandlerError)
        assert (error.handler, error.kind) == ("on_save", "bad_state")
        assert error.text == "on_save returned str, expected bytes"

    def test_raising_on_save_is_an_error(self) -> None:
        """on_save raising gives a HandlerError for on_save."""
        error = slot_for(Misbehaving("save_raise")).save()
        assert isinstance(error, HandlerError)
        assert (error.handler, error.kind, error.text) == ("on_save", "exception", "ValueError: cannot save")


class TestClock:
    def test_now_is_the_event_time(self) -> None:
        """While handling an event, now_ns is that event's timestamp."""
        strategy = Recorder()
        slot = slot_for(strategy)
        slot.deliver(tick(ts=TS))
        slot.deliver(tick(ts=TS + 5))
        assert strategy.clock == [TS, TS + 5]

    def test_clock_never_goes_backwards(self) -> None:
        """An event older than the clock is handled at the current clock, not its own time."""
        strategy = Recorder()
        slot = slot_for(strategy)
        slot.deliver(tick(ts=TS + 10))
        slot.deliver(fill(ts=TS))
        assert strategy.clock == [TS + 10, TS + 10]

    def test_start_sets_the_clock(self) -> None:
        """start(now_ns=...) is the time on_start sees."""
        strategy = Recorder()
        slot_for(strategy).start(now_ns=TS)
        assert strategy.clock == [TS]


class TestLifecycle:
    def test_start_without_state_skips_on_load(self) -> None:
        """With no saved state only on_start runs."""
        strategy = Recorder()
        assert slot_for(strategy).start() is None
        assert strategy.handlers == ["on_start"]

    def test_start_with_state_loads_first(self) -> None:
        """With saved state, on_load(state) runs before on_start."""
        strategy = Recorder()
        slot_for(strategy).start(b"saved")
        assert strategy.calls == [("on_load", b"saved"), ("on_start", None)]

    def test_failed_load_skips_start(self) -> None:
        """If on_load raises, its error is returned and on_start does not run."""

        class BadLoad(Recorder):
            def on_load(self, state: bytes) -> None:
                raise ValueError("corrupt")

        strategy = BadLoad()
        error = slot_for(strategy).start(b"x")
        assert error is not None
        assert (error.handler, error.text) == ("on_load", "ValueError: corrupt")
        assert strategy.handlers == []

    def test_stop_calls_on_stop(self) -> None:
        """stop() runs on_stop."""
        strategy = Recorder()
        assert slot_for(strategy).stop() is None
        assert strategy.handlers == ["on_stop"]

    def test_failing_stop_returns_error(self) -> None:
        """on_stop raising gives its HandlerError."""

        class BadStop(Recorder):
            def on_stop(self) -> None:
                raise RuntimeError("stuck")

        error = slot_for(BadStop()).stop()
        assert error is not None
        assert error.handler == "on_stop"


class TestStrategyBase:
    def test_unbound_strategy_says_so(self) -> None:
        """Using the context before bind() raises SdkError naming the strategy."""
        with pytest.raises(SdkError, match="'recorder' is not bound"):
            _ = Recorder().now_ns

    def test_unknown_position_is_flat(self) -> None:
        """With no position known, position() is None and position_quantity() is 0."""
        strategy = Recorder()
        slot_for(strategy)
        assert (strategy.position("BTCUSDT"), strategy.position_quantity("BTCUSDT")) == (None, 0.0)

    def test_default_handlers_do_nothing(self) -> None:
        """A bare Strategy accepts every event without error."""
        slot = slot_for(Strategy(StrategyConfig()))
        assert [slot.deliver(event) for event, _ in EVENTS] == [None] * len(EVENTS)


MARKET = [(event, handler) for event, handler in EVENTS if handler in ("on_tick", "on_trade", "on_book", "on_candle")]


def _offered_and_delivered(strategy_for: Any, events: list[Any]) -> tuple[Any, Any]:
    """What offer_market did and what wants-then-deliver did with the same events, on twin slots."""
    outcomes = []
    for path in ("offer", "deliver"):
        strategy = strategy_for()
        slot = slot_for(strategy)
        errors = []
        for event in events:
            if path == "offer":
                errors.append(slot.offer_market(event, HANDLERS[type(event)]))
            elif slot.wants(event):
                errors.append(slot.deliver(event))
            else:
                errors.append(None)
        texts = [None if e is None else (e.strategy, e.handler, e.kind, e.text) for e in errors]
        outcomes.append((strategy.calls, strategy.clock, slot.events, slot.context.now_ns(), texts))
    return outcomes[0], outcomes[1]


class TestOfferMarket:
    """``offer_market`` (the runner's per-tick path) does what ``wants`` then ``deliver`` do."""

    @pytest.mark.parametrize(("event", "handler"), MARKET, ids=[h for _, h in MARKET])
    def test_each_kind_reaches_its_handler(self, event: Any, handler: str) -> None:
        """A market event reaches its handler with the event, counted, the clock at its time."""
        strategy = Recorder()
        slot = slot_for(strategy)
        assert slot.offer_market(event, handler) is None
        assert strategy.calls == [(handler, event)]
        assert (slot.events, strategy.clock) == (1, [event.timestamp_ns])

    def test_same_as_wants_then_deliver(self) -> None:
        """Filtered symbols, clock that never goes back, counts: the same on both paths."""
        events = [tick("BTCUSDT", TS + 5), tick("ETHUSDT", TS + 9), tick("BTCUSDT", TS + 1), MARKET[1][0]]
        offered, delivered = _offered_and_delivered(lambda: Recorder(BtcOnly()), events)
        assert offered == delivered
        assert offered[2] == 3  # the ETHUSDT tick was filtered out

    def test_a_raising_handler_gives_the_same_error(self) -> None:
        """The handler's exception comes back as the same HandlerError, with a traceback."""
        offered, delivered = _offered_and_delivered(lambda: Misbehaving("raise"), [tick(), tick()])
        assert offered == delivered
        error = slot_for(Misbehaving("raise")).offer_market(tick(), "on_tick")
        assert error is not None and "RuntimeError: boom" in error.traceback

    def test_time_in_handlers_is_counted(self) -> None:
        """compute_ns grows by the handler's time, as with deliver."""
        slot = slot_for(Recorder())
        slot.offer_market(tick(), "on_tick")
        assert slot.compute_ns > 0

    def test_an_unwanted_event_changes_nothing(self) -> None:
        """Filtered out: no call, no count, no clock, no compute time."""
        strategy = Recorder(BtcOnly())
        slot = slot_for(strategy)
        assert slot.offer_market(tick("ETHUSDT", TS + 5), "on_tick") is None
        assert (strategy.calls, slot.events, slot.context.now_ns(), slot.compute_ns) == ([], 0, 0, 0)

    def test_system_exit_is_not_caught(self) -> None:
        """As with deliver, a strategy that exits is not turned into an error."""
        with pytest.raises(SystemExit):
            slot_for(Misbehaving("exit")).offer_market(tick(), "on_tick")

"""runner.dispatch.Dispatcher: a protocol batch in, each event to each slot that wants it, a BatchResult out.

Market data without a target takes the dispatcher's short path (``StrategySlot.offer_market``);
these tests hold it to what ``wants`` + ``deliver`` do for every other event.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine_proto import strategy_pb2 as pb
from protocol import wire
from runner.dispatch import Dispatcher
from sdk import (
    Book,
    Candle,
    Event,
    Fill,
    Position,
    Side,
    Signal,
    Strategy,
    StrategyConfig,
    Tick,
    Timer,
    Trade,
)
from sdk.dispatch import StrategySlot

TS = 1_704_164_645_000_000_000


def tick(symbol: str = "BTCUSDT", ts: int = TS, sequence: int = 0) -> Tick:
    return Tick(symbol=symbol, timestamp_ns=ts, bid_price=100.0, bid_size=1.0, ask_price=101.0, ask_size=1.0,
                sequence=sequence)  # fmt: skip


class Recorder(Strategy[StrategyConfig]):
    """Records (handler, event, clock) for every call; raises on the sequences in ``fail_on``; emits on ``emit_on``."""

    name = "recorder"

    def __init__(self, symbols: tuple[str, ...] = (), fail_on: tuple[int, ...] = (), emit_on: tuple[int, ...] = ()):
        super().__init__(StrategyConfig(symbols=symbols))
        self.fail_on, self.emit_on = fail_on, emit_on
        self.calls: list[tuple[str, Event, int]] = []

    def _record(self, handler: str, event: Event) -> None:
        self.calls.append((handler, event, self.now_ns))
        sequence = getattr(event, "sequence", -1)
        if sequence in self.fail_on:
            raise RuntimeError(f"failed on {sequence}")
        if sequence in self.emit_on:
            self.emit(Signal(symbol=event.symbol, side=Side.BUY, quantity=1.0))  # type: ignore[union-attr]

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

    def on_timer(self, timer: Timer) -> None:
        self._record("on_timer", timer)


class EveryOther(Recorder):
    """Wants every other market event by its own rule (whatever the symbol), counting the times it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def wants(self, symbol: str) -> bool:
        self.asked += 1
        return self.asked % 2 == 1


def dispatcher(*strategies: Strategy[Any]) -> Dispatcher:
    return Dispatcher([StrategySlot(f"s{i}", s) for i, s in enumerate(strategies)])


def batch(events: list[Any], seq: int = 1, cut: bool = False) -> pb.EventBatch:
    """Events as the host sends them: (event, target) pairs or bare events; bytes for an unreadable one."""
    messages = []
    for item in events:
        if isinstance(item, pb.Event):
            messages.append(item)
            continue
        event, target = item if isinstance(item, tuple) else (item, "")
        messages.append(wire.event_to_pb(event, target))
    return pb.EventBatch(seq=seq, events=messages, cut_on_output=cut)


def output(result: pb.BatchResult, sid: str) -> pb.StrategyOutput:
    (found,) = [o for o in result.outputs if o.strategy == sid]
    return found


MARKET = [
    tick(sequence=1),
    Trade(symbol="BTCUSDT", timestamp_ns=TS + 1, last_price=100.0, volume=1.0, sequence=2),
    Book(symbol="BTCUSDT", timestamp_ns=TS + 2, bids=((100.0, 1.0),), asks=((101.0, 1.0),), sequence=3),
    Candle(symbol="BTCUSDT", timestamp_ns=TS + 3, open=100.0, high=101.0, low=99.0, close=100.5, sequence=4),
]


class TestMarketData:
    def test_each_kind_reaches_its_handler_in_order(self) -> None:
        """Ticks, trades, books and candles reach on_tick/on_trade/on_book/on_candle, as sent."""
        strategy = Recorder()
        dispatcher(strategy).handle_batch(batch(MARKET))
        assert [(h, e) for h, e, _ in strategy.calls] == list(
            zip(["on_tick", "on_trade", "on_book", "on_candle"], MARKET, strict=True)
        )

    def test_symbols_filter_market_data(self) -> None:
        """A strategy with ``symbols`` gets only those symbols' market data; one without gets all."""
        picky, every = Recorder(symbols=("ETHUSDT",)), Recorder()
        events = [tick("BTCUSDT", sequence=1), tick("ETHUSDT", sequence=2), tick("SOLUSDT", sequence=3)]
        result = dispatcher(picky, every).handle_batch(batch(events))
        assert [e.symbol for _, e, _ in picky.calls] == ["ETHUSDT"]  # type: ignore[union-attr]
        assert [e.symbol for _, e, _ in every.calls] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # type: ignore[union-attr]
        assert (output(result, "s0").events, output(result, "s1").events) == (1, 3)

    def test_an_overridden_wants_is_asked_for_every_event(self) -> None:
        """A strategy's own ``wants`` decides each event as it comes, its answer not remembered."""
        strategy = EveryOther()
        dispatcher(strategy).handle_batch(batch([tick(sequence=i) for i in range(1, 5)]))
        assert strategy.asked == 4
        assert [e.sequence for _, e, _ in strategy.calls] == [1, 3]  # type: ignore[union-attr]

    def test_the_clock_is_the_event_time_and_never_goes_back(self) -> None:
        """A handler sees its event's time as now; an older event does not move the clock back."""
        strategy = Recorder()
        events = [tick(ts=TS + 5, sequence=1), tick(ts=TS + 3, sequence=2), tick(ts=TS + 9, sequence=3)]
        dispatcher(strategy).handle_batch(batch(events))
        assert [now for _, _, now in strategy.calls] == [TS + 5, TS + 5, TS + 9]

    def test_a_filtered_event_does_not_move_the_clock(self) -> None:
        """Market data a strategy does not want leaves its clock where it was."""
        picky = Recorder(symbols=("ETHUSDT",))
        slot = StrategySlot("s0", picky)
        Dispatcher([slot]).handle_batch(batch([tick("ETHUSDT", ts=TS), tick("BTCUSDT", ts=TS + 50)]))
        assert slot.context.now_ns() == TS

    def test_compute_and_events_are_counted_per_strategy(self) -> None:
        """Each output says how many events its strategy handled and the time its handlers took."""
        picky, every = Recorder(symbols=("ETHUSDT",)), Recorder()
        result = dispatcher(picky, every).handle_batch(batch([tick("BTCUSDT"), tick("BTCUSDT"), tick("ETHUSDT")]))
        assert (output(result, "s0").events, output(result, "s1").events) == (1, 3)
        assert output(result, "s0").compute_ns > 0
        assert output(result, "s1").compute_ns > output(result, "s0").compute_ns
        assert result.compute_ns >= output(result, "s0").compute_ns + output(result, "s1").compute_ns


class TestErrors:
    def test_a_raising_handler_costs_only_that_event(self) -> None:
        """An Error names the strategy, seq, handler and carries the traceback; later events still arrive."""
        failing, other = Recorder(fail_on=(2,)), Recorder()
        result = dispatcher(failing, other).handle_batch(batch([tick(sequence=i) for i in (1, 2, 3)], seq=42))
        (error,) = output(result, "s0").errors
        assert (error.kind, error.strategy, error.seq, error.handler) == ("exception", "s0", 42, "on_tick")
        assert error.text == "RuntimeError: failed on 2"
        assert "raise RuntimeError" in error.traceback
        assert [e.sequence for _, e, _ in failing.calls] == [1, 2, 3]  # type: ignore[union-attr]
        assert [e.sequence for _, e, _ in other.calls] == [1, 2, 3]  # type: ignore[union-attr]
        assert not output(result, "s1").errors
        assert output(result, "s0").events == 3

    def test_an_unreadable_event_is_a_bad_event_for_each_strategy(self) -> None:
        """An event the runner cannot read is reported to every strategy (or its target alone); the rest go on."""
        unreadable = pb.Event(market=pb.MarketData(symbol="BTCUSDT", timestamp_ns=TS))  # no type
        targeted = pb.Event(market=pb.MarketData(symbol="BTCUSDT", timestamp_ns=TS), target="s1")
        a, b = Recorder(), Recorder()
        result = dispatcher(a, b).handle_batch(batch([unreadable, tick(sequence=1), targeted, tick(sequence=2)]))
        assert [e.kind for e in output(result, "s0").errors] == ["bad_event"]
        assert [e.kind for e in output(result, "s1").errors] == ["bad_event", "bad_event"]
        assert "market data type 0" in output(result, "s0").errors[0].text
        assert [e.sequence for _, e, _ in a.calls] == [1, 2]  # type: ignore[union-attr]
        assert result.consumed == 4


class TestTargets:
    def test_a_targeted_tick_reaches_its_strategy_alone_whatever_its_symbols(self) -> None:
        """The host's target decides: no other strategy sees it, and the target's symbols do not filter it."""
        picky, other = Recorder(symbols=("ETHUSDT",)), Recorder()
        dispatcher(picky, other).handle_batch(batch([(tick("BTCUSDT", sequence=1), "s0")]))
        assert [e.sequence for _, e, _ in picky.calls] == [1]  # type: ignore[union-attr]
        assert other.calls == []

    def test_a_target_this_runner_does_not_hold_reaches_nobody(self) -> None:
        """An event for an id that is not here is dropped, not broadcast."""
        strategy = Recorder()
        result = dispatcher(strategy).handle_batch(batch([(tick(), "elsewhere")]))
        assert strategy.calls == []
        assert result.consumed == 1

    def test_fills_positions_and_timers_follow_their_own_rules(self) -> None:
        """A fill for another strategy is not delivered; a position is set before on_position; timers reach all."""
        mine = Fill(fill_id="f1", order_id="o", symbol="BTCUSDT", side=Side.BUY, price=1.0, quantity=1.0,
                    timestamp_ns=TS, strategy="s0")  # fmt: skip
        position = Position(symbol="BTCUSDT", quantity=2.0, avg_entry_price=1.0, timestamp_ns=TS + 1, strategy="s0")
        a, b = Recorder(), Recorder()
        slots = [StrategySlot("s0", a), StrategySlot("s1", b)]
        events = [tick(sequence=1), mine, position, Timer(name="t", timestamp_ns=TS + 2), tick(sequence=2)]
        Dispatcher(slots).handle_batch(batch(events))
        assert [h for h, _, _ in a.calls] == ["on_tick", "on_fill", "on_position", "on_timer", "on_tick"]
        assert [h for h, _, _ in b.calls] == ["on_tick", "on_timer", "on_tick"]
        assert slots[0].context.position("BTCUSDT") == position
        assert slots[1].context.position("BTCUSDT") is None


class TestCutOnOutput:
    def test_a_cut_batch_stops_after_the_first_event_with_output(self) -> None:
        """With cut_on_output, handling stops after the event that made a signal; consumed says how far it got."""
        quiet, talker = Recorder(), Recorder(emit_on=(2,))
        result = dispatcher(quiet, talker).handle_batch(batch([tick(sequence=i) for i in (1, 2, 3, 4)], cut=True))
        assert result.consumed == 2
        assert [e.sequence for _, e, _ in quiet.calls] == [1, 2]  # type: ignore[union-attr]
        assert len(output(result, "s1").signals) == 1

    @pytest.mark.parametrize("ask", ["timer", "cancel"])
    def test_a_timer_or_cancel_is_output_too(self, ask: str) -> None:
        """Asking for a timer or a cancel (no signal) also ends a cut batch after that event."""

        class Asks(Recorder):
            def on_tick(self, tick: Tick) -> None:
                if ask == "timer":
                    self.every("minute", 60.0)
                else:
                    self.cancel(tick.symbol, "bid")

        result = dispatcher(Recorder(), Asks()).handle_batch(batch([tick(), tick()], cut=True))
        assert result.consumed == 1

    def test_an_uncut_batch_runs_to_its_end(self) -> None:
        """Without cut_on_output, output does not stop the batch."""
        talker = Recorder(emit_on=(1, 2))
        result = dispatcher(talker).handle_batch(batch([tick(sequence=i) for i in (1, 2, 3)]))
        assert result.consumed == 3
        assert len(output(result, "s0").signals) == 2


class Asker(Recorder):
    """On each tick: a signal, a cancel and a timer."""

    def on_tick(self, tick: Tick) -> None:
        super().on_tick(tick)
        self.emit(Signal(symbol=tick.symbol, side=Side.SELL, quantity=2.0))
        self.cancel(tick.symbol, "bid")
        self.every("minute", 60.0)


class TestResult:
    def test_one_output_per_strategy_in_order_with_all_it_asked_for(self) -> None:
        """One output a strategy, in slot order, with its signals (stamped with its clock), cancels and timers."""
        result = dispatcher(Recorder(), Asker()).handle_batch(batch([tick(ts=TS + 7), tick(ts=TS + 9)], seq=5))
        assert (result.seq, result.consumed) == (5, 2)
        assert [o.strategy for o in result.outputs] == ["s0", "s1"]
        quiet, asker = result.outputs
        assert (len(quiet.signals), len(quiet.cancels), len(quiet.timers), len(quiet.errors)) == (0, 0, 0, 0)
        assert [(s.symbol, s.side, s.quantity, s.timestamp_ns) for s in asker.signals] == [
            ("BTCUSDT", pb.SELL, 2.0, TS + 9)
        ] * 2
        assert [(c.symbol, c.slot) for c in asker.cancels] == [("BTCUSDT", "bid")] * 2
        assert [t.name for t in asker.timers] == ["minute", "minute"]
        assert asker.events == 2

    def test_outputs_are_drained_between_batches(self) -> None:
        """A batch's result carries only what was asked for during that batch."""
        d = dispatcher(Asker())
        d.handle_batch(batch([tick()]))
        result = d.handle_batch(batch([]))
        (out,) = result.outputs
        assert (len(out.signals), len(out.cancels), len(out.timers), out.events) == (0, 0, 0, 0)

    def test_the_result_can_be_built_in_a_reply(self) -> None:
        """Built into a reply's result field, the reply carries it, even for an empty batch of seq 0."""
        for events, seq in (([], 0), ([tick()], 9)):
            reply = pb.RunnerMessage()
            returned = dispatcher(Recorder()).handle_batch(batch(events, seq=seq), into=reply.result)
            assert reply.WhichOneof("kind") == "result"
            assert returned == reply.result
            assert (reply.result.seq, reply.result.consumed, len(reply.result.outputs)) == (seq, len(events), 1)

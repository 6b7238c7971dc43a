"""Timers: the pure schedule (``sdk._timers.TimerBook``), the Strategy API and ``sdk.testing`` driving them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sdk import Signal, Strategy, StrategyConfig, Tick, Timer
from sdk._timers import TimerBook, TimerRejected, TimerRequest
from sdk.errors import ValidationError
from sdk.testing import run_strategy

S = 1_000_000_000
T0 = 1_700_000_000 * S


def every(name: str, seconds: float, anchor: int = T0) -> TimerRequest:
    return TimerRequest.every(name, seconds, anchor)


class TestTimerBook:
    def test_every_fires_at_anchor_plus_k_intervals_without_drift(self) -> None:
        """Fired late, the next period still counts from the anchor, not from when it fired."""
        book = TimerBook()
        book.apply("s", every("beat", 1.0))
        assert book.next_due() == T0 + S
        assert book.due(T0 + S - 1) == []
        assert book.due(T0 + S + S // 3) == [("s", Timer(name="beat", timestamp_ns=T0 + S))]
        assert book.next_due() == T0 + 2 * S
        assert book.due(T0 + 2 * S) == [("s", Timer(name="beat", timestamp_ns=T0 + 2 * S))]

    def test_missed_periods_fire_once_and_are_counted(self) -> None:
        """Five periods late: one firing at the latest period due, four counted as skipped, no burst."""
        book = TimerBook()
        book.apply("s", every("beat", 1.0))
        assert book.due(T0 + 5 * S + 1) == [("s", Timer(name="beat", timestamp_ns=T0 + 5 * S))]
        assert book.skipped == {("s", "beat"): 4}
        assert book.next_due() == T0 + 6 * S

    def test_at_fires_once(self) -> None:
        book = TimerBook()
        book.apply("s", TimerRequest.at("once", T0 + 3))
        assert book.due(T0 + 10) == [("s", Timer(name="once", timestamp_ns=T0 + 3))]
        assert book.due(T0 + 10 * S) == [] and book.next_due() is None and len(book) == 0

    def test_firings_come_in_due_order_across_owners(self) -> None:
        book = TimerBook()
        book.apply("b", TimerRequest.at("late", T0 + 30))
        book.apply("a", TimerRequest.at("early", T0 + 10))
        book.apply("c", TimerRequest.at("middle", T0 + 20))
        assert [(o, t.name) for o, t in book.due(T0 + 40)] == [("a", "early"), ("c", "middle"), ("b", "late")]

    def test_scheduling_a_name_again_replaces_it(self) -> None:
        book = TimerBook()
        book.apply("s", TimerRequest.at("x", T0 + 10))
        book.apply("s", every("x", 2.0))
        assert len(book) == 1 and book.next_due() == T0 + 2 * S

    def test_cancel_drops_only_that_timer_and_unknown_names_are_fine(self) -> None:
        book = TimerBook()
        book.apply("s", TimerRequest.at("x", T0 + 10))
        book.apply("s", TimerRequest.at("y", T0 + 20))
        book.apply("s", TimerRequest.cancelling("x"))
        book.apply("s", TimerRequest.cancelling("never"))
        assert book.names("s") == ["y"] and book.next_due() == T0 + 20

    def test_an_every_asked_before_any_event_is_anchored_at_the_first_drive(self) -> None:
        """anchor 0 (on_start): not due at all until driven; then periods count from that time."""
        book = TimerBook()
        book.apply("s", every("beat", 1.0, anchor=0))
        assert book.next_due() is None and book.waiting
        assert book.due(T0) == []
        assert book.next_due() == T0 + S and not book.waiting

    def test_drop_forgets_one_owners_timers(self) -> None:
        book = TimerBook()
        book.apply("s", TimerRequest.at("x", T0 + 10))
        book.apply("t", TimerRequest.at("x", T0 + 20))
        assert book.drop("s") == 1
        assert book.names("s") == [] and book.next_due() == T0 + 20

    def test_more_than_the_limit_per_owner_is_rejected(self) -> None:
        """The limit counts one owner's timers; replacing one of them is not a new timer."""
        book = TimerBook(limit=2)
        book.apply("s", TimerRequest.at("a", T0))
        book.apply("s", TimerRequest.at("b", T0))
        book.apply("s", TimerRequest.at("b", T0 + 1))
        book.apply("t", TimerRequest.at("a", T0))
        with pytest.raises(TimerRejected, match="more than 2 timers for one strategy"):
            book.apply("s", TimerRequest.at("c", T0))

    def test_a_forged_request_is_rejected(self) -> None:
        """What crosses from an untrusted runner is checked again: empty name, no interval."""
        book = TimerBook()
        with pytest.raises(TimerRejected, match="name must be a non-empty string"):
            book.apply("s", TimerRequest(name="", at_ns=T0))
        with pytest.raises(TimerRejected, match="interval must be > 0"):
            book.apply("s", TimerRequest(name="x", every_ns=-5))

    def test_on_sooner_is_told_when_a_driver_must_look_again(self) -> None:
        told: list[int] = []
        book = TimerBook(on_sooner=lambda: told.append(1))
        book.apply("s", TimerRequest.at("x", T0 + 20))
        book.apply("s", TimerRequest.at("y", T0 + 30))  # later: the driver's sleep still holds
        book.apply("s", TimerRequest.at("z", T0 + 10))
        assert len(told) == 2


class TestRequests:
    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (lambda: TimerRequest.every("x", 0, T0), "interval must be > 0 seconds, got 0"),
            (lambda: TimerRequest.every("x", float("nan"), T0), "interval must be a number of seconds"),
            (lambda: TimerRequest.every("x", "5", T0), "interval must be a number of seconds, got '5'"),  # type: ignore[arg-type]
            (lambda: TimerRequest.at("x", 1.5), "time must be Unix epoch nanoseconds"),  # type: ignore[arg-type]
            (lambda: TimerRequest.at("", 5), "name must be a non-empty string"),
            (lambda: TimerRequest.cancelling("x" * 201), "at most 200"),
        ],
    )
    def test_bad_arguments_are_a_validation_error_naming_the_timer(self, make: object, message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            make()  # type: ignore[operator]


@dataclass(frozen=True)
class ClockConfig(StrategyConfig):
    seconds: float = 1.0
    at_offset_s: float = 0.0
    cancel_after: int = 0


class Clocked(Strategy[ClockConfig]):
    """Schedules ``beat`` in on_start (and ``once`` on its first tick); emits a signal per firing."""

    name = "clocked"

    def __init__(self, config: ClockConfig) -> None:
        super().__init__(config)
        self.fired: list[Timer] = []
        self.now_seen: list[int] = []

    def on_start(self) -> None:
        self.every("beat", self.config.seconds)

    def on_tick(self, tick: Tick) -> None:
        if self.config.at_offset_s and not self.fired:
            self.at("once", tick.timestamp_ns + round(self.config.at_offset_s * S))

    def on_timer(self, timer: Timer) -> None:
        self.fired.append(timer)
        self.now_seen.append(self.now_ns)
        self.emit(Signal(symbol="BTCUSDT", side="buy", quantity=0.01, metadata={"timer": timer.name}))
        if self.config.cancel_after and len(self.fired) >= self.config.cancel_after:
            self.cancel_timer("beat")


def tick(t: int) -> Tick:
    return Tick(symbol="BTCUSDT", timestamp_ns=t, bid_price=100.0, bid_size=1.0, ask_price=100.1, ask_size=1.0)


class TestRunStrategyDrivesTimers:
    def test_on_start_every_fires_by_event_time(self) -> None:
        """Anchored at the first event, then one firing per period as the events' times pass it."""
        strategy = Clocked(ClockConfig(seconds=1.0))
        result = run_strategy(strategy, [tick(T0 + i * S // 2) for i in range(7)])
        assert [t.timestamp_ns for t in strategy.fired] == [T0 + S, T0 + 2 * S, T0 + 3 * S]
        assert strategy.now_seen == [T0 + S, T0 + 2 * S, T0 + 3 * S]  # the strategy's clock is the timer's time
        assert len(result.signals) == 3

    def test_until_ns_fires_timers_on_a_quiet_market(self) -> None:
        strategy = Clocked(ClockConfig(seconds=10.0, at_offset_s=2.5))
        run_strategy(strategy, [tick(T0)], until_ns=T0 + 20 * S)
        assert [(t.name, t.timestamp_ns) for t in strategy.fired] == [
            ("once", T0 + 2 * S + S // 2), ("beat", T0 + 10 * S), ("beat", T0 + 20 * S),
        ]  # fmt: skip

    def test_the_result_lists_every_timer_delivered(self) -> None:
        """RunResult.timers holds the fired timers in order; a signal sent from one before an event
        counts as decided after the event before it, one after the last event (until_ns) as -1."""
        strategy = Clocked(ClockConfig(seconds=10.0))
        result = run_strategy(strategy, [tick(T0), tick(T0 + 15 * S)], until_ns=T0 + 20 * S)
        assert result.timers == strategy.fired
        assert [t.timestamp_ns for t in result.timers] == [T0 + 10 * S, T0 + 20 * S]
        assert result.signal_events == [0, -1]

    def test_timers_given_in_the_events_are_listed_too(self) -> None:
        """With drive_timers=False (a crash capture's events) the Timer events given are the ones listed."""
        given = Timer(name="beat", timestamp_ns=T0 + S)
        result = run_strategy(Clocked(ClockConfig()), [tick(T0), given, tick(T0 + 5 * S)], drive_timers=False)
        assert result.timers == [given]

    def test_cancel_timer_stops_it(self) -> None:
        strategy = Clocked(ClockConfig(seconds=1.0, cancel_after=2))
        run_strategy(strategy, [tick(T0)], until_ns=T0 + 10 * S)
        assert len(strategy.fired) == 2

    def test_drive_timers_false_fires_none(self) -> None:
        strategy = Clocked(ClockConfig(seconds=1.0))
        run_strategy(strategy, [tick(T0), tick(T0 + 5 * S)], drive_timers=False)
        assert strategy.fired == []

    def test_past_the_limit_is_a_bad_signal_error(self) -> None:
        class Greedy(Clocked):
            def on_tick(self, tick: Tick) -> None:
                for i in range(100):  # with on_start's "beat", the last is the 101st
                    self.at(f"t{i}", tick.timestamp_ns + S)

        result = run_strategy(Greedy(ClockConfig()), [tick(T0)], raise_errors=False)
        assert [(e.kind, e.handler) for e in result.errors] == [("bad_signal", "timer")]
        assert result.errors[0].text == "timer 't99': more than 100 timers for one strategy (cancel some first)"


class TestWire:
    @pytest.mark.parametrize(
        "request_",
        [TimerRequest.every("x", 0.25, T0), TimerRequest.at("y", T0), TimerRequest.at("zero", 0),
         TimerRequest.cancelling("z")],
    )  # fmt: skip
    def test_requests_cross_the_protocol_unchanged(self, request_: TimerRequest) -> None:
        from protocol import wire

        assert wire.timer_request_from_pb(wire.timer_request_to_pb(request_)) == request_


def test_last_skipped_names_what_the_latest_due_skipped() -> None:
    book = TimerBook()
    book.apply("s", every("beat", 1.0))
    book.due(T0 + 3 * S)
    assert book.last_skipped == [("s", "beat", 2)]
    book.due(T0 + 4 * S)
    assert book.last_skipped == []

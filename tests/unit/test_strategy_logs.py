"""Strategy log records: the runner's buffer, the host's mapping to ``strategy_log``, the rate limit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import structlog

from engine_proto import strategy_pb2 as pb
from host.supervisor.lograte import LogRateLimiter, LogRatePolicy
from host.supervisor.strategy_logs import StrategyLogRelay, log_event
from runner.dispatch import locate
from runner.logs import LogBuffer, StrategyLog, log_field
from tests.helpers import ManualClock


class RecordingMeter:
    """The part of a StrategyMeter the relay uses: what it was told was dropped, by reason."""

    def __init__(self) -> None:
        self.dropped: dict[str, int] = {}

    def log_dropped(self, reason: str, count: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


def _record(level: int, event: str, **fields: object) -> pb.LogRecord:
    return pb.LogRecord(level=level, event=event, fields=[log_field(k, v) for k, v in fields.items()])  # type: ignore[arg-type]


class TestLogRateLimiter:
    def test_a_burst_is_admitted_then_the_rest_dropped(self) -> None:
        """Up to ``burst`` records pass at once; the next one is dropped and counted."""
        limiter = LogRateLimiter(LogRatePolicy(rate_per_s=10, burst=5), ManualClock())
        assert [limiter.admit() for _ in range(7)] == [True] * 5 + [False] * 2
        assert limiter.pending == 2 and limiter.total_dropped == 2

    def test_tokens_refill_at_the_rate_up_to_the_burst(self) -> None:
        """After t seconds rate*t more records pass, never more than the burst."""
        clock = ManualClock()
        limiter = LogRateLimiter(LogRatePolicy(rate_per_s=8, burst=5), clock)
        for _ in range(5):
            limiter.admit()
        clock.advance(0.5)
        assert [limiter.admit() for _ in range(5)] == [True] * 4 + [False]
        clock.advance(100)
        assert sum(limiter.admit() for _ in range(10)) == 5

    def test_first_drops_are_reported_at_once_then_once_per_window(self) -> None:
        """report() names the drops so far, then stays quiet until the window has passed."""
        clock = ManualClock()
        limiter = LogRateLimiter(LogRatePolicy(rate_per_s=0, burst=0, report_every_s=10), clock)
        limiter.admit()
        limiter.dropped(4)
        assert limiter.report() == 5
        limiter.admit()
        clock.advance(9.9)
        assert limiter.report() == 0
        clock.advance(0.1)
        assert limiter.report() == 1
        assert limiter.report() == 0 and limiter.total_dropped == 6

    def test_flush_names_what_the_window_held_back(self) -> None:
        """flush() returns the drops not reported yet, whatever the window."""
        limiter = LogRateLimiter(LogRatePolicy(rate_per_s=0, burst=0), ManualClock())
        limiter.admit()
        assert limiter.report() == 1
        limiter.dropped(3)
        assert limiter.report() == 0
        assert limiter.flush() == 3 and limiter.flush() == 0


class TestRunnerBuffer:
    @pytest.mark.parametrize(
        ("value", "kind", "expected"),
        [
            ("x", "text", "x"),
            (3, "integer", 3),
            (2.5, "number", 2.5),
            (True, "flag", True),
            (2**70, "text", str(2**70)),
            ([1, "a"], "text", "[1, 'a']"),
            ("y" * 600, "text", "y" * 511 + "…"),
        ],
    )
    def test_values_travel_typed_or_as_repr(self, value: object, kind: str, expected: object) -> None:
        """bool, int64, float and str keep their type; anything else travels as its repr, cut to 512."""
        field = log_field("k", value)
        assert field.WhichOneof("value") == kind and getattr(field, kind) == expected

    def test_none_travels_as_no_value(self) -> None:
        """None leaves the value unset, which the host reads back as None."""
        assert log_field("k", None).WhichOneof("value") is None
        assert log_event(_record(pb.LOG_INFO, "e", k=None)) == ("info", {"message": "e", "fields": {"k": None}})

    def test_records_are_grouped_by_strategy_and_taken_once(self) -> None:
        """take() returns each strategy's records in order and leaves the buffer empty."""
        buffer = LogBuffer()
        StrategyLog("a", buffer).info("quoted", bid=1.5)
        StrategyLog("b", buffer).error("broken")
        StrategyLog("a", buffer).debug("idle")
        groups = buffer.take()
        assert [(g.strategy, [(r.level, r.event) for r in g.records]) for g in groups] == [
            ("a", [(pb.LOG_INFO, "quoted"), (pb.LOG_DEBUG, "idle")]),
            ("b", [(pb.LOG_ERROR, "broken")]),
        ]
        assert buffer.take() == []

    def test_past_the_cap_records_are_only_counted(self) -> None:
        """A strategy keeps per_message records between messages; the rest is a count."""
        buffer = LogBuffer(per_message=3)
        log = StrategyLog("a", buffer)
        for i in range(1000):
            log.warning("spam", i=i)
        (group,) = buffer.take()
        assert [r.fields[0].integer for r in group.records] == [0, 1, 2] and group.dropped == 997

    def test_location_is_the_innermost_frame_in_the_plugin(self, tmp_path: Path) -> None:
        """locate() names plugin/file.py:line of the deepest plugin frame, relative to the plugins folder."""
        plugin = tmp_path / "mine"
        plugin.mkdir()
        source = plugin / "code.py"
        source.write_text("def outer(f):\n    f()\n")
        namespace: dict[str, object] = {}
        exec(compile(source.read_text(), str(source), "exec"), namespace)

        def fail() -> None:
            raise ValueError("no")

        with pytest.raises(ValueError) as caught:
            namespace["outer"](fail)  # type: ignore[operator]
        assert locate(caught.value, plugin) == "mine/code.py:2"
        innermost = f"{Path(__file__).name}:{fail.__code__.co_firstlineno + 1}"
        assert locate(caught.value, tmp_path / "other").endswith(innermost)
        assert locate(None, plugin) == ""


class TestMapping:
    def test_record_keeps_its_level_event_and_fields(self) -> None:
        """A record maps to its own level, its event as message, its key/values typed under fields."""
        assert log_event(_record(pb.LOG_WARNING, "spread_wide", bps=12.5, n=3, ok=False, sym="BTC")) == (
            "warning",
            {"message": "spread_wide", "fields": {"bps": 12.5, "n": 3, "ok": False, "sym": "BTC"}},
        )

    @pytest.mark.parametrize(
        ("level", "name"), [(pb.LOG_DEBUG, "debug"), (pb.LOG_INFO, "info"), (pb.LOG_WARNING, "warning"),
                            (pb.LOG_ERROR, "error")],
    )  # fmt: skip
    def test_every_level_maps_to_its_name(self, level: int, name: str) -> None:
        """Each protocol level is logged at the host level of the same name."""
        mapped = log_event(_record(level, "e"))
        assert mapped is not None and mapped[0] == name

    def test_unknown_level_is_refused(self) -> None:
        """A level the host does not know (unspecified, or from a newer runner) maps to nothing."""
        assert log_event(pb.LogRecord(level=pb.LOG_LEVEL_UNSPECIFIED, event="e")) is None
        assert log_event(pb.LogRecord(level=99, event="e")) is None  # type: ignore[arg-type]

    def test_strings_are_cut_again_on_the_host(self) -> None:
        """An oversized record from a forged runner is cut to the same limits: event 200, text 512."""
        record = pb.LogRecord(level=pb.LOG_INFO, event="e" * 1000, fields=[pb.LogField(key="k", text="t" * 10_000)])
        mapped = log_event(record)
        assert mapped is not None
        assert len(mapped[1]["message"]) == 200 and len(mapped[1]["fields"]["k"]) == 512

    def test_a_nan_number_survives(self) -> None:
        """Numbers travel as doubles, NaN included."""
        mapped = log_event(_record(pb.LOG_INFO, "e", x=math.nan))
        assert mapped is not None and math.isnan(mapped[1]["fields"]["x"])


def _relay(burst: int = 100, clock: ManualClock | None = None) -> tuple[StrategyLogRelay, RecordingMeter]:
    meter = RecordingMeter()
    limiter = LogRateLimiter(LogRatePolicy(rate_per_s=1, burst=burst, report_every_s=10), clock or ManualClock())
    return StrategyLogRelay("mm", "market_making", limiter, meter), meter  # type: ignore[arg-type]


class TestRelay:
    def test_record_is_logged_as_strategy_log_at_its_level(self) -> None:
        """One strategy_log event per record, at its level, with the host's strategy id, plugin and pid."""
        relay, _ = _relay()
        group = pb.StrategyLogs(strategy="mm", records=[_record(pb.LOG_ERROR, "quote_failed", side="bid")])
        with structlog.testing.capture_logs() as logs:
            relay.relay([group], runner_pid=42)
        assert logs == [
            {"event": "strategy_log", "log_level": "error", "strategy": "mm", "plugin": "market_making",
             "runner_pid": 42, "message": "quote_failed", "fields": {"side": "bid"}},
        ]  # fmt: skip

    def test_strategy_keys_cannot_overwrite_the_hosts(self) -> None:
        """A strategy's own 'strategy' or 'event' key stays under fields."""
        relay, _ = _relay()
        group = pb.StrategyLogs(strategy="mm", records=[_record(pb.LOG_INFO, "runner_restarted", strategy="other")])
        with structlog.testing.capture_logs() as logs:
            relay.relay([group], runner_pid=1)
        assert logs[0]["event"] == "strategy_log" and logs[0]["strategy"] == "mm"
        assert logs[0]["message"] == "runner_restarted" and logs[0]["fields"] == {"strategy": "other"}

    def test_group_naming_another_strategy_is_dropped_and_counted(self) -> None:
        """Records claiming another strategy's id are not logged; they count as impersonation."""
        relay, meter = _relay()
        group = pb.StrategyLogs(strategy="victim", records=[_record(pb.LOG_INFO, "x")] * 3, dropped=2)
        with structlog.testing.capture_logs() as logs:
            relay.relay([group], runner_pid=1)
        assert [e["event"] for e in logs] == ["strategy_log_dropped"] and logs[0]["dropped"] == 5
        assert meter.dropped == {"impersonation": 5}

    def test_flood_is_cut_counted_and_summarised_once_per_window(self) -> None:
        """Past the burst records are dropped, counted by reason, and named in one summary per window."""
        clock = ManualClock()
        relay, meter = _relay(burst=10, clock=clock)
        flood = pb.StrategyLogs(strategy="mm", records=[_record(pb.LOG_INFO, "spam")] * 50, dropped=950)
        with structlog.testing.capture_logs() as logs:
            relay.relay([flood], runner_pid=7)
            relay.relay([flood], runner_pid=7)
        assert sum(e["event"] == "strategy_log" for e in logs) == 10
        summaries = [e for e in logs if e["event"] == "strategy_log_dropped"]
        assert [(s["dropped"], s["log_level"], s["strategy"]) for s in summaries] == [(990, "warning", "mm")]
        assert summaries[0]["reasons"] == {"runner_cap": 950, "rate": 40}
        assert meter.dropped == {"runner_cap": 1900, "rate": 90}
        clock.advance(10)
        with structlog.testing.capture_logs() as logs:
            relay.relay([], runner_pid=7)
        assert [(e["event"], e["dropped"], e["total"], e["reasons"]) for e in logs] == [
            ("strategy_log_dropped", 1000, 1990, {"runner_cap": 950, "rate": 50})
        ]

    def test_drops_held_back_are_named_when_the_runner_ends(self) -> None:
        """runner_ended() names the drops the window had not reported yet."""
        relay, _ = _relay(burst=0)
        relay.relay([pb.StrategyLogs(strategy="mm", records=[_record(pb.LOG_INFO, "x")])], runner_pid=7)
        relay.relay([pb.StrategyLogs(strategy="mm", records=[_record(pb.LOG_INFO, "x")] * 2)], runner_pid=7)
        with structlog.testing.capture_logs() as logs:
            relay.runner_ended(7)
        assert [(e["event"], e["dropped"]) for e in logs] == [("strategy_log_dropped", 2)]

    def test_unknown_level_is_dropped_as_invalid(self) -> None:
        """A record at a level the host does not know is not logged; it counts as invalid."""
        relay, meter = _relay()
        with structlog.testing.capture_logs() as logs:
            relay.relay([pb.StrategyLogs(strategy="mm", records=[pb.LogRecord(level=0, event="x")])], runner_pid=1)
        assert [e["event"] for e in logs] == ["strategy_log_dropped"] and meter.dropped == {"invalid": 1}

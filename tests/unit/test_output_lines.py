"""Splitting a runner's output into bounded lines."""

from __future__ import annotations

import json

from host.supervisor.process import TRUNCATED, OutputLines, crash_cause


class TestOutputLines:
    def test_lines_split_across_chunks_are_joined(self) -> None:
        """A line written in several chunks comes out whole, once its newline arrives."""
        lines = OutputLines(limit=100)
        assert lines.feed(b"hel") == []
        assert lines.feed(b"lo\nwor") == [b"hello"]
        assert lines.feed(b"ld\n") == [b"world"]

    def test_a_long_line_is_cut_at_the_limit_with_a_marker(self) -> None:
        """A line over the limit comes out at once, cut with the marker, and is counted."""
        lines = OutputLines(limit=10)
        assert lines.feed(b"x" * 25) == [b"x" * 10 + TRUNCATED]
        assert lines.truncated == 1

    def test_the_rest_of_a_cut_line_is_dropped_up_to_its_newline(self) -> None:
        """After a cut, what is left of the line is dropped; the next line comes out whole."""
        lines = OutputLines(limit=10)
        lines.feed(b"y" * 15)
        assert lines.feed(b"y" * 1_000_000) == []
        assert lines.feed(b"yy\nnext\n") == [b"next"]
        assert lines.truncated == 1

    def test_a_last_line_without_newline_is_kept_at_close(self) -> None:
        """The stream ending mid-line hands out what was read of it."""
        lines = OutputLines(limit=10)
        lines.feed(b"a\nbc")
        assert lines.close() == [b"bc"]


class TestCrashCause:
    def test_the_last_line_of_a_printed_traceback(self) -> None:
        """A plain traceback's last line is the cause."""
        tail = ["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: bad", "exiting"]
        assert crash_cause(tail) == "ValueError: bad"

    def test_the_traceback_of_an_error_record(self) -> None:
        """A JSON log record at error level: the last line of its traceback."""
        record = json.dumps({"event": "runner_crashed", "level": "error", "traceback": "T\n  F\nOSError: gone\n"})
        assert crash_cause(['{"event": "ok", "level": "info"}', record]) == "OSError: gone"

    def test_an_error_record_without_traceback(self) -> None:
        """An error record with no traceback: its event and reason."""
        record = json.dumps({"event": "runner_host_gone", "level": "error", "reason": "parent died"})
        assert crash_cause([record]) == "runner_host_gone parent died"

    def test_nothing_said(self) -> None:
        """No traceback and no error record: no cause."""
        assert crash_cause(["hello", '{"event": "x", "level": "info"}']) == ""

"""The host's clocks: the system clock's readings and the replay clock's time read off events."""

from __future__ import annotations

import time

from host.clock import ReplayClock, SystemClock


class TestSystemClock:
    def test_is_monotonic(self) -> None:
        """SystemClock never goes backwards."""
        clock = SystemClock()
        first = clock.monotonic()
        assert clock.monotonic() >= first

    def test_wall_readings_are_epoch_nanoseconds(self) -> None:
        """time_ns and now_ns both read the machine's Unix epoch nanoseconds."""
        clock = SystemClock()
        before = time.time_ns()
        readings = (clock.time_ns(), clock.now_ns())
        after = time.time_ns()
        assert all(before <= reading <= after for reading in readings)


class TestReplayClock:
    def test_starts_at_zero(self) -> None:
        """Before the first event every reading is 0."""
        clock = ReplayClock()
        assert (clock.now_ns(), clock.time_ns(), clock.monotonic()) == (0, 0, 0.0)

    def test_reads_the_latest_event_time(self) -> None:
        """After advance, now_ns and time_ns are the event's timestamp and monotonic is it in seconds."""
        clock = ReplayClock()
        clock.advance(1_700_000_000_500_000_000)
        assert clock.now_ns() == clock.time_ns() == 1_700_000_000_500_000_000
        assert clock.monotonic() == 1_700_000_000.5

    def test_never_goes_backwards(self) -> None:
        """An older timestamp (an out-of-order event) leaves the clock where it is."""
        clock = ReplayClock()
        clock.advance(2_000)
        clock.advance(1_000)
        assert (clock.now_ns(), clock.time_ns()) == (2_000, 2_000)

"""FillDedupe: the bounded memory of fill ids in front of the ledger."""

from __future__ import annotations

import pytest

from host.feeds.fills import FillDedupe


class TestFillDedupe:
    def test_unknown_id_is_not_seen(self) -> None:
        """A fill id never recorded is not seen."""
        assert not FillDedupe().seen("f-1")

    def test_recorded_id_is_seen(self) -> None:
        """A recorded fill id is seen, as often as it is asked."""
        dedupe = FillDedupe()
        dedupe.record("f-1")
        assert dedupe.seen("f-1")
        assert dedupe.seen("f-1")

    def test_asking_does_not_record(self) -> None:
        """Asking about an id does not remember it: only a handed-on fill is recorded."""
        dedupe = FillDedupe()
        dedupe.seen("f-1")
        assert not dedupe.seen("f-1")
        assert len(dedupe) == 0

    def test_recording_twice_keeps_one_entry(self) -> None:
        """Recording the same id again does not use another slot."""
        dedupe = FillDedupe(capacity=2)
        dedupe.record("f-1")
        dedupe.record("f-1")
        assert len(dedupe) == 1

    def test_oldest_is_forgotten_past_capacity(self) -> None:
        """Past its capacity it forgets the least recently seen id, and only that one."""
        dedupe = FillDedupe(capacity=3)
        for fill_id in ("f-1", "f-2", "f-3", "f-4"):
            dedupe.record(fill_id)
        assert len(dedupe) == 3
        assert not dedupe.seen("f-1")
        assert all(dedupe.seen(fill_id) for fill_id in ("f-2", "f-3", "f-4"))

    def test_a_hit_keeps_an_id(self) -> None:
        """An id seen again becomes the most recent, so a newer one is forgotten before it."""
        dedupe = FillDedupe(capacity=2)
        dedupe.record("f-1")
        dedupe.record("f-2")
        assert dedupe.seen("f-1")
        dedupe.record("f-3")
        assert dedupe.seen("f-1")
        assert not dedupe.seen("f-2")

    def test_default_capacity(self) -> None:
        """By default it remembers the last 100 000 fills."""
        dedupe = FillDedupe()
        for i in range(100_001):
            dedupe.record(f"f-{i}")
        assert dedupe.capacity == 100_000
        assert len(dedupe) == 100_000
        assert not dedupe.seen("f-0")
        assert dedupe.seen("f-1")

    @pytest.mark.parametrize("capacity", [0, -1])
    def test_capacity_below_one_is_rejected(self, capacity: int) -> None:
        """A capacity that could remember nothing is a ValueError naming the field."""
        with pytest.raises(ValueError, match=r"FillDedupe\.capacity: must be >= 1"):
            FillDedupe(capacity)

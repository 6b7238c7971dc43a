"""How /status writes numbers an operator reads."""

from __future__ import annotations

import pytest

from host.http.engine import quantity


class TestQuantity:
    @pytest.mark.parametrize(
        ("raw", "shown"),
        [
            (0.1 + 0.2 - 0.32, -0.02),
            (-0.019999999999999997, -0.02),
            (0.30000000000000004, 0.3),
            (1e-8, 1e-8),
            (1_000_000.00000001, 1_000_000.00000001),
            (-0.0, 0.0),
            (3.0, 3.0),
        ],
    )
    def test_float_noise_is_dropped_and_real_sizes_kept(self, raw: float, shown: float) -> None:
        """Summed fills lose their last-bit noise; lot sizes down to 1e-8 survive."""
        assert quantity(raw) == shown
        assert str(quantity(raw)) == str(shown)

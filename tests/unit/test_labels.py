"""Metric labels take only values the host owns."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, generate_latest

from host.config import NatsConfig
from host.feeds.fills import FillFeed
from host.labels import OTHER, LabelGuard
from host.metrics import EngineMetrics
from sdk.events import Fill, Position


class TestLabelGuard:
    def test_a_configured_strategy_keeps_its_name(self) -> None:
        """A strategy id the configuration names is its own label value."""
        guard = LabelGuard()
        guard.allow_strategies(["a"], [])
        assert guard.strategy("a") == "a"

    def test_an_unknown_strategy_is_other(self) -> None:
        """A strategy id nobody configured (a peer's fill, a runner's claim) is ``other``."""
        guard = LabelGuard()
        guard.allow_strategies(["a"], [])
        assert guard.strategy("ghost") == OTHER

    def test_symbols_of_strategies_and_of_risk_are_allowed(self) -> None:
        """The universe is the strategies' symbols and risk's allowedSymbols; anything else is ``other``."""
        guard = LabelGuard()
        guard.allow_strategies(["a"], ["BTCUSDT"])
        guard.allow_symbols(["ETHUSDT"])
        assert [guard.symbol(s) for s in ("BTCUSDT", "ETHUSDT", "FORGED1")] == ["BTCUSDT", "ETHUSDT", OTHER]

    def test_reconfiguring_replaces_the_allowed_sets(self) -> None:
        """A strategy removed by a config change no longer gets a label of its own."""
        guard = LabelGuard()
        guard.allow_strategies(["a"], ["BTCUSDT"])
        guard.allow_strategies(["b"], ["ETHUSDT"])
        assert (guard.strategy("a"), guard.symbol("BTCUSDT"), guard.strategy("b")) == (OTHER, OTHER, "b")

    def test_an_unknown_error_kind_is_other(self) -> None:
        """A runner's own error kind is kept only when the host names that kind."""
        assert (LabelGuard.kind("exception"), LabelGuard.kind("x" * 50)) == ("exception", OTHER)


class TestGuardedMetrics:
    def test_forged_symbols_add_no_series(self) -> None:
        """A thousand dropped signals on forged symbols leave one ``other`` series."""
        metrics = EngineMetrics()
        metrics.allow_strategies(["s"], ["BTCUSDT"])
        meter = metrics.for_strategy("s")
        meter.signals_dropped("BTCUSDT", "flood")
        before = len(generate_latest(metrics.registry))
        for i in range(1000):
            meter.signals_dropped(f"FORGED{i}", "flood")
        assert len(generate_latest(metrics.registry)) - before < 200
        assert (
            metrics.registry.get_sample_value(
                "strategy_engine_signals_dropped_total", {"strategy": "s", "symbol": OTHER, "reason": "flood"}
            )
            == 1000
        )

    def test_positions_of_unknown_names_add_up_under_other(self) -> None:
        """current_positions keeps configured (strategy, symbol) pairs; the rest sum into ``other``."""
        metrics = EngineMetrics()
        metrics.allow_strategies(["s"], ["BTCUSDT"])
        held = [
            Position(symbol=symbol, quantity=quantity, avg_entry_price=1.0, timestamp_ns=0, strategy="s")
            for symbol, quantity in (("BTCUSDT", 1.0), ("X1", 2.0), ("X2", 3.0))
        ]
        metrics.watch_positions(lambda: held)
        sample = metrics.registry.get_sample_value
        assert sample("strategy_engine_current_positions", {"strategy": "s", "symbol": "BTCUSDT"}) == 1.0
        assert sample("strategy_engine_current_positions", {"strategy": "s", "symbol": OTHER}) == 5.0


class TestGuardedFeeds:
    async def test_a_fill_for_an_unknown_strategy_is_counted_as_other(self) -> None:
        """A peer's fill naming a strategy nobody configured adds no ``fills_received_total`` series."""
        guard = LabelGuard()
        guard.allow_strategies(["quiet"], ["BTCUSDT"])
        registry = CollectorRegistry()

        async def on_fill(strategy: str, fill: Fill) -> bool:
            return True

        feed = FillFeed(NatsConfig(), on_fill=on_fill, on_position=lambda s, p: None, route=lambda order: None,
                        registry=registry, labels=guard)  # fmt: skip
        for i, strategy in enumerate(("quiet", "ghost-1", "ghost-2")):
            await feed.handle_fill(_fill(f"f{i}", strategy))
        sample = registry.get_sample_value
        assert sample("strategy_engine_fills_received_total", {"strategy": "quiet"}) == 1
        assert sample("strategy_engine_fills_received_total", {"strategy": OTHER}) == 2
        assert b"ghost" not in generate_latest(registry)


def _fill(fill_id: str, strategy: str) -> bytes:
    return json.dumps({
        "fill_id": fill_id, "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "price": "50000.00",
        "fee": "0.05", "timestamp": "2025-10-06T10:00:01Z", "strategy": strategy,
    }).encode()  # fmt: skip

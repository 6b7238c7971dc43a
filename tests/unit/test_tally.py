"""The feed's plain-number metrics (host.feeds.tally) read exactly as prometheus_client's own would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from host.feeds.tally import Spread, Tally

BUCKETS = (250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000)


def _without_created(registry: CollectorRegistry) -> str:
    return "".join(line + "\n" for line in generate_latest(registry).decode().splitlines() if "_created" not in line)


class TestTally:
    def test_counts_expose_as_a_counter_family(self) -> None:
        """Counts by label values give the lines a labelled prometheus_client Counter gives (less _created)."""
        ours, theirs = CollectorRegistry(), CollectorRegistry()
        tally = Tally("ns_received_total", "Messages accepted", ["symbol", "type"])
        ours.register(tally)
        counter = Counter("received_total", "Messages accepted", ["symbol", "type"], namespace="ns", registry=theirs)
        for symbol, kind in [("BTCUSDT", "tick")] * 3 + [("ETHUSDT", "trade"), ("other", "tick")]:
            tally.counts[(symbol, kind)] = tally.counts.get((symbol, kind), 0) + 1
            counter.labels(symbol=symbol, type=kind).inc()
        assert _without_created(ours) == _without_created(theirs)
        assert ours.get_sample_value("ns_received_total", {"symbol": "BTCUSDT", "type": "tick"}) == 3


class TestSpread:
    def test_observations_expose_as_a_histogram(self) -> None:
        """Values below, on and between the bounds and past the last give prometheus_client's buckets, count, sum."""
        ours, theirs = CollectorRegistry(), CollectorRegistry()
        spread = Spread("ns_latency_microseconds", "Receive time minus stamp", BUCKETS)
        ours.register(spread)
        histogram = Histogram("latency_microseconds", "Receive time minus stamp", namespace="ns", registry=theirs,
                              buckets=BUCKETS)  # fmt: skip
        for value in (0.0, 250.0, 250.5, 999.9, 1_000.0, 1e6, 5e6, 5e6 + 1, 12_345.678):
            spread.observe(value)
            histogram.observe(value)
        assert _without_created(ours) == _without_created(theirs)

    def test_empty_has_zero_buckets(self) -> None:
        """Before any observation every bucket, the count and the sum read 0."""
        registry = CollectorRegistry()
        registry.register(Spread("ns_x", "x", BUCKETS))
        assert registry.get_sample_value("ns_x_count") == 0
        assert registry.get_sample_value("ns_x_bucket", {"le": "+Inf"}) == 0

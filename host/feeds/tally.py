"""Per-message metrics of the market data feed, kept as plain numbers and read by Prometheus at scrape time.

Model. The feed counts every accepted message by (symbol, type) and observes its latency: at 50k
messages a second, prometheus_client's ``Counter.inc`` and ``Histogram.observe`` (a lock, a child
lookup, a linear bucket search; about 8 % of the host's time in a profile at 50k ticks/s,
bench/results/data-lane.md) cost more than the rest of counting. ``Tally`` and ``Spread`` hold
the same figures as ints and floats that the feed updates on the event loop; their ``collect``
gives Prometheus the families it gave before (same names, help, labels and buckets; no
``_created`` series). Reading from the scrape's thread while the loop writes is safe under the
GIL: a scrape sees each number as it was at some moment.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["Spread", "Tally"]


class Tally(Collector):
    """A counter family by label values: ``counts[(v1, v2, ...)] += 1`` on the hot path."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self._name = name.removesuffix("_total")
        self._documentation = documentation
        self._labels = list(labels)
        self.counts: dict[tuple[str, ...], int] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for values, count in list(self.counts.items()):
            family.add_metric(list(values), count)
        yield family


class Spread(Collector):
    """A histogram of fixed buckets: ``observe(value)`` is a bisection and two additions."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = [float(b) for b in buckets]
        # The "le" labels as prometheus_client writes them ("1.0e+06"); its helper has no annotations.
        self._les = [floatToGoString(b) for b in [*self._bounds, float("inf")]]  # type: ignore[no-untyped-call]
        self._counts = [0] * (len(self._bounds) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1  # a value on a bound belongs to it (le)
        self._sum += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        counts, total, cumulative = list(self._counts), self._sum, 0
        buckets: list[tuple[str, float]] = []
        for le, count in zip(self._les, counts, strict=True):
            cumulative += count
            buckets.append((le, cumulative))
        yield HistogramMetricFamily(self._name, self._documentation, buckets=buckets, sum_value=total)

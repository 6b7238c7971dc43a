"""Which values a metric label may take: only the ones the host owns.

Model. A label value is a time series for as long as the process lives (prometheus_client never
forgets one), so a label fed from a string a runner or a peer chose is a way to grow ``/metrics``
and the host's memory without bound: a strategy emitting signals on forged symbols, a fill on
NATS naming a strategy that does not exist. Every such label goes through the ``LabelGuard`` the
engine's metrics own:

- ``strategy(value)``: a configured strategy id, else ``other``;
- ``symbol(value)``: a symbol of the configured universe (the symbols the strategies are
  configured on, and risk's ``allowedSymbols``), else ``other``;
- ``kind(value)``: a failure kind the host names (``ERROR_KINDS``), else ``other``.

The allowed sets are replaced whenever strategies are (re)configured (``Supervisor`` calls
``allow_strategies`` at start and in ``set_definitions``) and when risk's limits change
(``allow_symbols``). Values already exported stay (a counter never goes back); new ones are
bounded by the configuration. Pure and synchronous, read on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from host.supervisor.policy import FailureKind

__all__ = ["ERROR_KINDS", "OTHER", "LabelGuard"]

OTHER = "other"

# Every failure kind the host itself names (every policy.FailureKind, so a new kind is never
# folded into ``other``; the judge's and the runner dispatcher's kinds); a runner's Error.kind
# outside these is counted as ``other``.
ERROR_KINDS = frozenset(kind.value for kind in FailureKind) | {
    "exception",
    "bad_signal",
    "bad_event",
    "flood",
    "impersonation",
    "invalid",
    "exit",
}


class LabelGuard:
    """Maps label values a runner or a peer supplied onto the values the host owns."""

    def __init__(self) -> None:
        self._strategies: frozenset[str] = frozenset()
        self._strategy_symbols: frozenset[str] = frozenset()
        self._risk_symbols: frozenset[str] = frozenset()

    def allow_strategies(self, strategies: Iterable[str], symbols: Iterable[str]) -> None:
        """The configured strategy ids and the symbols they are configured on (replacing the last set)."""
        self._strategies = frozenset(strategies)
        self._strategy_symbols = frozenset(symbols)

    def allow_symbols(self, symbols: Iterable[str]) -> None:
        """Risk's tradeable symbols (``allowedSymbols``), replacing the last set."""
        self._risk_symbols = frozenset(symbols)

    def strategy(self, value: str) -> str:
        return value if value in self._strategies else OTHER

    def symbol(self, value: str) -> str:
        return value if value in self._strategy_symbols or value in self._risk_symbols else OTHER

    @staticmethod
    def kind(value: str) -> str:
        return value if value in ERROR_KINDS else OTHER

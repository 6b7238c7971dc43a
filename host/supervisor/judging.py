"""What one batch result means for its strategy: signals handed on, errors charged to the breaker.

Model. The runner is untrusted, so everything in a ``BatchResult`` is checked again here: an output
that names another strategy is dropped (impersonation), each strategy error is counted and charged,
signals past ``max_signals_per_batch`` are cut (flood), and every signal and cancel is validated
before it reaches the listener. A handler's exception is logged with the ``file:line`` the runner
located in the plugin's code and the full traceback, and ``last_error`` reads
``on_tick at scripted/__init__.py:42: RuntimeError: ...``. Each charge asks the breaker for a
decision; the worst one wins (open > restart > continue). A result with no failure records a
success. Signals of a strategy that stopped serving while the batch was in flight (paused,
removed) are dropped and counted: its orders were already cancelled when it was reported down.
Timer requests are applied to the supervisor's ``TimerBook`` in the order asked; one it refuses
(past the per-strategy limit, an empty name) is charged as ``bad_signal``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import structlog

from engine_proto import strategy_pb2 as pb
from host.labels import LabelGuard
from host.supervisor.policy import CircuitBreaker, Continue, Decision, FailureKind, Open, Restart
from host.supervisor.status import StrategyListener, StrategyMeter, StrategyStats, SupervisionSettings
from protocol import wire
from sdk._timers import TimerBook, TimerRejected
from sdk.errors import ValidationError
from sdk.events import Cancel, Signal

__all__ = ["ResultJudge"]

log = structlog.get_logger("host.supervisor")
_LOCATION_LIMIT = 300
_TRACEBACK_LIMIT = 8000


class ResultJudge:
    """Judges the results of one strategy's batches; ``serving`` says whether its signals may still go on."""

    def __init__(
        self,
        strategy_id: str,
        settings: SupervisionSettings,
        stats: StrategyStats,
        metrics: StrategyMeter,
        breaker: CircuitBreaker,
        listener: StrategyListener,
        serving: Callable[[], bool],
        *,
        timers: TimerBook | None = None,
    ) -> None:
        self.id = strategy_id
        self.timers = timers
        self.settings = settings
        self.stats = stats
        self.metrics = metrics
        self.breaker = breaker
        self.listener = listener
        self._serving = serving

    def judge(self, result: pb.BatchResult) -> Decision:
        """Hand the result's signals on and charge its failures; the breaker's verdict."""
        decision: Decision = Continue()
        failed = False
        for output in result.outputs:
            if output.strategy != self.id:
                self.stats.impersonations += 1
                failed = True
                reason = f"runner answered as strategy {output.strategy!r}; its output was dropped"
                decision = _worst(decision, self._error("impersonation", reason, ""))
                continue
            for error in output.errors:
                failed = True
                decision = _worst(decision, self._strategy_error(error))
            signals, cancels, flood = self._accept(output)
            if output.timers and self._serving():
                rejected = self._schedule(output)
                if rejected:
                    failed = True
                    decision = _worst(decision, self._error("bad_signal", rejected, ""))
            if flood:
                failed = True
                decision = _worst(decision, self._error("flood", flood, ""))
            if (signals or cancels) and not self._serving():
                # Paused or removed while this batch was in flight: its strategy was already
                # reported down (orders cancelled), so nothing it asked for may follow.
                self.stats.signals_dropped += len(signals)
                if signals:
                    self.metrics.signals_dropped(signals[0].symbol, "not_serving", len(signals))
            elif signals or cancels:
                self.listener.signals(self.id, signals, cancels)
        if not failed:
            self.breaker.record_success()
        return decision

    def _accept(self, output: pb.StrategyOutput) -> tuple[list[Signal], list[Cancel], str]:
        limit = self.settings.max_signals_per_batch
        flood = ""
        raw = list(output.signals)
        if len(raw) > limit:
            self.stats.signals_dropped += len(raw) - limit
            self.metrics.signals_dropped(raw[limit].symbol, "flood", len(raw) - limit)
            flood = f"emitted {len(raw)} signals in one batch (limit {limit}); {len(raw) - limit} dropped"
            raw = raw[:limit]
        signals = []
        for message in raw:
            try:
                signals.append(wire.signal_from_pb(message))
            except ValidationError as err:
                self.stats.signals_dropped += 1
                self.metrics.signals_dropped(message.symbol, "invalid")
                flood = flood or f"invalid signal: {err}"
        cancels = []
        for cancel in output.cancels[:limit]:
            with contextlib.suppress(ValidationError):
                cancels.append(wire.cancel_from_pb(cancel))
        self.stats.signals += len(signals)
        self.stats.cancels += len(cancels)
        if signals:
            self.metrics.signals.inc(len(signals))
        return signals, cancels, flood

    def _schedule(self, output: pb.StrategyOutput) -> str:
        """Apply the output's timer requests, in order; why the first refused one was refused ("" when none)."""
        if self.timers is None:
            return "timers are not driven in this engine"
        refused = ""
        for message in output.timers[: self.settings.max_signals_per_batch]:
            try:
                self.timers.apply(self.id, wire.timer_request_from_pb(message))
            except TimerRejected as err:
                refused = refused or str(err)
        return refused

    def _strategy_error(self, error: pb.Error) -> Decision:
        """A handler's error as the runner reported it: where it raised, and the whole traceback."""
        location = error.location[:_LOCATION_LIMIT]
        traceback = error.traceback[-_TRACEBACK_LIMIT:]  # the innermost frames are the ones that say why
        # The kind is the runner's string: a name the host does not know is counted as "other".
        kind = LabelGuard.kind(error.kind or "exception")
        return self._error(kind, error.text, error.handler, location, traceback)

    def _error(self, kind: str, text: str, handler: str, location: str = "", traceback: str = "") -> Decision:
        self.stats.errors += 1
        self.stats.errors_by_kind[kind] = self.stats.errors_by_kind.get(kind, 0) + 1
        self.metrics.error(kind)
        where = " ".join(filter(None, (handler, location and f"at {location}")))
        self.stats.last_error = f"{where}: {text}" if where else text
        details = {"location": location, "traceback": traceback} if location or traceback else {}
        log.warning("strategy_error", strategy=self.id, kind=kind, handler=handler, error=text[:500], **details)
        return self.breaker.record_failure(FailureKind.ERROR, f"{kind}: {text[:200]}")


def _worst(a: Decision, b: Decision) -> Decision:
    rank = {Continue: 0, Restart: 1, Open: 2}
    return b if rank[type(b)] > rank[type(a)] else a

"""One runner's stream seen from the host: handshake, sequenced batches with a deadline, stop.

Model: the session owns the runner's single inbox (``host.link.Inbound``: messages, stream
closed, process exited). At most one batch is in flight; ``call`` sends it with the next
``seq`` and waits for the result with that seq, within the deadline. Anything else that
arrives meanwhile is handled here: a result for another seq is dropped and counted (never
matched to a newer batch), a heartbeat is noted, a closed stream or an exited process raises
``RunnerLost`` — the one way "runner gone" reaches the supervisor, which charges the in-flight
batch to the strategy. Deadlines use the loop's monotonic clock through ``asyncio.timeout``.

With a data lane (``host.lane``) the handshake asks the runner to use it (``Start.data_lane``);
once its ``Ready`` confirms, batches are written to the lane, whose reader puts results and its
EOF on the same inbox, so everything above holds unchanged for either path. A lane whose runner
broke its framing or flooded it past the lane's own bound (``LaneViolation``) raises
``ProtocolViolation``, charged like a flood of the stream.

Everything the runner sends unasked (late or forged results, unexpected kinds, heartbeat echoes)
goes through the runner's ``StrayBudget`` (``host.strays``): its log lines are bounded to one per
window with a count of those suppressed, and past the budget the session raises
``ProtocolViolation``, which the supervisor charges to the strategy and ends the runner for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from engine_proto import strategy_pb2 as pb
from host.clock import SystemClock
from host.lane import DataLane, LaneViolation
from host.link import Inbound, ProcessExited, Received, RunnerConnection, StreamClosed, Wakeup
from host.strays import StrayBudget, StrayPolicy
from protocol import wire

__all__ = [
    "BootFailed",
    "DeadlineMissed",
    "ProtocolViolation",
    "RunnerLost",
    "RunnerSession",
    "SessionError",
    "SessionStats",
]

log = structlog.get_logger("host.session")


class SessionError(Exception):
    """Base of the ways a session call can fail."""


class RunnerLost(SessionError):
    """The stream closed or the process exited."""

    def __init__(self, runner_id: str, reason: str, returncode: int | None = None) -> None:
        self.runner_id = runner_id
        self.reason = reason
        self.returncode = returncode
        super().__init__(f"runner {runner_id!r} lost: {reason}")


class DeadlineMissed(SessionError):
    def __init__(self, runner_id: str, seq: int, deadline_s: float) -> None:
        self.runner_id = runner_id
        self.seq = seq
        self.deadline_s = deadline_s
        super().__init__(f"runner {runner_id!r} missed the {deadline_s * 1000:.1f} ms deadline for batch {seq}")


class ProtocolViolation(SessionError):
    """The runner sent more messages the host did not ask for than its budget allows (a flood), or broke
    its data lane's framing (``lane``: what it did)."""

    def __init__(self, runner_id: str, strays: int, kind: str | None, *, lane: str = "") -> None:
        self.runner_id = runner_id
        self.strays = strays
        if lane:
            super().__init__(f"runner {runner_id!r} broke its {lane}; ended")
        else:
            super().__init__(
                f"runner {runner_id!r} flooded its stream: {strays} messages the host did not ask for "
                f"(last: {kind or 'empty'}); ended"
            )


class BootFailed(SessionError):
    """The runner reported it could not load or start (it exits with a boot error code)."""

    def __init__(self, runner_id: str, failure: pb.BootFailure) -> None:
        self.runner_id = runner_id
        self.failure = failure
        kind = pb.BootFailureKind.Name(failure.kind)
        where = failure.plugin or failure.strategy
        hook = f" (hook {failure.hook})" if failure.hook else ""
        super().__init__(f"runner {runner_id!r} failed to boot [{kind}] {where}{hook}: {failure.reason}")


@dataclass
class SessionStats:
    batches: int = 0
    events_sent: int = 0
    late_replies: int = 0
    unexpected: int = 0
    heartbeats: int = 0
    last_rtt_ns: int = 0


class RunnerSession:
    """The host's end of one runner's stream."""

    def __init__(
        self,
        runner_id: str,
        inbox: asyncio.Queue[Inbound],
        connection: RunnerConnection,
        logs: Callable[[Sequence[pb.StrategyLogs]], None] | None = None,
        strays: StrayBudget | None = None,
        lane: DataLane | None = None,
    ) -> None:
        self.runner_id = runner_id
        self.strays = strays or StrayBudget(StrayPolicy(), SystemClock())
        self._logs = logs  # where the strategy log records riding on every message go
        self.inbox = inbox
        self.connection = connection
        self.seq = 0
        self.stats = SessionStats()
        self.hello: pb.Hello | None = None
        self.lane = lane  # offered in Start when the runner's Hello says it holds it
        self._batches: RunnerConnection | DataLane = connection  # where batches go: the lane once confirmed

    # ---------------------------------------------------------------- inbox

    async def _next(self) -> pb.RunnerMessage:
        while True:
            message = self.interpret(await self.inbox.get())
            if message is not None:
                return message

    def interpret(self, item: Inbound) -> pb.RunnerMessage | None:
        """The message an inbox item carries; None for a wakeup; RunnerLost when the runner is gone."""
        match item:
            case Received(message=message):
                if message.logs and self._logs is not None:
                    self._logs(message.logs)
                return message
            case Wakeup():
                return None
            case LaneViolation(reason=reason):
                raise ProtocolViolation(self.runner_id, self.strays.total, None, lane=reason)
            case StreamClosed(reason=reason):
                raise RunnerLost(self.runner_id, reason)
            case ProcessExited(returncode=code):
                raise RunnerLost(self.runner_id, f"process exited ({code})", code)
        raise AssertionError(f"unknown inbox item {item!r}")

    def drain(self) -> None:
        """Relay the log records of messages left on the inbox: once the runner is ended nobody reads them."""
        while not self.inbox.empty():
            item = self.inbox.get_nowait()
            if isinstance(item, Received) and item.message.logs and self._logs is not None:
                self._logs(item.message.logs)

    def note_idle(self, message: pb.RunnerMessage) -> None:
        """A message that arrived while no batch was in flight (heartbeat echo, late result, ...)."""
        self._stray(message, message.WhichOneof("kind"))

    async def _expect(self, kind: str) -> pb.RunnerMessage:
        """The next message of ``kind``; a BootFailure raises; heartbeats and strays are skipped."""
        while True:
            message = await self._next()
            got = message.WhichOneof("kind")
            if got == kind:
                return message
            if got == "boot_failure":
                self.connection.close()  # the runner waits for this EOF before it exits
                raise BootFailed(self.runner_id, message.boot_failure)
            self._stray(message, got)

    def _stray(self, message: pb.RunnerMessage, kind: str | None) -> None:
        """Count (and maybe log) a message the host did not ask for; ProtocolViolation past the budget."""
        verdict = self.strays.note()
        if kind == "heartbeat":
            self.stats.heartbeats += 1
        elif kind == "result":
            self.stats.late_replies += 1
            if verdict.log:
                log.warning("runner_late_reply_dropped", runner=self.runner_id, seq=message.result.seq,
                            awaited=self.seq, suppressed=verdict.suppressed)  # fmt: skip
        else:
            self.stats.unexpected += 1
            if verdict.log:
                log.warning("runner_unexpected_message", runner=self.runner_id, kind=kind,
                            suppressed=verdict.suppressed)  # fmt: skip
        if verdict.over_budget:
            raise ProtocolViolation(self.runner_id, self.strays.total, kind)

    # ---------------------------------------------------------------- calls

    async def handshake(self, restore: Mapping[str, bytes], timeout_s: float) -> pb.Hello:
        """Hello -> Start(restore) -> Ready, within ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            hello = await self.loaded(timeout_s)
            await self.start(restore, timeout_s)
        return hello

    async def loaded(self, timeout_s: float) -> pb.Hello:
        """The runner's Hello: its code loaded and its strategies were built.

        A runner whose protocol version this host does not speak (``wire.protocol_refusal``) raises
        ``BootFailed`` of kind ``PROTOCOL_VERSION``: a boot error, never restarted in a loop.
        """
        async with asyncio.timeout(timeout_s):
            hello = (await self._expect("hello")).hello
        refusal = wire.protocol_refusal(hello.protocol_version)
        if refusal is not None:
            failure = pb.BootFailure(kind=pb.PROTOCOL_VERSION, plugin=hello.plugin, reason=refusal)
            raise BootFailed(self.runner_id, failure)
        self.hello = hello
        return hello

    async def start(self, restore: Mapping[str, bytes], timeout_s: float) -> None:
        """Start(restore) -> Ready: state restored, on_start run, ready for traffic (on the lane if agreed)."""
        offer = self.lane is not None and self.hello is not None and self.hello.data_lane
        self.connection.send(pb.HostMessage(start=pb.Start(restore=dict(restore), data_lane=offer)))
        async with asyncio.timeout(timeout_s):
            ready = (await self._expect("ready")).ready
        if offer and ready.data_lane and self.lane is not None:
            await self.lane.start(self.inbox)
            self._batches = self.lane

    @property
    def on_lane(self) -> bool:
        """Batches travel on the data lane."""
        return self._batches is not self.connection

    async def call(
        self, events_payload: bytes, count: int, deadline_s: float, *, cut_on_output: bool = False
    ) -> pb.BatchResult:
        """Send one batch (events serialized once by the caller); its result within ``deadline_s``.

        ``cut_on_output`` (a backtest's lockstep): the runner stops after the first event that made
        output, and ``BatchResult.consumed`` says how many it handled."""
        self.seq += 1
        seq = self.seq
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(deadline_s):  # the write too: the deadline bounds the whole exchange
                await self._batches.write(wire.encode_batch(seq, events_payload, cut_on_output=cut_on_output))
                while True:
                    message = await self._next()
                    if message.WhichOneof("kind") == "result" and message.result.seq == seq:
                        break
                    self._stray(message, message.WhichOneof("kind"))
        except TimeoutError:
            raise DeadlineMissed(self.runner_id, seq, deadline_s) from None
        self.stats.batches += 1
        self.stats.events_sent += count
        self.stats.last_rtt_ns = int((loop.time() - started) * 1e9)
        return message.result

    async def snapshot(self, timeout_s: float) -> pb.Snapshot:
        self.connection.send(pb.HostMessage(snapshot_request=pb.SnapshotRequest()))
        async with asyncio.timeout(timeout_s):
            return (await self._expect("snapshot")).snapshot

    async def heartbeat(self, now_ns: int) -> None:
        self.connection.send(pb.HostMessage(heartbeat=pb.Heartbeat(sent_ns=now_ns)))

    def request_stop(self, reason: str) -> None:
        """Ask the runner to stop without waiting for its reply (the stop ladder waits for the exit)."""
        self.connection.send(pb.HostMessage(stop=pb.Stop(reason=reason)))

    async def stop(self, reason: str, timeout_s: float) -> pb.Stopped:
        """Ask the runner to stop; its Stopped reply (on_stop errors) within ``timeout_s``."""
        self.connection.send(pb.HostMessage(stop=pb.Stop(reason=reason)))
        async with asyncio.timeout(timeout_s):
            return (await self._expect("stopped")).stopped

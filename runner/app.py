"""The runner's life: connect, load, handshake, serve batches, stop.

Single-threaded asyncio (gRPC's own threads aside): one loop reads host messages in order and
answers each before reading the next, so strategy code never runs concurrently with itself. A
strategy that blocks blocks only this runner; the host's per-batch deadline notices and kills it.

Order of a runner's life::

    connect (token in metadata) -> seal the sandbox (no new sockets) -> load plugin, build strategies -> Hello
      -> Start (state to restore) -> on_load/on_start -> Ready -> batches ... -> Stop -> Stopped

A load or config failure is sent as ``BootFailure`` before the runner exits with its named code;
so is ``SystemExit`` or ``KeyboardInterrupt`` raised by plugin code in ``on_load``/``on_start``
(the loader reports those raised while loading): a strategy that will not start is a boot error.
SIGTERM and the host's Stop both end it cleanly (``on_stop`` for every strategy, then exit 0);
the stream closing under it (host gone) ends it with ``HOST_GONE``.

Data lane: started with an inherited socket (``--lane-fd``), the runner says so in ``Hello``; when
``Start`` asks for it, a second reader task moves the lane's frames (length-prefixed
``HostMessage``s) onto the same queue as the stream's, and results go back as frames on the lane
(``Ready.data_lane`` confirms). The lane's EOF is the host gone, like the stream's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog

import sdk
from engine_proto import strategy_pb2 as pb
from engine_proto import strategy_pb2_grpc as pb_grpc
from protocol import ExitCode, wire
from runner.dispatch import Dispatcher, locate
from runner.errors import PluginLoadError, RunnerError, StrategyBuildError
from runner.loader import StrategySpec, build_strategies, load_plugin
from runner.logs import LogBuffer, StrategyLog
from runner.sandbox import SandboxReport, seal
from sdk.dispatch import HandlerError, StrategySlot

__all__ = ["RunnerOptions", "serve"]

TOKEN_METADATA = "x-runner-token"
_FRAME_HEADER = struct.Struct(">I")  # data-lane frames: 4-byte big-endian length, then the message
_MAX_FRAME = 256 * 1024 * 1024
_Socket = socket.socket  # RunnerOptions.socket (the link's path) hides the module inside the class
_served = asyncio.Event()  # set once this process sent Ready (a process serves one stream)
log = structlog.get_logger("runner")


@dataclass(frozen=True)
class RunnerOptions:
    socket: Path
    plugin: Path
    strategies: Sequence[StrategySpec]
    token: str
    sandbox: SandboxReport | None = None  # sealed once the link is up; sent in Hello
    handshake_timeout_s: float = 30.0
    lane: _Socket | None = None  # the inherited data lane, when the host gave one


class _Stream:
    """The runner's end of RunnerLink.Connect.

    One reader task moves host messages onto a queue, so that SIGTERM can wake the serving loop
    (by queueing ``SIGTERM``) without cancelling a pending read, which would cancel the call.
    """

    SIGTERM = object()

    def __init__(self, call: Any, logs: LogBuffer) -> None:
        self.call = call
        self.logs = logs
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())
        self._lane: asyncio.StreamWriter | None = None
        self._lane_reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            while (message := await self.call.read()) is not grpc.aio.EOF:
                self.queue.put_nowait(message)
        except grpc.aio.AioRpcError as err:
            self.queue.put_nowait(err)
        finally:
            self.queue.put_nowait(None)

    async def open_lane(self, sock: socket.socket) -> None:
        """Read batches from the data lane too (same queue); results go back there from now on."""
        reader, self._lane = await asyncio.open_unix_connection(sock=sock, limit=1024 * 1024)
        self._lane_reader = asyncio.ensure_future(self._read_lane(reader))

    async def _read_lane(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = _FRAME_HEADER.unpack(await reader.readexactly(_FRAME_HEADER.size))
                if size > _MAX_FRAME:
                    log.error("runner_lane_frame_too_large", size=size)
                    break
                self.queue.put_nowait(pb.HostMessage.FromString(await reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:  # a frame that is not a HostMessage: the lane cannot be trusted
            log.error("runner_lane_broken", reason=f"{type(exc).__name__}: {exc}")
        self.queue.put_nowait(None)

    async def send_result(self, message: pb.RunnerMessage) -> None:
        """A batch's result: on the data lane when the batches come from there, else on the stream."""
        lane = self._lane
        if lane is None:
            await self.send(message)
            return
        message.logs.extend(self.logs.take())
        payload = message.SerializeToString()
        lane.write(_FRAME_HEADER.pack(len(payload)) + payload)
        await lane.drain()

    async def send(self, message: pb.RunnerMessage) -> None:
        """Write ``message`` with the strategy log records written since the last one."""
        message.logs.extend(self.logs.take())
        await self.call.write(message)

    async def receive(self) -> Any:
        """The next host message; None at EOF; ``SIGTERM`` when asked to stop. Raises a broken call's error."""
        item = await self.queue.get()
        if isinstance(item, grpc.aio.AioRpcError):
            raise item
        return item

    async def host_closed(self) -> None:
        """Until the host ends the call: by then it has read everything this runner wrote."""
        await asyncio.shield(self._reader)

    def close(self) -> None:
        self._reader.cancel()
        if self._lane_reader is not None:
            self._lane_reader.cancel()
        if self._lane is not None:
            self._lane.close()


def _boot_failure(err: RunnerError) -> pb.RunnerMessage:
    if isinstance(err, PluginLoadError):
        failure = pb.BootFailure(
            kind=pb.PLUGIN_LOAD, plugin=err.plugin, hook=err.hook, reason=err.reason, traceback=err.traceback
        )
    elif isinstance(err, StrategyBuildError):
        failure = pb.BootFailure(kind=pb.CONFIG, strategy=err.strategy, reason=err.reason, traceback=err.traceback)
    else:
        failure = pb.BootFailure(reason=str(err))
    return pb.RunnerMessage(boot_failure=failure)


def _start_failure(error: HandlerError, plugin: Path) -> pb.RunnerMessage:
    where = locate(error.exception, plugin)
    return pb.RunnerMessage(
        boot_failure=pb.BootFailure(
            kind=pb.STRATEGY_START,
            strategy=error.strategy,
            reason=f"{error.handler} raised {error.text}" + (f" at {where}" if where else ""),
            traceback=error.traceback,
        )
    )


async def _report_failure(stream: _Stream, failure: pb.RunnerMessage, timeout_s: float = 2.0) -> None:
    """Send a BootFailure, half-close, and wait (bounded) for the host to end the call.

    Exiting right after the write could tear the stream down before the message is delivered;
    the host ends the call once it has read the failure. The half-close is what lets it end the
    call at once: the host waits for the runner's side to close before it ends one (up to 2 s).
    """
    await stream.send(failure)
    with contextlib.suppress(TimeoutError, grpc.aio.AioRpcError, asyncio.InvalidStateError):
        async with asyncio.timeout(timeout_s):
            await stream.call.done_writing()
            while await stream.receive() not in (None, _Stream.SIGTERM):
                pass


def _hello(options: RunnerOptions, slots: Sequence[StrategySlot]) -> pb.RunnerMessage:
    infos = [
        pb.StrategyInfo(
            id=slot.strategy_id,
            name=slot.strategy.name,
            plugin=options.plugin.name,
            symbols=list(slot.strategy.config.symbols),
        )
        for slot in slots
    ]
    layers = options.sandbox.wire() if options.sandbox else []
    hello = pb.Hello(
        pid=os.getpid(), plugin=options.plugin.name, strategies=infos, sandbox=layers,
        data_lane=options.lane is not None, protocol_version=wire.PROTOCOL_VERSION, sdk_version=sdk.__version__,
    )  # fmt: skip
    return pb.RunnerMessage(hello=hello)


def _load(options: RunnerOptions, logs: LogBuffer) -> list[StrategySlot]:
    plugin = load_plugin(options.plugin)
    return [
        StrategySlot(sid, strategy, StrategyLog(sid, logs))
        for sid, strategy in build_strategies(plugin, options.strategies)
    ]


async def _handshake(stream: _Stream, options: RunnerOptions) -> Dispatcher | ExitCode:
    try:
        slots = _load(options, stream.logs)
    except RunnerError as err:
        log.error("runner_boot_failed", reason=str(err))
        await _report_failure(stream, _boot_failure(err))
        return err.exit_code
    dispatcher = Dispatcher(slots, options.plugin)  # fixes the host's ids before any strategy code runs
    await stream.send(_hello(options, slots))
    async with asyncio.timeout(options.handshake_timeout_s):
        message = await stream.receive()
    if not isinstance(message, pb.HostMessage) or message.WhichOneof("kind") != "start":
        log.error("runner_handshake_failed", got=repr(message)[:80])
        return ExitCode.HANDSHAKE_ERROR
    for slot in slots:
        error = _start(slot, message.start.restore.get(slot.strategy_id, b""))
        if error is not None:
            await _report_failure(stream, _start_failure(error, options.plugin))
            return ExitCode.START_ERROR
    on_lane = message.start.data_lane and options.lane is not None
    if on_lane and options.lane is not None:
        await stream.open_lane(options.lane)
    elif options.lane is not None:
        options.lane.close()  # the host did not ask for it: batches come on the stream
    await stream.send(pb.RunnerMessage(ready=pb.Ready(data_lane=on_lane)))
    _served.set()
    return dispatcher


def _start(slot: StrategySlot, state: bytes) -> HandlerError | None:
    """``slot.start``; plugin code leaving the process (sys.exit, KeyboardInterrupt) is a start error too."""
    try:
        return slot.start(state)
    except (SystemExit, KeyboardInterrupt) as exc:
        text = f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"raised {type(exc).__name__}"
        handler = "on_load/on_start" if state else "on_start"
        return HandlerError(slot.strategy_id, handler, "exit", text, traceback.format_exc(), exc)


def _snapshot(dispatcher: Dispatcher) -> pb.RunnerMessage:
    snapshot = pb.Snapshot()
    for slot in dispatcher.slots:
        state = slot.save()
        if isinstance(state, HandlerError):
            snapshot.errors.append(dispatcher.error_to_pb(state))
        else:
            snapshot.states[slot.strategy_id] = state
    return pb.RunnerMessage(snapshot=snapshot)


def _stop_all(dispatcher: Dispatcher) -> pb.RunnerMessage:
    errors = [dispatcher.error_to_pb(e) for e in (slot.stop() for slot in dispatcher.slots) if e is not None]
    return pb.RunnerMessage(stopped=pb.Stopped(errors=errors))


async def _serve_batches(stream: _Stream, dispatcher: Dispatcher) -> ExitCode:
    """Answer host messages in order until Stop, SIGTERM (both stop every strategy) or EOF."""
    while True:
        message = await stream.receive()
        if message is None:
            log.info("runner_host_gone")
            return ExitCode.HOST_GONE
        if message is _Stream.SIGTERM:
            log.info("runner_sigterm")
            await stream.send(_stop_all(dispatcher))
            return ExitCode.OK
        match message.WhichOneof("kind"):
            case "batch":
                reply = pb.RunnerMessage()
                dispatcher.handle_batch(message.batch, into=reply.result)
                await stream.send_result(reply)
            case "heartbeat":
                await stream.send(pb.RunnerMessage(heartbeat=message.heartbeat))
            case "snapshot_request":
                await stream.send(_snapshot(dispatcher))
            case "stop":
                await stream.send(_stop_all(dispatcher))
                return ExitCode.OK
            case other:
                log.warning("runner_unexpected_message", kind=other)


async def _run(options: RunnerOptions, stream_ready: asyncio.Future[_Stream]) -> ExitCode:
    async with grpc.aio.insecure_channel(f"unix://{options.socket}") as channel:
        stub = pb_grpc.RunnerLinkStub(channel)  # type: ignore[no-untyped-call]  # generated code is untyped
        call = stub.Connect(metadata=((TOKEN_METADATA, options.token),))
        stream = _Stream(call, LogBuffer())
        await _seal(channel, options)
        stream_ready.set_result(stream)
        dispatcher: Dispatcher | None = None
        try:
            outcome = await _handshake(stream, options)
            if isinstance(outcome, ExitCode):
                return outcome
            dispatcher = outcome
            return await _serve_batches(stream, dispatcher)
        except TimeoutError:
            log.error("runner_handshake_timeout", timeout_s=options.handshake_timeout_s)
            return ExitCode.HANDSHAKE_ERROR
        except grpc.aio.AioRpcError as err:
            sealed = options.sandbox is not None and "no_new_sockets" in options.sandbox.applied
            # gRPC would reconnect on a new socket, which the sealed sandbox refuses: say so.
            reconnect = "refused by the sandbox (no_new_sockets)" if sealed else "not attempted"
            log.error("runner_stream_failed", code=str(err.code()), details=err.details(), reconnect=reconnect)
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                return ExitCode.HANDSHAKE_ERROR
            if dispatcher is None and err.code() == grpc.StatusCode.INTERNAL:
                # A refused handshake can surface as INTERNAL instead of UNAUTHENTICATED once the
                # socket seal is on: gRPC core fails on the socket it may no longer make.
                return ExitCode.HANDSHAKE_ERROR
            return ExitCode.HOST_GONE if dispatcher is not None else ExitCode.BOOT_ERROR
        finally:
            await _close(call, stream)
            stream.close()


async def _seal(channel: grpc.aio.Channel, options: RunnerOptions) -> None:
    """Once the link is connected, refuse new sockets (before any plugin code is imported).

    Not connected in time: seal anyway, and the call fails as it would have without the seal.
    """
    if options.sandbox is None:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(options.handshake_timeout_s):
            await channel.channel_ready()
    seal(options.sandbox)


async def _close(call: Any, stream: _Stream) -> None:
    """Half-close, then wait (bounded) for the host's end of the call.

    Cancelling the call any earlier (``stream.close`` cancels its pending read) can discard
    messages the host has not read yet, such as the BootFailure sent just before exiting.
    """
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError, TimeoutError):
        async with asyncio.timeout(1.0):
            await call.done_writing()
            await stream.host_closed()


async def serve(options: RunnerOptions) -> ExitCode:
    """Run until stopped; return the exit code to leave with."""
    loop = asyncio.get_running_loop()
    stream_ready: asyncio.Future[_Stream] = loop.create_future()

    def on_sigterm() -> None:
        if stream_ready.done():
            stream_ready.result().queue.put_nowait(_Stream.SIGTERM)

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGINT, on_sigterm)
    try:
        return await _run(options, stream_ready)
    except Exception:
        log.error("runner_crashed", traceback=traceback.format_exc())
        # Before the handshake finished this is a boot error (never restarted blindly); after
        # it, the runner broke while serving, which a fresh runner may not.
        return ExitCode.RUNNER_CRASH if _served.is_set() else ExitCode.BOOT_ERROR

"""The RunnerLink gRPC server: where runner processes connect, and how they are told apart.

The server listens on a Unix socket inside a private directory (mode 0700), so only this user
can reach it; a root host whose runners switch to another user hands the socket to that uid
(``admit``: the socket becomes the uid's with the host's group, mode 0660, so a runner that
could not switch and kept root's ids still connects without any capability; the directory
becomes 0711, passable but not listable).

Every spawn registers a fresh random token and the inbox its session reads; the
runner presents the token as call metadata, and the connection is bound to that spawn's
identity (its runner id and strategy ids). What the runner later claims about itself is never
used to decide who it is. A connection with an unknown or reused token is refused with
UNAUTHENTICATED and counted.

Everything a connection produces becomes one typed item on its session's inbox: ``Received``
for each message, then ``StreamClosed`` once. Outgoing messages are queued and written by the
handler, or written at once by ``RunnerConnection.write`` when the stream is free; ``bytes`` are
written as they are (pre-serialized batches).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog

from engine_proto import strategy_pb2 as pb

__all__ = [
    "Inbound",
    "LinkServer",
    "ProcessExited",
    "Received",
    "Registration",
    "RunnerConnection",
    "StreamClosed",
    "Wakeup",
]

TOKEN_METADATA = "x-runner-token"
SERVICE = "strategy_engine.runner.v1.RunnerLink"
log = structlog.get_logger("host.link")


@dataclass(frozen=True, slots=True)
class Received:
    message: pb.RunnerMessage


@dataclass(frozen=True, slots=True)
class StreamClosed:
    reason: str


@dataclass(frozen=True, slots=True)
class ProcessExited:
    """Put on the inbox by the supervisor when the runner process has been reaped."""

    returncode: int


@dataclass(frozen=True, slots=True)
class Wakeup:
    """Put on the inbox by the supervisor when work arrives for an idle runner."""


Inbound = Received | StreamClosed | ProcessExited | Wakeup


class RunnerConnection:
    """One accepted stream, seen from the host.

    ``send`` queues a message for the stream's handler to write; ``write`` (the batch path)
    writes it from the caller's task when nothing is queued or being written, which saves the
    hop through the handler task, and queues it behind the others otherwise, so the runner
    reads messages in the order they were sent either way. One write is in progress at a time.
    """

    def __init__(self, runner_id: str, inbox: asyncio.Queue[Inbound], context: Any) -> None:
        self.runner_id = runner_id
        self.inbox = inbox
        self._context = context
        self._outgoing: asyncio.Queue[bytes | pb.HostMessage | None] = asyncio.Queue()
        self._writing = asyncio.Lock()
        self.closed = False

    def send(self, message: bytes | pb.HostMessage) -> None:
        if not self.closed:
            self._outgoing.put_nowait(message)

    async def write(self, message: bytes | pb.HostMessage) -> None:
        """Send ``message`` now if the stream is free, else queue it; a broken stream closes the connection.

        A failed write is not raised: the stream's reader sees the same break and puts
        ``StreamClosed`` on the inbox, which is how the session learns the runner is gone.
        """
        if self.closed:
            return
        if self._writing.locked() or not self._outgoing.empty():
            self._outgoing.put_nowait(message)
            return
        async with self._writing:
            try:
                await self._context.write(message)
            except Exception as exc:  # the RPC ended under us (runner gone, host stopping)
                log.debug("runner_link_write_failed", runner=self.runner_id, reason=f"{type(exc).__name__}: {exc}")
                self.close()

    def close(self) -> None:
        """End the response stream (the runner reads EOF)."""
        if not self.closed:
            self.closed = True
            self._outgoing.put_nowait(None)


@dataclass
class Registration:
    runner_id: str
    token: str
    inbox: asyncio.Queue[Inbound]
    connected: asyncio.Future[RunnerConnection]


def _serialize(message: bytes | pb.HostMessage) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


class LinkServer:
    """Serves RunnerLink.Connect on a private Unix socket."""

    def __init__(self, directory: Path | None = None) -> None:
        self._own_dir = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="se-link-")) if directory is None else directory
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self.socket_path = self.directory / "link.sock"
        self._pending: dict[str, Registration] = {}
        self._server: grpc.aio.Server | None = None
        self.rejected = 0

    async def start(self) -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        handler = grpc.stream_stream_rpc_method_handler(
            self._connect, request_deserializer=pb.RunnerMessage.FromString, response_serializer=_serialize
        )
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {"Connect": handler})])
        server.add_insecure_port(f"unix://{self.socket_path}")
        await server.start()
        self.socket_path.chmod(0o600)
        self._server = server

    async def stop(self, grace_s: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
        for registration in self._pending.values():
            registration.connected.cancel()
        self._pending.clear()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def admit(self, uid: int) -> None:
        """Let processes of ``uid`` (the runners' user) connect; the token still decides who they are."""
        self.directory.chmod(0o711)
        os.chown(self.socket_path, uid, os.getegid())
        self.socket_path.chmod(0o660)

    def register(self, runner_id: str, inbox: asyncio.Queue[Inbound]) -> Registration:
        """A fresh token for one spawn; its connection will feed ``inbox``."""
        token = secrets.token_urlsafe(32)
        future: asyncio.Future[RunnerConnection] = asyncio.get_running_loop().create_future()
        registration = Registration(runner_id, token, inbox, future)
        self._pending[token] = registration
        return registration

    def unregister(self, registration: Registration) -> None:
        self._pending.pop(registration.token, None)
        if not registration.connected.done():
            registration.connected.cancel()

    def _claim(self, context: Any) -> Registration | None:
        metadata = dict(context.invocation_metadata() or ())
        token = metadata.get(TOKEN_METADATA, "")
        return self._pending.pop(token, None) if isinstance(token, str) else None

    async def _connect(self, requests: AsyncIterator[pb.RunnerMessage], context: Any) -> None:
        registration = self._claim(context)
        if registration is None or registration.connected.done():
            self.rejected += 1
            log.warning("runner_link_rejected", reason="unknown or reused token")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown runner token")
            return
        connection = RunnerConnection(registration.runner_id, registration.inbox, context)
        registration.connected.set_result(connection)
        reader = asyncio.ensure_future(self._read(requests, connection))
        writing = connection._writing
        try:
            while (message := await connection._outgoing.get()) is not None:
                async with writing:
                    await context.write(message)
        finally:
            connection.closed = True
            async with writing:  # a direct write in progress finishes before the RPC ends
                pass
            if not reader.done():
                # The host closed its side; let the runner's half-close arrive, but not forever.
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    async with asyncio.timeout(2.0):
                        await asyncio.shield(reader)
                reader.cancel()

    @staticmethod
    async def _read(requests: AsyncIterator[pb.RunnerMessage], connection: RunnerConnection) -> None:
        reason = "runner closed the stream"
        try:
            async for message in requests:
                connection.inbox.put_nowait(Received(message))
        except asyncio.CancelledError:
            reason = "host closed the stream"
            raise
        except Exception as exc:
            reason = f"stream broke: {type(exc).__name__}: {exc}"
        finally:
            connection.inbox.put_nowait(StreamClosed(reason))
            connection.close()

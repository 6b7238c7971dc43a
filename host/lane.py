"""A runner's data lane, host end: event batches out and their results back, beside the gRPC stream.

Model. Before a runner is spawned the host makes a connected Unix socket pair; the runner
inherits one end as a file descriptor (its only one: the host closes its copy after the spawn), so
there is no path anyone could connect to and nothing to authenticate. Frames are a 4-byte
big-endian length and a serialized protobuf: ``HostMessage{batch}`` out, ``RunnerMessage{result}``
back. The handshake on the stream decides whether the lane is used (``Start.data_lane`` /
``Ready.data_lane``); from then on ``open`` starts one reader task that puts every frame on the
runner's single inbox as ``Received``, exactly as the stream's reader does, and EOF (or a broken
frame) as one ``StreamClosed``: the session sees "runner gone" the same way from either.

Writes happen from the caller's task (one batch in flight, so one writer); the asyncio transport
buffers, and a write is only awaited when the buffer is over its high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import structlog
from google.protobuf.message import DecodeError

from engine_proto import strategy_pb2 as pb
from host.link import Inbound, Received, StreamClosed

__all__ = ["FRAME_HEADER", "MAX_FRAME", "DataLane", "frame", "lane_pair"]

FRAME_HEADER = struct.Struct(">I")
MAX_FRAME = 4 * 1024 * 1024  # what the stream takes from a runner too (gRPC's default receive limit)
_READ_LIMIT = 1024 * 1024
log = structlog.get_logger("host.lane")


def frame(payload: bytes) -> bytes:
    """``payload`` with its length prefix."""
    return FRAME_HEADER.pack(len(payload)) + payload


def lane_pair() -> tuple[socket.socket, socket.socket]:
    """(host end, runner end); both close-on-exec: the spawn passes the runner's end explicitly."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


class DataLane:
    """The host end of one runner's lane."""

    def __init__(self, runner_id: str, sock: socket.socket) -> None:
        self.runner_id = runner_id
        self._sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.Task[None] | None = None
        self.closed = False

    async def start(self, inbox: asyncio.Queue[Inbound]) -> None:
        """Start moving the runner's frames onto ``inbox``; batches may be written from now on."""
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=_READ_LIMIT)
        self._reader = asyncio.ensure_future(self._read(reader, inbox))

    async def write(self, message: bytes) -> None:
        """Send one serialized ``HostMessage``; a broken lane is not raised (its reader reports it)."""
        writer = self._writer
        if writer is None or self.closed:
            return
        try:
            writer.write(frame(message))
            if writer.transport.get_write_buffer_size() > _READ_LIMIT:
                await writer.drain()
        except ConnectionError as exc:
            log.debug("runner_lane_write_failed", runner=self.runner_id, reason=f"{type(exc).__name__}: {exc}")

    async def _read(self, reader: asyncio.StreamReader, inbox: asyncio.Queue[Inbound]) -> None:
        reason = "runner closed the data lane"
        try:
            while True:
                (size,) = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))
                if size > MAX_FRAME:
                    reason = f"data lane frame of {size} bytes is over the {MAX_FRAME} byte limit"
                    break
                inbox.put_nowait(Received(pb.RunnerMessage.FromString(await reader.readexactly(size))))
        except asyncio.IncompleteReadError:
            pass
        except DecodeError as exc:
            reason = f"data lane frame is not a RunnerMessage: {exc}"
        except ConnectionError as exc:
            reason = f"data lane broke: {type(exc).__name__}: {exc}"
        inbox.put_nowait(StreamClosed(reason))

    def close(self) -> None:
        """Stop reading and close the host's end (the runner reads EOF); nothing more goes on the inbox."""
        if self.closed:
            return
        self.closed = True
        if self._reader is not None:
            self._reader.cancel()
        if self._writer is not None:
            self._writer.close()
        else:
            with contextlib.suppress(OSError):
                self._sock.close()

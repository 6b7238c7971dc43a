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

A hostile runner owns its end of the lane, so the reader bounds what it takes. A frame whose
header announces more than ``MAX_FRAME`` bytes (a 4 GB header, junk read as a length), or that is
not a ``RunnerMessage``, ends the lane with ``LaneViolation``. A runner sends exactly one frame per
batch on its lane (heartbeats and the rest ride the stream), so a frame beyond the batches written
is unasked: it still goes on the inbox (the session's ``StrayBudget`` counts, logs and charges
strays from either path), and at ``MAX_UNASKED`` of them the reader stops reading and ends the
lane with ``LaneViolation`` itself, whoever gets there first: a runner cannot make the host parse
and queue without bound, even while the session is not reading (the runner being ended, say), and a
flood is caught in the reads that bring it, before it can delay the runner's own answers past
their deadline. The session turns ``LaneViolation`` into ``ProtocolViolation``:
charged to the strategy as ``protocol``, and the runner is ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass

import structlog
from google.protobuf.message import DecodeError

from engine_proto import strategy_pb2 as pb
from host.link import Inbound, Received, StreamClosed

__all__ = ["FRAME_HEADER", "MAX_FRAME", "MAX_UNASKED", "DataLane", "LaneViolation", "frame", "lane_pair"]

FRAME_HEADER = struct.Struct(">I")
MAX_FRAME = 4 * 1024 * 1024  # what the stream takes from a runner too (gRPC's default receive limit)
MAX_UNASKED = 256  # frames beyond the batches written before the reader gives up on the lane
_READ_LIMIT = 1024 * 1024
log = structlog.get_logger("host.lane")


@dataclass(frozen=True, slots=True)
class LaneViolation(StreamClosed):
    """The runner broke the lane's rules (oversized or undecodable frame, unasked frames past the bound).

    A ``StreamClosed`` (the lane is gone either way) that the session charges as a protocol breach."""


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
        self.written = 0  # batches written
        self.received = 0  # frames read
        self.unasked = 0  # frames read while none was owed (beyond the batches written)
        self._credit = 0

    async def start(self, inbox: asyncio.Queue[Inbound]) -> None:
        """Start moving the runner's frames onto ``inbox``; batches may be written from now on."""
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=_READ_LIMIT)
        self._reader = asyncio.ensure_future(self._read(reader, inbox))

    async def write(self, message: bytes) -> None:
        """Send one serialized ``HostMessage``; a broken lane is not raised (its reader reports it)."""
        writer = self._writer
        if writer is None or self.closed:
            return
        self.written += 1
        self._credit += 1
        try:
            writer.write(frame(message))
            if writer.transport.get_write_buffer_size() > _READ_LIMIT:
                await writer.drain()
        except ConnectionError as exc:
            log.debug("runner_lane_write_failed", runner=self.runner_id, reason=f"{type(exc).__name__}: {exc}")

    async def _read(self, reader: asyncio.StreamReader, inbox: asyncio.Queue[Inbound]) -> None:
        closed: StreamClosed = StreamClosed("runner closed the data lane")
        try:
            while True:
                (size,) = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))
                if size > MAX_FRAME:
                    closed = self._violation(f"a frame of {size} bytes announced, over the {MAX_FRAME} byte limit")
                    break
                inbox.put_nowait(Received(pb.RunnerMessage.FromString(await reader.readexactly(size))))
                self.received += 1
                if self._credit > 0:  # one frame is owed per batch written
                    self._credit -= 1
                else:
                    self.unasked += 1
                    if self.unasked >= MAX_UNASKED:
                        closed = self._violation(f"{self.unasked} frames beyond the {self.written} batches sent")
                        break
        except asyncio.IncompleteReadError:
            pass
        except DecodeError as exc:
            closed = self._violation(f"a frame that is not a RunnerMessage ({exc})")
        except ConnectionError as exc:
            closed = StreamClosed(f"data lane broke: {type(exc).__name__}: {exc}")
        inbox.put_nowait(closed)

    def _violation(self, what: str) -> LaneViolation:
        log.warning("runner_lane_violation", runner=self.runner_id, reason=what, frames=self.received,
                    batches=self.written)  # fmt: skip
        return LaneViolation(f"data lane: {what}")

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

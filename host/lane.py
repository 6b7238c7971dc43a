"""A runner's data lane, host end: event batches out and their results back, beside the gRPC stream.

Model. Before a runner is spawned the host makes a connected Unix socket pair; the runner
inherits one end as a file descriptor (its only one: the host closes its copy after the spawn), so
there is no path anyone could connect to and nothing to authenticate. Frames are a 4-byte
big-endian length and a serialized protobuf: ``HostMessage{batch}`` out, ``RunnerMessage{result}``
back. The handshake on the stream decides whether the lane is used (``Start.data_lane`` /
``Ready.data_lane``); from then on ``start`` makes the lane an asyncio protocol on the socket: its
read callback puts every complete frame on the runner's single inbox as ``Received``, exactly as
the stream's reader does, and EOF (or a broken frame) as one ``StreamClosed``: the session sees
"runner gone" the same way from either. No reader task sits between the socket and the inbox (a
task switch per result saved, bench/results/data-lane.md).

Writes happen from the caller's task (one batch in flight, so one writer); the asyncio transport
buffers, and a write is only awaited while the buffer is over its high-water mark.

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


class DataLane(asyncio.Protocol):
    """The host end of one runner's lane: an asyncio protocol, so a result frame goes from the socket's
    read callback to the inbox without a reader task in between."""

    def __init__(self, runner_id: str, sock: socket.socket) -> None:
        self.runner_id = runner_id
        self._sock = sock
        self._transport: asyncio.Transport | None = None
        self._inbox: asyncio.Queue[Inbound] | None = None
        self._buffer = bytearray()
        self._drained: asyncio.Future[None] | None = None  # set while the transport asks writers to wait
        self._ended = False  # the inbox has had its StreamClosed (or LaneViolation): nothing more goes on it
        self.closed = False
        self.written = 0  # batches written
        self.received = 0  # frames read
        self.unasked = 0  # frames read while none was owed (beyond the batches written)
        self._credit = 0

    async def start(self, inbox: asyncio.Queue[Inbound]) -> None:
        """Start moving the runner's frames onto ``inbox``; batches may be written from now on."""
        self._inbox = inbox
        await asyncio.get_running_loop().create_unix_connection(lambda: self, sock=self._sock)

    async def write(self, message: bytes) -> None:
        """Send one serialized ``HostMessage``; a broken lane is not raised (its read side reports it)."""
        transport = self._transport
        if transport is None or self.closed or transport.is_closing():
            return
        self.written += 1
        self._credit += 1
        transport.write(frame(message))
        if self._drained is not None:
            await asyncio.shield(self._drained)

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=_READ_LIMIT)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._ended:
            return
        buffer = self._buffer
        buffer += data
        offset, size_of_header = 0, FRAME_HEADER.size
        try:
            while len(buffer) - offset >= size_of_header:
                (size,) = FRAME_HEADER.unpack_from(buffer, offset)
                if size > MAX_FRAME:
                    self._end(self._violation(f"a frame of {size} bytes announced, over the {MAX_FRAME} byte limit"))
                    return
                start = offset + size_of_header
                if len(buffer) - start < size:
                    break
                offset = start + size
                if not self._frame(pb.RunnerMessage.FromString(bytes(buffer[start:offset]))):
                    return
        except DecodeError as exc:
            self._end(self._violation(f"a frame that is not a RunnerMessage ({exc})"))
            return
        del buffer[:offset]

    def _frame(self, message: pb.RunnerMessage) -> bool:
        """Put one frame's message on the inbox; False once the lane has ended over unasked frames."""
        assert self._inbox is not None
        self._inbox.put_nowait(Received(message))
        self.received += 1
        if self._credit > 0:  # one frame is owed per batch written
            self._credit -= 1
            return True
        self.unasked += 1
        if self.unasked < MAX_UNASKED:
            return True
        self._end(self._violation(f"{self.unasked} frames beyond the {self.written} batches sent"))
        return False

    def eof_received(self) -> bool:
        self._end(StreamClosed("runner closed the data lane"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.resume_writing()
        if exc is None:
            self._end(StreamClosed("runner closed the data lane"))
        else:
            self._end(StreamClosed(f"data lane broke: {type(exc).__name__}: {exc}"))

    # ---------------------------------------------------------------- ending

    def _end(self, closed: StreamClosed) -> None:
        """Report the lane gone, once, and read no more (a violation leaves the runner's writes to block)."""
        if self._ended or self.closed:
            return
        self._ended = True
        self._buffer.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()
        if self._inbox is not None:
            self._inbox.put_nowait(closed)

    def _violation(self, what: str) -> LaneViolation:
        log.warning("runner_lane_violation", runner=self.runner_id, reason=what, frames=self.received,
                    batches=self.written)  # fmt: skip
        return LaneViolation(f"data lane: {what}")

    def close(self) -> None:
        """Stop reading and close the host's end (the runner reads EOF); nothing more goes on the inbox."""
        if self.closed:
            return
        self.closed = True
        if self._transport is not None:
            self._transport.close()
        else:
            with contextlib.suppress(OSError):
                self._sock.close()

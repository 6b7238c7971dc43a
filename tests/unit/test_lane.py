"""The host end of a data lane (host.lane) against a plain socket standing in for the runner."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from engine_proto import strategy_pb2 as pb
from host.lane import FRAME_HEADER, MAX_FRAME, MAX_UNASKED, DataLane, LaneViolation, frame, lane_pair
from host.link import Inbound, Received, StreamClosed
from tests.helpers import wait_until


class Peer:
    """The runner's end, driven by the test: raw frames in and out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, payload: bytes) -> None:
        self.sock.sendall(payload)

    def receive(self) -> bytes:
        (size,) = FRAME_HEADER.unpack(self._exactly(FRAME_HEADER.size))
        return self._exactly(size)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            data += self.sock.recv(n - len(data))
        return data


@pytest.fixture
async def lane() -> AsyncIterator[tuple[DataLane, Peer, asyncio.Queue[Inbound]]]:
    host_end, runner_end = lane_pair()
    inbox: asyncio.Queue[Inbound] = asyncio.Queue()
    data_lane = DataLane("r1", host_end)
    await data_lane.start(inbox)
    yield data_lane, Peer(runner_end), inbox
    data_lane.close()
    runner_end.close()


async def _next(inbox: asyncio.Queue[Inbound]) -> Inbound:
    async with asyncio.timeout(5):
        return await inbox.get()


class TestDataLane:
    async def test_batch_goes_out_as_one_length_prefixed_frame(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """``write`` sends the serialized HostMessage behind its 4-byte big-endian length."""
        data_lane, peer, _ = lane
        message = pb.HostMessage(batch=pb.EventBatch(seq=7)).SerializeToString()
        await data_lane.write(message)
        assert await asyncio.to_thread(peer.receive) == message

    async def test_result_frame_lands_on_the_inbox(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """A RunnerMessage frame from the runner becomes one ``Received`` on the runner's inbox."""
        _, peer, inbox = lane
        result = pb.RunnerMessage(result=pb.BatchResult(seq=3))
        peer.send(frame(result.SerializeToString()))
        item = await _next(inbox)
        assert isinstance(item, Received) and item.message == result

    async def test_eof_is_one_stream_closed(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """The runner's end closing (the runner gone) puts exactly one StreamClosed on the inbox."""
        _, peer, inbox = lane
        peer.sock.close()
        item = await _next(inbox)
        assert isinstance(item, StreamClosed) and "data lane" in item.reason
        assert inbox.empty()

    async def test_oversized_frame_closes_the_lane(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """A length over the limit is a broken runner: StreamClosed naming the size, nothing read into memory."""
        _, peer, inbox = lane
        peer.send(FRAME_HEADER.pack(MAX_FRAME + 1))
        item = await _next(inbox)
        assert isinstance(item, LaneViolation) and str(MAX_FRAME + 1) in item.reason

    async def test_garbage_frame_closes_the_lane(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """A frame that is not a RunnerMessage ends the lane with its reason."""
        _, peer, inbox = lane
        peer.send(frame(b"\xff\xff\xff"))
        item = await _next(inbox)
        assert isinstance(item, LaneViolation) and "not a RunnerMessage" in item.reason

    async def test_close_reports_nothing_more(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """After the host closes the lane the runner reads EOF and the inbox gets no StreamClosed."""
        data_lane, peer, inbox = lane
        data_lane.close()
        assert await asyncio.to_thread(peer.sock.recv, 1) == b""
        assert inbox.empty()


class TestLaneBounds:
    async def test_a_4gb_header_is_a_violation_read_no_further(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """A header announcing 4 GB ends the lane as a ``LaneViolation`` before a byte of the body is awaited."""
        data_lane, peer, inbox = lane
        peer.send(FRAME_HEADER.pack(2**32 - 1))
        item = await _next(inbox)
        assert isinstance(item, LaneViolation) and "4294967295 bytes announced" in item.reason
        assert data_lane.received == 0

    async def test_eof_is_not_a_violation(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """The runner closing its end is a plain StreamClosed (runner gone), not charged as a protocol breach."""
        _, peer, inbox = lane
        peer.sock.close()
        item = await _next(inbox)
        assert isinstance(item, StreamClosed) and not isinstance(item, LaneViolation)

    async def test_answers_to_batches_are_owed_not_unasked(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """One frame per batch written is owed; only frames beyond those count as unasked."""
        data_lane, peer, inbox = lane
        result = frame(pb.RunnerMessage(result=pb.BatchResult(seq=1)).SerializeToString())
        for _ in range(3):
            await data_lane.write(pb.HostMessage(batch=pb.EventBatch(seq=1)).SerializeToString())
        peer.send(result * 5)
        for _ in range(5):
            assert isinstance(await _next(inbox), Received)
        assert (data_lane.written, data_lane.received, data_lane.unasked) == (3, 5, 2)

    async def test_a_flood_nobody_reads_is_cut_at_the_bound(self, lane: tuple[DataLane, Peer, Any]) -> None:
        """Unasked frames written as fast as a socket takes them while the inbox is not read: the reader stops
        at ``MAX_UNASKED`` with one LaneViolation, so the inbox holds no more than that, and reads no further."""
        data_lane, peer, inbox = lane
        junk = frame(pb.RunnerMessage(result=pb.BatchResult(seq=10**9)).SerializeToString())
        flood = asyncio.create_task(asyncio.to_thread(peer.send, junk * (4 * MAX_UNASKED)))
        await wait_until(lambda: inbox.qsize() > MAX_UNASKED, 5)
        await asyncio.sleep(0.1)  # time for reads the bound must prevent
        items = [inbox.get_nowait() for _ in range(inbox.qsize())]
        assert len(items) == MAX_UNASKED + 1, len(items)
        assert all(isinstance(item, Received) for item in items[:-1])
        assert isinstance(items[-1], LaneViolation) and f"{MAX_UNASKED} frames beyond the 0 batches" in items[-1].reason
        assert data_lane.received == MAX_UNASKED
        data_lane.close()
        peer.sock.close()
        await asyncio.gather(flood, return_exceptions=True)

"""The data lane: batches on a socket pair beside the gRPC stream, agreed in the handshake, one per runner."""

from __future__ import annotations

import json

import pytest

from host.link import LinkServer
from host.session import RunnerLost
from protocol import ExitCode
from tests.helpers import payload, tick_events
from tests.integration.conftest import RunnerHarness


class TestDataLane:
    async def test_handshake_puts_batches_on_the_lane(self, runners: RunnerHarness) -> None:
        """A runner spawned with a lane says so in Hello, confirms it in Ready, and answers batches there."""
        _, session = await runners.ready(params={"every": 1})
        assert session.hello is not None and session.hello.data_lane
        assert session.on_lane
        result = await session.call(payload(tick_events(3)), 3, deadline_s=5)
        assert result.seq == 1 and result.outputs[0].events == 3

    async def test_without_a_lane_batches_ride_the_stream(self, link: LinkServer) -> None:
        """``dataLane: grpc``: no lane is made (the runner holds only its link), and batches go on the stream."""
        harness = RunnerHarness(link, data_lane=False)
        try:
            live, session = await harness.ready(params={"mode": "report"})
            assert live.process.lane is None
            assert session.hello is not None and not session.hello.data_lane
            assert not session.on_lane
            result = await session.call(payload(tick_events(1)), 1, deadline_s=5)
            assert result.seq == 1
            assert len(json.loads(result.outputs[0].signals[0].metadata["host_sockets"])) == 1  # the link alone
        finally:
            await harness.close()

    async def test_each_runner_holds_only_its_own_lane(self, runners: RunnerHarness) -> None:
        """With three runners up at once, each holds two sockets to the host: its link and its own lane."""
        lives = [await runners.spawn("scripted", [{"id": f"s{i}", "name": "scripted", "params": {"mode": "report"}}])
                 for i in range(3)]  # fmt: skip
        for live in lives:
            session = await runners.connect(live)
            await session.handshake({}, timeout_s=10)
        for live in lives:
            assert live.session is not None and live.session.on_lane
            result = await live.session.call(payload(tick_events(1)), 1, deadline_s=5)
            metadata = result.outputs[0].signals[0].metadata
            assert len(json.loads(metadata["host_sockets"])) == 2, metadata["fds"]

    async def test_host_closing_the_lane_ends_the_runner(self, runners: RunnerHarness) -> None:
        """EOF on the lane means the host is gone: the runner exits HOST_GONE, promptly."""
        live, _session = await runners.ready()
        assert live.process.lane is not None
        live.process.lane.close()
        assert await live.process.wait(5) == ExitCode.HOST_GONE

    async def test_runner_dying_mid_batch_is_runner_lost(self, runners: RunnerHarness) -> None:
        """The lane's EOF (or the exit) reaches the awaiting call as RunnerLost, not a timeout."""
        _, session = await runners.ready(params={"mode": "segv"})
        with pytest.raises(RunnerLost):
            await session.call(payload(tick_events(1)), 1, deadline_s=5)

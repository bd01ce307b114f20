"""The devstack's NATS cluster: routed members, replicated streams that outlive a member."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamConfig
from nats.js.errors import NoStreamResponseError

from genbus.devstack.nats import NatsCluster, NatsConfig, nats_server_argv
from genbus.runtime.nats_client import connect_nats

pytestmark = pytest.mark.integration


def test_a_cluster_member_routes_to_the_others(tmp_path: Path) -> None:
    config = NatsConfig(
        data_dir=tmp_path / "n0",
        port=4222,
        monitor_port=8222,
        server_name="genbus-n0",
        cluster_port=6222,
        routes=("nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224"),
    )
    argv = nats_server_argv(config, binary="nats-server")
    assert argv[argv.index("--cluster_name") + 1] == "genbus"
    assert argv[argv.index("--cluster") + 1] == "nats://127.0.0.1:6222"
    assert argv[argv.index("--routes") + 1] == (
        "nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224"
    )
    assert argv[argv.index("--server_name") + 1] == "genbus-n0"
    alone = NatsConfig(data_dir=tmp_path, port=1, monitor_port=2, server_name="solo")
    assert "--cluster" not in nats_server_argv(alone, binary="nats-server")


async def test_a_replicated_stream_outlives_its_leader(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path / "nats", size=3)
    await asyncio.to_thread(cluster.start)
    try:
        assert len(set(cluster.meta_leaders().values())) == 1
        nc = await connect_nats(
            cluster.admin_url, reconnect_time_wait=0.1, max_reconnect_attempts=-1
        )
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="R3", subjects=["r3.>"], num_replicas=3))
        for i in range(10):
            await _publish_retrying(js, str(i).encode(), f"m-{i}")
        info = await js.stream_info("R3")
        assert info.cluster is not None
        (leader,) = [n for n in cluster.nodes if n.config.server_name == info.cluster.leader]
        await asyncio.to_thread(leader.kill)
        # While the survivors elect a new leader a publish finds no responder: clients retry
        # with the same message id, as the outbox relay and the poller do.
        for i in range(10, 20):
            await _publish_retrying(js, str(i).encode(), f"m-{i}")
        # The same message id after the failover is still a duplicate: dedup state is replicated.
        assert (await _publish_retrying(js, b"0", "m-0")).duplicate
        info = await js.stream_info("R3")
        assert info.state.messages == 20
        assert info.cluster is not None
        assert info.cluster.leader != leader.config.server_name
        await nc.close()
    finally:
        await asyncio.to_thread(cluster.stop)


async def _publish_retrying(js: JetStreamContext, data: bytes, msg_id: str) -> PubAck:
    for _ in range(100):
        try:
            return await js.publish("r3.x", data, headers={"Nats-Msg-Id": msg_id}, timeout=2)
        except (NoStreamResponseError, nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.1)
    raise AssertionError("no stream leader after 100 tries")

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from genbus.devstack import NatsServer
from genbus.devstack.processes import pid_alive
from genbus.runtime.nats_client import connect_nats

pytestmark = pytest.mark.integration


async def test_jetstream_message_survives_sigkill_and_client_reconnects(base_dir: Path) -> None:
    server = NatsServer(base_dir / "nats")
    await asyncio.to_thread(server.start)
    first_pid = server.pid
    assert first_pid is not None
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await connect_nats(
        server.admin_url,
        reconnect_time_wait=0.05,
        max_reconnect_attempts=-1,
        reconnected_cb=on_reconnect,
    )
    try:
        js = nc.jetstream()
        await js.add_stream(name="DEVSTACK", subjects=["devstack.>"])
        ack = await js.publish("devstack.hello", b"payload", headers={"Nats-Msg-Id": "m-1"})

        await asyncio.to_thread(server.kill)
        assert not pid_alive(first_pid)
        assert not server.is_running()

        await asyncio.to_thread(server.start)
        second_pid = server.pid
        assert second_pid is not None
        assert second_pid != first_pid
        assert server.url.endswith(f":{server.port}")

        await asyncio.wait_for(reconnected.wait(), timeout=10)
        info = await js.stream_info("DEVSTACK")
        assert info.state.messages == 1
        msg = await js.get_msg("DEVSTACK", ack.seq)
        assert msg.data == b"payload"
        # de-duplication state is recovered too: the same Nats-Msg-Id is not stored twice
        again = await js.publish("devstack.hello", b"payload", headers={"Nats-Msg-Id": "m-1"})
        assert again.duplicate
    finally:
        await nc.close()
        await asyncio.to_thread(server.stop)
    assert not pid_alive(second_pid)


def test_stop_then_start_keeps_url_and_data_dir(base_dir: Path) -> None:
    with NatsServer(base_dir / "nats", server_name="devstack-test") as server:
        url, pid = server.url, server.pid
        assert pid is not None
        server.restart()
        assert server.url == url
        assert server.pid != pid
        assert (base_dir / "nats" / "jetstream").is_dir()
        last = server.pid
    assert last is not None
    assert not pid_alive(last)
    assert not pid_alive(pid)

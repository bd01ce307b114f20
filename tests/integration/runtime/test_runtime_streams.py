"""Streams are bounded in size as well as age, as the contracts and the settings say, on a real
NATS server: provisioning creates them so and brings an existing stream to new bounds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy

from genbus.contracts import DEAD_LETTER_STREAM, GENERATIONS_STREAM
from genbus.contracts.topology import DISPATCHER_REQUESTED
from genbus.runtime.jetstream import provision
from genbus.runtime.nats_client import connect_nats
from genbus.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await connect_nats(nats_url)
    yield nc.jetstream()
    await nc.close()


async def _bounds(js: JetStreamContext, name: str) -> tuple[int | None, int | None, object]:
    config = (await js.stream_info(name)).config
    return config.max_bytes, config.max_msgs, config.discard


def test_the_contracts_bound_every_stream_in_bytes() -> None:
    for spec in (GENERATIONS_STREAM, DEAD_LETTER_STREAM):
        assert spec.max_bytes > 0
        assert spec.discard == "old"
    defaults = RuntimeSettings().streams()
    assert defaults == (GENERATIONS_STREAM, DEAD_LETTER_STREAM)


async def test_provisioning_applies_the_configured_bounds_and_updates_them(
    js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENBUS_STREAM_MAX_BYTES", str(64 * 1024 * 1024))
    monkeypatch.setenv("GENBUS_STREAM_MAX_MSGS", "100000")
    monkeypatch.setenv("GENBUS_DLQ_MAX_BYTES", str(8 * 1024 * 1024))
    await provision(js, (DISPATCHER_REQUESTED,), streams=RuntimeSettings().streams())
    assert await _bounds(js, GENERATIONS_STREAM.name) == (
        64 * 1024 * 1024,
        100000,
        DiscardPolicy.OLD,
    )
    assert await _bounds(js, DEAD_LETTER_STREAM.name) == (8 * 1024 * 1024, -1, DiscardPolicy.OLD)
    info = await js.stream_info(GENERATIONS_STREAM.name)
    assert info.config.max_age == GENERATIONS_STREAM.max_age_s

    # A replica started with other bounds brings the existing streams to them (create or update).
    monkeypatch.setenv("GENBUS_STREAM_MAX_BYTES", str(32 * 1024 * 1024))
    monkeypatch.setenv("GENBUS_DLQ_MAX_MSGS", "5000")
    await provision(js, (DISPATCHER_REQUESTED,), streams=RuntimeSettings().streams())
    assert await _bounds(js, GENERATIONS_STREAM.name) == (
        32 * 1024 * 1024,
        100000,
        DiscardPolicy.OLD,
    )
    assert await _bounds(js, DEAD_LETTER_STREAM.name) == (8 * 1024 * 1024, 5000, DiscardPolicy.OLD)


async def test_past_the_bound_the_oldest_messages_go_and_publishing_goes_on(
    js: JetStreamContext,
) -> None:
    events, dead_letters = RuntimeSettings().streams()
    small = (replace(events, max_msgs=3), dead_letters)
    await provision(js, (DISPATCHER_REQUESTED,), streams=small)
    for n in range(5):
        await js.publish(f"{events.subjects[0][:-1]}x.{n}", b"{}")  # never refused
    state = (await js.stream_info(events.name)).state
    assert (state.messages, state.first_seq, state.last_seq) == (3, 3, 5)

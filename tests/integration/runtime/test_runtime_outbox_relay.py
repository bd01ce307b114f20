"""The outbox relay on real Postgres and JetStream: a batch is published together and marked in
one statement; a row whose publish fails stays unpublished (its neighbours do not) and is sent
again on the next round; rows handed over by their writer are published from memory, and the
sweep leaves young rows to the relay they were handed to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import pytest
from nats.js.errors import NoStreamResponseError
from sqlalchemy import MetaData, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import (
    GENERATIONS_STREAM,
    REQUESTED,
    SERVICES,
)
from genbus.runtime.db import create_engine
from genbus.runtime.nats_client import connect_nats
from genbus.runtime.outbox import OutboxRelay, StagedRow, add_to_outbox, outbox_table
from genbus.runtime.publisher import EventPublisher, OutgoingMessage, encode_event
from tests.events import sample_requested
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SCHEMA = "relay_test"
metadata = MetaData()
OUTBOX = outbox_table(metadata, SCHEMA)


def _requested() -> OutgoingMessage:
    event = sample_requested()
    return encode_event(REQUESTED, event)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def _stage(engine: AsyncEngine, messages: list[OutgoingMessage]) -> None:
    async with engine.begin() as conn:
        for message in messages:
            await add_to_outbox(conn, OUTBOX, message)


async def _unpublished(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(OUTBOX.c.event_id).where(OUTBOX.c.published_at.is_(None)))
        return {str(r.event_id) for r in rows}


async def test_a_batch_is_published_together_and_a_failed_row_alone_is_retried(
    engine: AsyncEngine, nats_url: str
) -> None:
    nc = await connect_nats(nats_url)
    js = nc.jetstream()
    relay = OutboxRelay(engine, OUTBOX, EventPublisher(js, SERVICES["api"]), batch_size=50)
    try:
        before = (await js.stream_info(GENERATIONS_STREAM.name)).state.messages
        good = [_requested() for _ in range(20)]
        # No stream takes this subject: its publish fails (no responders).
        bad = OutgoingMessage("relay-test.nowhere", b"{}", {**good[0].headers})
        bad.headers["Nats-Msg-Id"] = str(uuid4())
        await _stage(engine, [*good[:10], bad, *good[10:]])

        with pytest.raises(NoStreamResponseError):
            await relay.relay_once()

        assert await _unpublished(engine) == {bad.headers["Nats-Msg-Id"]}
        info = await js.stream_info(GENERATIONS_STREAM.name)
        assert info.state.messages == before + len(good)
        # The next round sends only the failed row again.
        with pytest.raises(NoStreamResponseError):
            await relay.relay_once()
        assert await relay.pending() == 1
        assert (await js.stream_info(GENERATIONS_STREAM.name)).state.messages == before + 20

        # Once every publish succeeds, the whole batch is marked published.
        async with engine.begin() as conn:
            await conn.execute(OUTBOX.delete().where(OUTBOX.c.published_at.is_(None)))
        more = [_requested() for _ in range(30)]
        await _stage(engine, more)
        assert await relay.relay_once() == 30
        assert await _unpublished(engine) == set()
        info = await js.stream_info(GENERATIONS_STREAM.name)
        assert info.state.messages == before + 50
    finally:
        await nc.close()


async def _stage_rows(engine: AsyncEngine, messages: list[OutgoingMessage]) -> list[StagedRow]:
    async with engine.begin() as conn:
        rows = [await add_to_outbox(conn, OUTBOX, message) for message in messages]
    assert all(row is not None for row in rows)
    return [row for row in rows if row is not None]


async def test_rows_handed_over_are_published_at_once_and_the_sweep_leaves_young_rows_alone(
    engine: AsyncEngine, nats_url: str
) -> None:
    """A writer hands its committed rows to the relay: published from memory, no read of the
    outbox. A row nobody handed over waits for the sweep, which takes only rows older than
    its grace (younger ones belong to the relay their writer handed them to)."""
    nc = await connect_nats(nats_url)
    js = nc.jetstream()
    relay = OutboxRelay(
        engine, OUTBOX, EventPublisher(js, SERVICES["api"]), sweep_grace=timedelta(minutes=5)
    )
    running = asyncio.create_task(relay.run())
    try:
        before = (await js.stream_info(GENERATIONS_STREAM.name)).state.messages
        handed = await _stage_rows(engine, [_requested() for _ in range(3)])
        (orphan,) = await _stage_rows(engine, [_requested()])
        relay.hand_over(handed)
        await eventually(lambda: _unpublished(engine), lambda left: len(left) == 1)
        assert await _unpublished(engine) == {orphan.message.headers["Nats-Msg-Id"]}
        info = await js.stream_info(GENERATIONS_STREAM.name)
        assert info.state.messages == before + 3
        # Too young for a sweep with the grace; any sweep without one takes it.
        assert await relay.relay_once(older_than=timedelta(minutes=5)) == 0
        assert await relay.relay_once() == 1
        assert await _unpublished(engine) == set()
    finally:
        relay.stop()
        await running
        await nc.close()


async def test_a_handed_over_row_whose_publish_fails_is_left_to_the_sweep(
    engine: AsyncEngine, nats_url: str
) -> None:
    nc = await connect_nats(nats_url)
    relay = OutboxRelay(engine, OUTBOX, EventPublisher(nc.jetstream(), SERVICES["api"]))
    try:
        good = _requested()
        bad = OutgoingMessage("relay-test.nowhere", b"{}", {**good.headers})
        bad.headers["Nats-Msg-Id"] = str(uuid4())
        rows = await _stage_rows(engine, [good, bad])
        relay.hand_over(rows)
        with pytest.raises(NoStreamResponseError):
            await relay.publish_handed_over()
        # The good one is marked published; the failed one is still unpublished, and nothing
        # is held in memory for it any more: the sweep sends it again.
        assert await _unpublished(engine) == {bad.headers["Nats-Msg-Id"]}
        assert await relay.publish_handed_over() == 0
        with pytest.raises(NoStreamResponseError):
            await relay.relay_once()
        assert await relay.pending() == 1
    finally:
        await nc.close()


async def test_a_replayed_event_id_stages_nothing_to_hand_over(engine: AsyncEngine) -> None:
    message = _requested()
    (first,) = await _stage_rows(engine, [message])
    async with engine.begin() as conn:
        again = await add_to_outbox(conn, OUTBOX, message)
    assert again is None
    assert first.message.subject == message.subject
    assert first.message.headers["Nats-Msg-Id"] == message.headers["Nats-Msg-Id"]

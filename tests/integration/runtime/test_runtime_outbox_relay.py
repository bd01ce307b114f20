"""The outbox relay on real Postgres and JetStream: a batch is published together and marked in
one statement; a row whose publish fails stays unpublished (its neighbours do not) and is sent
again on the next round."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from genbus.runtime.outbox import OutboxRelay, add_to_outbox, outbox_table
from genbus.runtime.publisher import EventPublisher, OutgoingMessage, encode_event
from tests.events import sample_requested

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

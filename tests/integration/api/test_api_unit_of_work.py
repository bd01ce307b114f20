"""The unit of work: nothing is kept unless committed; events ride the same transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.__main__ import MIGRATIONS
from genbus.api.adapters.tables import daily_usage, generation_events, generations, outbox
from genbus.api.domain.events import generation_requested
from genbus.api.domain.model import Generation
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer.unit_of_work import SqlUnitOfWork
from genbus.contracts import REQUESTED, SERVICES, SUBMITTED, GenerationChanged
from genbus.runtime.db import create_engine
from genbus.runtime.migrations import upgrade_to_head
from genbus.runtime.outbox import StagedRow

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, database_url, "api")
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


class Wakes:
    """What a relay is handed after each commit that staged events."""

    def __init__(self) -> None:
        self.count = 0
        self.rows: list[StagedRow] = []

    def __call__(self, rows: Sequence[StagedRow]) -> None:
        self.count += 1
        self.rows.extend(rows)


def _generation() -> Generation:
    return Generation(
        id=uuid4(),
        user_id="u",
        operation_type="text_to_video",
        provider_id="sim",
        status=GenerationStatus.PENDING,
        params={"prompt": "p"},
        canonical_params={"prompt": "p"},
        inputs=[],
        canonical_inputs=[],
        priority=5,
        scheduled_at=None,
        deadline_at=NOW + timedelta(hours=1),
        reproducible_hash="0" * 64,
        name=None,
        metadata={},
        attempt=0,
        account_id=None,
        provider_job_id=None,
        asset=None,
        error=None,
        created_at=NOW,
        updated_at=NOW,
        submitted_at=None,
        completed_at=None,
    )


async def _counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        g = await conn.scalar(select(func.count()).select_from(generations))
        o = await conn.scalar(select(func.count()).select_from(outbox))
    return int(g or 0), int(o or 0)


async def _stage(uow: SqlUnitOfWork) -> Generation:
    generation = _generation()
    await uow.generations.add(generation)
    await uow.publish(REQUESTED, generation_requested(generation, NOW))
    return generation


async def test_without_commit_nothing_is_kept(engine: AsyncEngine) -> None:
    wakes = Wakes()
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"], wakes) as uow:
        await _stage(uow)
    assert await _counts(engine) == (0, 0)
    assert wakes.count == 0


async def test_an_error_rolls_back_row_and_event_together(engine: AsyncEngine) -> None:
    async def stage_then_fail() -> None:
        async with SqlUnitOfWork(engine, outbox, SERVICES["api"]) as uow:
            await _stage(uow)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await stage_then_fail()
    assert await _counts(engine) == (0, 0)


async def test_commit_keeps_both_and_wakes_the_relay(engine: AsyncEngine) -> None:
    wakes = Wakes()
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"], wakes) as uow:
        generation = await _stage(uow)
        await uow.commit()
    assert await _counts(engine) == (1, 1)
    assert wakes.count == 1
    (handed,) = wakes.rows  # the committed row, for the relay to publish from memory
    assert handed.message.subject == REQUESTED.subject(generation.provider_id)
    assert REQUESTED.model.model_validate_json(handed.message.payload).generation_id == (
        generation.id
    )
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"], wakes) as uow:
        assert await uow.generations.get(generation.id) == generation
        assert await uow.generations.get(generation.id, user_id="someone-else") is None
        await uow.commit()
    assert wakes.count == 1  # nothing staged, nothing to wake the relay for


async def test_the_api_cannot_stage_events_it_does_not_own(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"]) as uow:
        generation = await _stage(uow)
        with pytest.raises(PermissionError):
            await uow.publish(SUBMITTED, generation_requested(generation, NOW))


async def test_a_unit_of_work_is_single_use(engine: AsyncEngine) -> None:
    uow = SqlUnitOfWork(engine, outbox, SERVICES["api"])
    async with uow:
        pass
    with pytest.raises(RuntimeError, match="one transaction"):
        async with uow:
            pass


async def test_changes_recorded_together_get_one_row_each_in_order(engine: AsyncEngine) -> None:
    notified: list[GenerationChanged] = []

    async def after_commit(changes: Sequence[GenerationChanged]) -> None:
        notified.extend(changes)

    staged = [_generation() for _ in range(5)]
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"], after_commit=after_commit) as uow:
        for generation in staged:
            await uow.generations.add(generation)
        # Several users in one transaction: each row still carries its own generation.
        changed = [replace(g, user_id=f"u{i % 2}") for i, g in enumerate(staged)]
        await uow.record_changes(changed)
        await uow.commit()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(generation_events.c.id, generation_events.c.generation_id).order_by(
                    generation_events.c.id
                )
            )
        ).all()
    assert [r.generation_id for r in rows] == [g.id for g in changed]
    assert [(n.generation_id, n.event_seq, n.user_id) for n in notified] == [
        (r.generation_id, r.id, g.user_id) for r, g in zip(rows, changed, strict=True)
    ]


async def test_a_read_only_unit_of_work_reads_without_a_transaction(engine: AsyncEngine) -> None:
    """Each statement on its own (so no BEGIN and ROLLBACK around a one-statement read): two
    statements see two transaction start times; it commits and stages nothing."""
    written = _generation()
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"]) as uow:
        await uow.generations.add(written)
        await uow.commit()

    reader = SqlUnitOfWork(engine, outbox, SERVICES["api"], read_only=True)
    async with reader as uow:
        assert await uow.generations.get(written.id) == written
        conn = uow.generations._conn
        first = await conn.scalar(select(func.now()))
        second = await conn.scalar(select(func.now()))
        assert first != second
        with pytest.raises(RuntimeError, match="writes nothing"):
            await uow.record_changes([written])
        with pytest.raises(RuntimeError, match="writes nothing"):
            await uow.publish(REQUESTED, generation_requested(written, NOW))
        with pytest.raises(RuntimeError, match="nothing to commit"):
            await uow.commit()
    # Its pooled connection went back as the others do: the next writer's transaction works.
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"]) as uow:
        assert await uow.generations.get(written.id) == written
        first = await uow.generations._conn.scalar(select(func.now()))
        second = await uow.generations._conn.scalar(select(func.now()))
        assert first == second
    assert await _counts(engine) == (1, 0)


async def _rows(engine: AsyncEngine, generation: Generation) -> tuple[int, int, int, int]:
    """How many rows of `generation` (its own, outbox, change log) and its user's count today."""
    async with engine.connect() as conn:
        own = await conn.scalar(
            select(func.count()).select_from(generations).where(generations.c.id == generation.id)
        )
        events = await conn.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.payload.contains(str(generation.id).encode()))
        )
        logged = await conn.scalar(
            select(func.count())
            .select_from(generation_events)
            .where(generation_events.c.generation_id == generation.id)
        )
        counted = await conn.scalar(
            select(daily_usage.c.generations).where(
                daily_usage.c.user_id == generation.user_id, daily_usage.c.day == NOW.date()
            )
        )
    return int(own or 0), int(events or 0), int(logged or 0), int(counted or 0)


async def _add(uow: SqlUnitOfWork, generation: Generation, quota: int | None) -> int | None:
    return await uow.add_generation(
        generation, generation_requested(generation, NOW), day=NOW.date(), quota=quota
    )


async def test_adding_a_generation_writes_all_of_it_or_nothing(engine: AsyncEngine) -> None:
    """The generation, its event, its change-log row and its count in the day's quota: one
    statement, in the transaction (a rollback undoes all four) or refused whole by the quota."""
    user = f"quota-{uuid4()}"
    first, second, third = (replace(_generation(), user_id=user) for _ in range(3))
    wakes = Wakes()
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"], wakes) as uow:
        assert await _add(uow, first, quota=2) is not None
    assert await _rows(engine, first) == (0, 0, 0, 0)  # not committed: nothing, not counted
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"], wakes) as uow:
        assert await _add(uow, first, quota=2) is not None
        await uow.commit()
    assert await _rows(engine, first) == (1, 1, 1, 1)
    (handed,) = wakes.rows
    assert REQUESTED.model.model_validate_json(handed.message.payload).generation_id == first.id
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"], wakes) as uow:
        assert await _add(uow, second, quota=2) is not None
        assert await _add(uow, third, quota=2) is None  # the day's 3rd, past a quota of 2
        await uow.commit()
    assert await _rows(engine, second) == (1, 1, 1, 2)
    assert await _rows(engine, third) == (0, 0, 0, 2)


async def test_a_single_statement_unit_of_work_adds_one_generation_without_a_transaction(
    engine: AsyncEngine,
) -> None:
    generation = replace(_generation(), user_id=f"single-{uuid4()}")
    wakes = Wakes()
    async with SqlUnitOfWork(engine, outbox, SERVICES["api"], wakes, single_statement=True) as uow:
        conn = uow.generations._conn
        # No transaction: two statements see two transaction start times.
        assert await conn.scalar(select(func.now())) != await conn.scalar(select(func.now()))
        assert await _add(uow, generation, quota=None) is not None
        # Committed by the statement itself, before `commit()` hands the event over.
        assert await _rows(engine, generation) == (1, 1, 1, 1)
        assert wakes.rows == []
        with pytest.raises(RuntimeError, match="cannot add"):
            await _add(uow, replace(_generation(), user_id=generation.user_id), quota=None)
        with pytest.raises(RuntimeError, match="writes only"):
            await uow.publish(REQUESTED, generation_requested(generation, NOW))
        with pytest.raises(RuntimeError, match="writes only"):
            await uow.record_changes([generation])
        await uow.commit()
    assert len(wakes.rows) == 1
    assert await _rows(engine, generation) == (1, 1, 1, 1)

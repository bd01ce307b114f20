"""Reading, cancelling and deleting generations on the fake unit of work."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Self
from uuid import UUID

import pytest

from genbus.api.domain.errors import (
    GenerationNotFound,
    GenerationNotTerminal,
    GenerationTerminal,
)
from genbus.api.domain.listing import GenerationFilter
from genbus.api.domain.model import Generation
from genbus.api.domain.status import TERMINAL, GenerationStatus
from genbus.api.service_layer.generations import (
    USER_CANCEL_REASON,
    cancel_generation,
    delete_generation,
    get_generation,
    list_generations,
)
from genbus.contracts import CANCEL_REQUESTED
from tests.unit.api.fake_generations import FakeGenerationRepository
from tests.unit.api.fakes import NOW, OTHER_USER, USER, FakeDatabase, FakeUnitOfWork, generation

pytestmark = pytest.mark.service_layer


async def test_get_finds_only_the_owners_generation_or_any_for_an_admin() -> None:
    db = FakeDatabase()
    g = generation()
    db.add(g)
    assert await get_generation(g.id, USER, db.uow()) == g
    assert await get_generation(g.id, None, db.uow()) == g
    with pytest.raises(GenerationNotFound):
        await get_generation(g.id, OTHER_USER, db.uow())


async def test_list_pages_the_users_generations_newest_first() -> None:
    db = FakeDatabase()
    mine = [generation(created_at=NOW - timedelta(minutes=i)) for i in range(5)]
    db.add(*mine, generation(user_id=OTHER_USER))
    seen = []
    after = None
    while True:
        page = await list_generations(USER, db.uow(), GenerationFilter(), after=after, limit=2)
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == mine


async def test_list_filters_by_status() -> None:
    db = FakeDatabase()
    done = generation(GenerationStatus.COMPLETED)
    db.add(generation(), done)
    where = GenerationFilter(statuses=frozenset({GenerationStatus.COMPLETED}))
    page = await list_generations(USER, db.uow(), where, after=None, limit=10)
    assert page.items == [done]


async def test_cancel_of_a_pending_generation_is_at_once_and_tells_the_dispatcher() -> None:
    db = FakeDatabase()
    g = generation()
    db.add(g)

    result = await cancel_generation(g.id, USER, db.uow(), now=NOW)

    assert result.cancelled_at_once
    assert result.generation.status is GenerationStatus.CANCELLED
    assert result.generation.completed_at == NOW
    assert db.generations[g.id] == result.generation
    [event] = db.events_of(CANCEL_REQUESTED)
    assert (event.generation_id, event.reason) == (g.id, USER_CANCEL_REASON)
    assert db.changes_of(g.id) == [("generation", "cancelled")]


async def test_cancel_of_a_processing_generation_only_asks_the_dispatcher() -> None:
    db = FakeDatabase()
    g = generation(GenerationStatus.PROCESSING, attempt=1)
    db.add(g)

    result = await cancel_generation(g.id, USER, db.uow(), now=NOW)

    assert not result.cancelled_at_once
    assert result.generation == g
    assert db.generations[g.id] == g
    assert [e.generation_id for e in db.events_of(CANCEL_REQUESTED)] == [g.id]
    assert db.change_log == []


@pytest.mark.parametrize("status", sorted(TERMINAL))
async def test_cancel_of_an_ended_generation_is_refused(status: GenerationStatus) -> None:
    db = FakeDatabase()
    g = generation(status)
    db.add(g)
    with pytest.raises(GenerationTerminal):
        await cancel_generation(g.id, USER, db.uow(), now=NOW)
    assert db.generations[g.id] == g
    assert db.outbox == []
    assert db.commits == 0


async def test_cancel_of_another_users_generation_is_not_found() -> None:
    db = FakeDatabase()
    g = generation()
    db.add(g)
    with pytest.raises(GenerationNotFound):
        await cancel_generation(g.id, OTHER_USER, db.uow(), now=NOW)
    assert db.generations[g.id].status is GenerationStatus.PENDING
    assert db.outbox == []


@pytest.mark.parametrize("status", sorted(TERMINAL))
async def test_delete_of_an_ended_generation_drops_it_its_keys_and_its_history(
    status: GenerationStatus,
) -> None:
    db = FakeDatabase()
    g = generation(GenerationStatus.PENDING)
    db.add(g)
    async with db.uow() as uow:
        await uow.idempotency.claim(
            user_id=USER, key="k", request_hash="h", generation_id=g.id, at=NOW, expired_before=NOW
        )
        await uow.record_changes([g])
        await uow.commit()
    db.add(generation(status, id=g.id))
    kept = generation(GenerationStatus.COMPLETED)
    db.add(kept)

    deleted = await delete_generation(g.id, USER, db.uow(), now=NOW)

    assert deleted.status is status
    assert list(db.generations) == [kept.id]
    assert db.tables.idempotency_keys == {}
    assert db.changes_of(g.id) == [("generation.deleted", str(status))]
    assert db.change_log[-1].payload == {"id": str(g.id), "deleted_at": NOW.isoformat()}
    assert db.outbox == []


@pytest.mark.parametrize("status", [GenerationStatus.PENDING, GenerationStatus.PROCESSING])
async def test_an_open_generation_cannot_be_deleted(status: GenerationStatus) -> None:
    db = FakeDatabase()
    g = generation(status)
    db.add(g)
    with pytest.raises(GenerationNotTerminal):
        await delete_generation(g.id, USER, db.uow(), now=NOW)
    assert db.generations == {g.id: g}
    assert db.change_log == []


async def test_delete_of_another_users_generation_is_not_found() -> None:
    db = FakeDatabase()
    g = generation(GenerationStatus.COMPLETED)
    db.add(g)
    with pytest.raises(GenerationNotFound):
        await delete_generation(g.id, OTHER_USER, db.uow(), now=NOW)
    assert db.generations == {g.id: g}


class _SubmittedMeanwhile(FakeGenerationRepository):
    """The submission commits between the cancel's read and its compare-and-set."""

    async def cancel_at_once(self, generation_id: UUID, *, at: datetime) -> Generation | None:
        await self.record_submission(
            generation_id, attempt=1, account_id="a", provider_job_id="pj", submitted_at=at, now=at
        )
        return await super().cancel_at_once(generation_id, at=at)


class _RacingUnitOfWork(FakeUnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.generations = _SubmittedMeanwhile(self._work)
        return self


async def test_a_generation_submitted_during_its_cancel_is_cancelled_through_the_dispatcher() -> (
    None
):
    db = FakeDatabase()
    g = generation()
    db.add(g)

    result = await cancel_generation(g.id, USER, _RacingUnitOfWork(db), now=NOW)

    assert not result.cancelled_at_once
    assert result.generation.status is GenerationStatus.PROCESSING
    assert db.generations[g.id].status is GenerationStatus.PROCESSING
    assert [e.generation_id for e in db.events_of(CANCEL_REQUESTED)] == [g.id]
    assert db.changes_of(g.id) == []

"""The fake unit of work keeps the promises of the SQL one that the service-layer tests rely on:
the same repository methods, nothing before commit, events and change-log rows with the commit."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from genbus.api.adapters.api_keys import ApiKeyRepository
from genbus.api.adapters.change_log import ChangeLogRepository
from genbus.api.adapters.idempotency import IdempotencyRepository
from genbus.api.adapters.repository import GenerationRepository
from genbus.api.adapters.usage import UsageRepository
from genbus.api.domain.events import cancel_requested, generation_requested
from genbus.api.service_layer.unit_of_work import SqlUnitOfWork, UnitOfWork
from genbus.contracts import (
    CANCEL_REQUESTED,
    COMPLETED,
    REQUESTED,
    CompletionStatus,
    GenerationCompleted,
)
from tests.unit.api.fake_generations import FakeGenerationRepository
from tests.unit.api.fake_repositories import (
    FakeApiKeyRepository,
    FakeChangeLogRepository,
    FakeIdempotencyRepository,
)
from tests.unit.api.fake_usage import FakeUsageRepository
from tests.unit.api.fakes import NOW, FakeDatabase, FakeUnitOfWork, generation

pytestmark = pytest.mark.service_layer

PAIRS: list[tuple[type[Any], type[Any]]] = [
    (GenerationRepository, FakeGenerationRepository),
    (IdempotencyRepository, FakeIdempotencyRepository),
    (ChangeLogRepository, FakeChangeLogRepository),
    (ApiKeyRepository, FakeApiKeyRepository),
    (UsageRepository, FakeUsageRepository),
    (SqlUnitOfWork, FakeUnitOfWork),
]


def _public_methods(cls: type[Any]) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and (not name.startswith("_") or name in {"__aenter__", "__aexit__"})
    }


@pytest.mark.parametrize(("real", "fake"), PAIRS, ids=[r.__name__ for r, _ in PAIRS])
def test_the_fake_has_every_public_method_of_the_real_one_with_its_signature(
    real: type[Any], fake: type[Any]
) -> None:
    # Defined by the fake itself (not inherited from the SQL class), under the same signature.
    assert _public_methods(fake) == _public_methods(real)


def test_the_fake_unit_of_work_has_every_member_of_the_protocol() -> None:
    protocol = set(UnitOfWork.__annotations__) | {
        name for name in vars(UnitOfWork) if not name.startswith("_")
    }
    assert protocol <= set(dir(FakeUnitOfWork)) | set(FakeUnitOfWork.__annotations__)


async def test_nothing_is_kept_without_commit() -> None:
    db = FakeDatabase()
    pending = generation()
    async with db.uow() as uow:
        await uow.generations.add(pending)
        await uow.publish(REQUESTED, generation_requested(pending, NOW))
        await uow.record_changes([pending])

    assert db.generations == {}
    assert db.outbox == []
    assert db.change_log == []
    assert db.notified == []
    assert (db.commits, db.rollbacks) == (0, 1)


async def test_a_commit_keeps_rows_events_and_change_log_together() -> None:
    db = FakeDatabase()
    pending = generation()
    async with db.uow() as uow:
        await uow.generations.add(pending)
        await uow.publish(REQUESTED, generation_requested(pending, NOW))
        await uow.record_changes([pending])
        await uow.commit()

    assert db.generations == {pending.id: pending}
    assert [event.generation_id for event in db.events_of(REQUESTED)] == [pending.id]
    assert db.changes_of(pending.id) == [("generation", "pending")]
    assert [[c.generation_id for c in batch] for batch in db.notified] == [[pending.id]]
    assert db.notified[0][0].event_seq == db.change_log[0].seq
    assert (db.commits, db.rollbacks) == (1, 0)


async def test_the_api_may_publish_only_what_its_topology_says() -> None:
    db = FakeDatabase()
    done = generation()
    completed = GenerationCompleted.following(
        generation_requested(done, NOW), status=CompletionStatus.CANCELLED, attempt=0
    )
    async with db.uow() as uow:
        await uow.publish(CANCEL_REQUESTED, cancel_requested(done, "x", NOW))
        with pytest.raises(PermissionError):
            await uow.publish(COMPLETED, completed)


async def test_a_unit_of_work_is_used_once_and_two_may_not_overlap_their_commits() -> None:
    db = FakeDatabase()
    uow = db.uow()
    async with uow:
        pass
    with pytest.raises(RuntimeError):
        async with uow:
            pass

    first, second = db.uow(), db.uow()
    async with first, second:
        await first.generations.add(generation())
        await first.commit()
        with pytest.raises(AssertionError):
            await second.commit()


async def test_change_log_ids_are_not_reused_after_a_rollback() -> None:
    db = FakeDatabase()
    one, two = generation(), generation()
    async with db.uow() as uow:
        await uow.record_changes([one])
    async with db.uow() as uow:
        await uow.record_changes([two])
        await uow.commit()
    assert [r.seq for r in db.change_log] == [2]

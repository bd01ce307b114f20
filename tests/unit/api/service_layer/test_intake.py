"""Creating generations on the fake unit of work: a new request, an idempotent replay, a retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from genbus.api.domain.errors import (
    GenerationNotFound,
    GenerationNotRetryable,
    IdempotencyKeyReused,
    InvalidRequest,
    UnsupportedProvider,
)
from genbus.api.domain.idempotency import IdempotencyClaim
from genbus.api.domain.requests import GenerationDraft, InputSpec
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer.intake import (
    Created,
    create_generation,
    idempotency_key_used,
    retry_generation,
)
from genbus.contracts import REQUESTED
from tests.unit.api.fakes import LIMITS, NOW, OTHER_USER, USER, Catalog, FakeDatabase, generation

pytestmark = pytest.mark.service_layer

DRAFT = GenerationDraft(operation_type="text_to_video", provider_id="sim", params={"prompt": "p"})
KEY = IdempotencyClaim(key="k-1", fingerprint="f" * 64)


async def _create(db: FakeDatabase, draft: GenerationDraft = DRAFT, **kwargs: Any) -> Created:
    kwargs.setdefault("now", NOW)
    return await create_generation(
        draft, kwargs.pop("user_id", USER), db.uow(), catalog=Catalog(), limits=LIMITS, **kwargs
    )


async def test_create_commits_the_generation_its_requested_event_and_its_change_row() -> None:
    db = FakeDatabase()
    created = await _create(db)

    g = created.generation
    assert not created.replayed
    assert db.generations == {g.id: g}
    assert g.status is GenerationStatus.PENDING
    assert g.user_id == USER
    assert g.deadline_at == NOW + LIMITS.default_deadline
    [event] = db.events_of(REQUESTED)
    assert (event.generation_id, event.user_id, event.provider_id) == (g.id, USER, "sim")
    assert event.params == g.canonical_params
    assert db.changes_of(g.id) == [("generation", "pending")]
    assert [[c.generation_id for c in batch] for batch in db.notified] == [[g.id]]


@pytest.mark.parametrize(
    ("draft", "error", "field"),
    [
        (GenerationDraft("text_to_video", "nope", {"prompt": "p"}), UnsupportedProvider, None),
        (GenerationDraft("text_to_video", "sim", {"prompt": "p"}, priority=11), None, "priority"),
        (
            GenerationDraft("text_to_video", "sim", {"prompt": "p"}, deadline=NOW),
            None,
            "deadline",
        ),
    ],
    ids=["unknown provider", "priority out of range", "deadline in the past"],
)
@pytest.mark.parametrize("with_key", [False, True], ids=["no key", "with key"])
async def test_an_invalid_request_creates_nothing(
    draft: GenerationDraft, error: type[InvalidRequest] | None, field: str | None, with_key: bool
) -> None:
    db = FakeDatabase()
    with pytest.raises(error or InvalidRequest) as raised:
        await _create(db, draft, idempotency=KEY if with_key else None)

    if field is not None:
        assert field in [e.field for e in raised.value.errors]
    assert db.generations == {}
    assert db.outbox == []
    assert db.change_log == []
    assert db.tables.idempotency_keys == {}
    assert db.commits == 0


async def test_an_input_naming_an_unfinished_generation_is_refused() -> None:
    db = FakeDatabase()
    source = generation(GenerationStatus.PROCESSING)
    db.add(source)
    draft = GenerationDraft(
        "image_to_video",
        "sim",
        {"prompt": "p"},
        inputs=[InputSpec(role="image", generation_id=source.id)],
    )
    with pytest.raises(InvalidRequest) as raised:
        await _create(db, draft)
    assert [e.code for e in raised.value.errors] == ["generation_not_completed"]
    assert list(db.generations) == [source.id]


async def test_the_same_key_and_body_replays_the_first_generation() -> None:
    db = FakeDatabase()
    first = await _create(db, idempotency=KEY)
    again = await _create(db, idempotency=KEY, now=NOW + timedelta(minutes=1))

    assert again == Created(first.generation, replayed=True)
    assert list(db.generations) == [first.generation.id]
    assert len(db.events_of(REQUESTED)) == 1
    assert len(db.change_log) == 1
    assert await idempotency_key_used(KEY, USER, db.uow(), limits=LIMITS, now=NOW)
    assert not await idempotency_key_used(KEY, OTHER_USER, db.uow(), limits=LIMITS, now=NOW)


async def test_the_same_key_with_another_body_is_refused() -> None:
    db = FakeDatabase()
    await _create(db, idempotency=KEY)
    other = IdempotencyClaim(key=KEY.key, fingerprint="0" * 64)
    with pytest.raises(IdempotencyKeyReused):
        await _create(db, idempotency=other)
    assert len(db.generations) == 1
    assert len(db.events_of(REQUESTED)) == 1


async def test_a_key_is_per_user_and_forgotten_after_its_lifetime() -> None:
    db = FakeDatabase()
    first = await _create(db, idempotency=KEY)
    theirs = await _create(db, idempotency=KEY, user_id=OTHER_USER)
    later = await _create(db, idempotency=KEY, now=NOW + LIMITS.idempotency_ttl + timedelta(days=1))

    assert not theirs.replayed
    assert not later.replayed
    assert len({first.generation.id, theirs.generation.id, later.generation.id}) == 3
    assert len(db.events_of(REQUESTED)) == 3


@pytest.mark.parametrize("status", [GenerationStatus.FAILED, GenerationStatus.CANCELLED])
async def test_retry_creates_a_new_generation_with_the_same_request_linked_to_the_first(
    status: GenerationStatus,
) -> None:
    db = FakeDatabase()
    ended = generation(status, scheduled_at=NOW - timedelta(hours=2), priority=7)
    db.add(ended)

    retried = await retry_generation(
        ended.id, USER, db.uow(), catalog=Catalog(), limits=LIMITS, now=NOW
    )

    g = retried.generation
    assert g.id != ended.id
    assert g.parent_generation_id == ended.id
    assert (g.status, g.params, g.priority) == (GenerationStatus.PENDING, ended.params, 7)
    assert g.scheduled_at is None
    assert g.deadline_at == NOW + LIMITS.default_deadline
    assert db.generations[ended.id] == ended
    assert [e.generation_id for e in db.events_of(REQUESTED)] == [g.id]
    assert db.changes_of(g.id) == [("generation", "pending")]


@pytest.mark.parametrize(
    "status", [GenerationStatus.PENDING, GenerationStatus.PROCESSING, GenerationStatus.COMPLETED]
)
async def test_only_an_ended_unsuccessful_generation_can_be_retried(
    status: GenerationStatus,
) -> None:
    db = FakeDatabase()
    g = generation(status)
    db.add(g)
    with pytest.raises(GenerationNotRetryable):
        await retry_generation(g.id, USER, db.uow(), catalog=Catalog(), limits=LIMITS, now=NOW)
    assert list(db.generations) == [g.id]
    assert db.outbox == []


async def test_another_users_generation_cannot_be_retried() -> None:
    db = FakeDatabase()
    g = generation(GenerationStatus.FAILED)
    db.add(g)
    with pytest.raises(GenerationNotFound):
        await retry_generation(
            g.id, OTHER_USER, db.uow(), catalog=Catalog(), limits=LIMITS, now=NOW
        )
    assert db.outbox == []


async def test_a_retry_with_a_used_key_replays_the_first_retry() -> None:
    db = FakeDatabase()
    g = generation(GenerationStatus.FAILED)
    db.add(g)
    first = await retry_generation(
        g.id, USER, db.uow(), catalog=Catalog(), limits=LIMITS, now=NOW, idempotency=KEY
    )
    again = await retry_generation(
        g.id, USER, db.uow(), catalog=Catalog(), limits=LIMITS, now=NOW, idempotency=KEY
    )
    assert again == Created(first.generation, replayed=True)
    assert len(db.events_of(REQUESTED)) == 1

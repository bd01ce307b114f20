"""The projection of submitted and completed events into generations and their change log, on
the fake unit of work."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genbus.api.domain.errors import GenerationNotFound
from genbus.api.domain.events import generation_requested
from genbus.api.domain.model import Generation
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer.generations import delete_generation
from genbus.api.service_layer.handlers import (
    on_generation_completed,
    on_generation_submitted,
    on_generations_completed,
    on_generations_submitted,
)
from genbus.contracts import (
    DEADLINE_EXCEEDED,
    Asset,
    CompletionStatus,
    GenerationCompleted,
    GenerationSubmitted,
)
from tests.unit.api.fakes import NOW, USER, FakeDatabase, generation

pytestmark = pytest.mark.service_layer

SUBMITTED_AT = NOW - timedelta(seconds=30)
DONE_AT = NOW - timedelta(seconds=10)
ASSET = Asset.model_validate({"url": "https://cdn.test/a.mp4", "media_type": "video/mp4"})


def _submitted(g: Generation, attempt: int = 1, job: str = "pj-1") -> GenerationSubmitted:
    return GenerationSubmitted.following(
        generation_requested(g, g.created_at),
        account_id="acc-1",
        provider_job_id=job,
        attempt=attempt,
        occurred_at=SUBMITTED_AT,
    )


def _completed(
    g: Generation, status: CompletionStatus = CompletionStatus.COMPLETED, attempt: int = 1
) -> GenerationCompleted:
    return GenerationCompleted.following(
        generation_requested(g, g.created_at),
        status=status,
        attempt=attempt,
        asset=ASSET if status is CompletionStatus.COMPLETED else None,
        error=DEADLINE_EXCEEDED if status is CompletionStatus.FAILED else None,
        account_id="acc-1",
        provider_job_id="pj-1",
        occurred_at=DONE_AT,
    )


def _with_pending() -> tuple[FakeDatabase, Generation]:
    db = FakeDatabase()
    g = generation()
    db.add(g)
    return db, g


async def test_submitted_then_completed() -> None:
    db, g = _with_pending()

    running = await on_generation_submitted(_submitted(g), db.uow(), now=NOW)
    assert running is not None
    assert (running.status, running.attempt, running.provider_job_id) == (
        GenerationStatus.PROCESSING,
        1,
        "pj-1",
    )
    assert running.submitted_at == SUBMITTED_AT

    done = await on_generation_completed(_completed(g), db.uow(), now=NOW)
    assert done is not None
    assert (done.status, done.asset, done.completed_at) == (
        GenerationStatus.COMPLETED,
        ASSET,
        DONE_AT,
    )
    assert done.submitted_at == SUBMITTED_AT
    assert db.generations[g.id] == done
    assert db.changes_of(g.id) == [("generation", "processing"), ("generation", "completed")]
    assert db.outbox == []


async def test_completed_before_submitted_keeps_the_outcome_and_fills_in_the_submission() -> None:
    db, g = _with_pending()

    done = await on_generation_completed(_completed(g), db.uow(), now=NOW)
    assert done is not None
    assert done.status is GenerationStatus.COMPLETED
    assert done.submitted_at is None

    late = await on_generation_submitted(_submitted(g), db.uow(), now=NOW)
    assert late is not None
    assert (late.status, late.asset, late.submitted_at) == (
        GenerationStatus.COMPLETED,
        ASSET,
        SUBMITTED_AT,
    )
    assert db.changes_of(g.id) == [("generation", "completed"), ("generation", "completed")]


async def test_a_redelivered_event_changes_nothing() -> None:
    db, g = _with_pending()
    await on_generation_submitted(_submitted(g), db.uow(), now=NOW)
    await on_generation_completed(_completed(g), db.uow(), now=NOW)
    before = dict(db.generations), list(db.change_log)

    assert await on_generation_submitted(_submitted(g), db.uow(), now=NOW) is None
    assert await on_generation_completed(_completed(g), db.uow(), now=NOW) is None

    assert (dict(db.generations), list(db.change_log)) == before


async def test_the_first_terminal_state_wins() -> None:
    db, g = _with_pending()
    await on_generation_completed(_completed(g, CompletionStatus.CANCELLED), db.uow(), now=NOW)
    assert await on_generation_completed(_completed(g), db.uow(), now=NOW) is None
    assert db.generations[g.id].status is GenerationStatus.CANCELLED
    assert db.generations[g.id].asset is None


async def test_a_stale_submission_of_an_earlier_attempt_is_ignored() -> None:
    db, g = _with_pending()
    await on_generation_submitted(_submitted(g, attempt=2, job="pj-2"), db.uow(), now=NOW)

    assert await on_generation_submitted(_submitted(g, attempt=1), db.uow(), now=NOW) is None
    assert db.generations[g.id].provider_job_id == "pj-2"
    assert db.generations[g.id].attempt == 2

    # A later attempt replaces the earlier one's details.
    later = await on_generation_submitted(_submitted(g, attempt=3, job="pj-3"), db.uow(), now=NOW)
    assert later is not None
    assert (later.attempt, later.provider_job_id) == (3, "pj-3")


async def test_an_event_for_an_unknown_generation_is_refused_and_rolled_back() -> None:
    db, g = _with_pending()
    stranger = generation()
    with pytest.raises(GenerationNotFound):
        await on_generations_submitted([_submitted(g), _submitted(stranger)], db.uow(), now=NOW)
    assert db.generations[g.id] == g
    assert db.change_log == []
    assert db.commits == 0


async def test_an_event_for_a_deleted_generation_is_ignored() -> None:
    db, g = _with_pending()
    await on_generation_completed(_completed(g, CompletionStatus.FAILED), db.uow(), now=NOW)
    await delete_generation(g.id, USER, db.uow(), now=NOW)

    assert await on_generation_submitted(_submitted(g), db.uow(), now=NOW) is None
    assert g.id not in db.generations


async def test_a_batch_is_one_transaction_returning_only_what_changed() -> None:
    db = FakeDatabase()
    a, b = generation(), generation(GenerationStatus.CANCELLED)
    db.add(a, b)
    commits = db.commits

    changed = await on_generations_completed([_completed(a), _completed(b)], db.uow(), now=NOW)

    assert [c.id for c in changed] == [a.id]
    assert db.commits == commits + 1
    assert db.generations[b.id] == b
    assert [[c.generation_id for c in batch] for batch in db.notified] == [[a.id]]

"""Releasing a slot when a generation ends (once, whatever the deliveries), and the reconciler's
sweeps of jobs past their deadline, on a fake unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from genbus.contracts import (
    ACCOUNT_CREDENTIALS_UNREADABLE,
    COMPLETED,
    DEADLINE_EXCEEDED,
    Asset,
    CompletionStatus,
    ErrorInfo,
    GenerationCompleted,
)
from genbus.dispatcher.domain.model import JobState
from genbus.dispatcher.service_layer import handlers, reconciler
from genbus.dispatcher.service_layer.submission import submit_claimed
from genbus.providers import SubmitOutcomeUnknown
from tests.unit.dispatcher.fakes import (
    ACCOUNT,
    OPERATION,
    PROVIDER,
    SAFE,
    UNSAFE,
    FakeAdapter,
    World,
    make_world,
    requested,
    result,
)

pytestmark = pytest.mark.service_layer


def _ended(
    generation_id: UUID, status: CompletionStatus, error: ErrorInfo | None = None
) -> GenerationCompleted:
    return GenerationCompleted(
        event_id=uuid4(),
        occurred_at=datetime.now(UTC),
        generation_id=generation_id,
        user_id="user-1",
        provider_id=PROVIDER,
        operation_type=OPERATION,
        status=status,
        asset=(
            Asset(url="https://cdn.test/out.mp4", media_type="video/mp4")
            if status is CompletionStatus.COMPLETED
            else None
        ),
        error=error,
        attempt=1,
        account_id=ACCOUNT,
        provider_job_id="pj-1",
    )


async def _submitted_jobs(world: World, count: int) -> list[UUID]:
    """Claim and submit `count` queued jobs; their ids in claim order."""
    ids = []
    for _ in range(count):
        held = await world.claim()
        await submit_claimed(world.deps, held)
        assert world.store.job(held.claim.generation_id).state is JobState.SUBMITTED
        ids.append(held.claim.generation_id)
    return ids


async def test_a_completed_generation_releases_its_slot_once_whatever_the_deliveries() -> None:
    world = make_world(FakeAdapter([result("pj-1"), result("pj-2")], guarantees=SAFE))
    await world.queue()
    [gid] = await _submitted_jobs(world, 1)
    assert world.store.busy() == 1
    events_before = list(world.store.events)
    world.deps.wake.clear()

    done = _ended(gid, CompletionStatus.COMPLETED)
    await _complete(world, [done])

    job = world.store.job(gid)
    assert job.state is JobState.COMPLETED
    assert job.finished_at is not None
    assert world.store.busy() == 0
    assert world.deps.wake.is_set()  # the scheduler reuses the slot at once
    finished_at = job.finished_at

    # A redelivery, and a late contradicting outcome: the first terminal state wins.
    world.deps.wake.clear()
    late = _ended(gid, CompletionStatus.FAILED, ErrorInfo(code="provider_failed"))
    await _complete(world, [done, late])

    job = world.store.job(gid)
    assert job.state is JobState.COMPLETED
    assert job.finished_at == finished_at
    assert job.last_error is None
    assert not world.deps.wake.is_set()
    assert world.store.events == events_before  # the dispatcher announces nothing here
    # The one slot of the account was released exactly once: one new job fits, not two.
    await world.queue()
    await world.queue()
    await _submitted_jobs(world, 1)
    async with world.store.uow() as uow:
        assert await uow.jobs.claim_next("replica-a", 30) is None


async def test_completions_of_several_jobs_are_released_in_one_transaction() -> None:
    world = make_world(FakeAdapter([result("pj-1"), result("pj-2")], guarantees=SAFE))
    world.store.account().max_concurrent = 2
    await world.queue()
    await world.queue()
    ids = await _submitted_jobs(world, 2)
    commits = world.store.commits

    await _complete(
        world,
        [
            _ended(ids[0], CompletionStatus.CANCELLED),
            _ended(ids[1], CompletionStatus.FAILED, ErrorInfo(code="provider_failed")),
        ],
    )

    assert world.store.commits == commits + 1
    assert world.store.job(ids[0]).state is JobState.CANCELLED
    assert world.store.job(ids[1]).state is JobState.FAILED
    assert world.store.job(ids[1]).last_error == {
        "code": "provider_failed",
        "message": "",
        "retryable": False,
    }
    assert world.store.busy() == 0


async def test_submitted_jobs_past_deadline_and_grace_fail_deadline_exceeded() -> None:
    world = make_world(
        FakeAdapter([result("pj-late"), result("pj-recent")], guarantees=SAFE),
        submitted_deadline_grace_s=60,
    )
    world.store.account().max_concurrent = 2
    late = await world.queue()
    recent = await world.queue()
    await _submitted_jobs(world, 2)
    # The deadlines pass while the jobs run at the provider (a job past it is never claimed).
    now = world.store.now()
    world.store.job(late.generation_id).deadline_at = now - timedelta(seconds=120)
    world.store.job(recent.generation_id).deadline_at = now - timedelta(seconds=30)
    assert world.store.job(late.generation_id).provider_job_id == "pj-late"
    submitted_events = len(world.store.events)
    world.deps.wake.clear()

    assert await reconciler.fail_overdue_submitted(world.deps) == 1

    job = world.store.job(late.generation_id)
    assert job.state is JobState.FAILED
    assert job.last_error == DEADLINE_EXCEEDED.model_dump()
    assert world.store.job(recent.generation_id).state is JobState.SUBMITTED
    # The late job may still run at a provider that cannot cancel: its slot is held a while.
    assert job.slot_held_until is not None
    assert world.store.busy() == 2
    [event] = world.store.events_of(COMPLETED)
    assert len(world.store.events) == submitted_events + 1
    assert event.generation_id == late.generation_id
    assert event.status is CompletionStatus.FAILED
    assert event.error == DEADLINE_EXCEEDED
    assert (event.account_id, event.provider_job_id, event.attempt) == (ACCOUNT, "pj-late", 1)
    assert [c.provider_job_id for c in world.adapter.cancels] == ["pj-late"]
    assert world.deps.wake.is_set()

    # Nothing is ended twice.
    assert await reconciler.fail_overdue_submitted(world.deps) == 0
    assert len(world.store.events) == submitted_events + 1
    assert len(world.adapter.cancels) == 1


async def test_queued_jobs_past_their_deadline_fail_deadline_exceeded() -> None:
    world = make_world()
    late = await world.queue(requested(deadline_in_s=-1))
    waiting = await world.queue(requested(deadline_in_s=60))

    assert await reconciler.fail_overdue_queued(world.deps) == 1

    assert world.store.job(late.generation_id).state is JobState.FAILED
    assert world.store.job(waiting.generation_id).state is JobState.QUEUED
    [event] = world.store.events_of(COMPLETED)
    assert event.generation_id == late.generation_id
    assert event.error == DEADLINE_EXCEEDED
    assert (event.attempt, event.account_id) == (0, None)
    assert await reconciler.fail_overdue_queued(world.deps) == 0
    assert len(world.store.events) == 1


async def test_a_job_the_poller_could_not_follow_keeps_its_slot_for_a_while() -> None:
    """Its provider job may still run: the account must not get another job in its slot."""
    world = make_world(FakeAdapter([result("pj-1")], guarantees=SAFE))
    await world.queue()
    [unfollowed] = await _submitted_jobs(world, 1)
    hold = world.deps.settings.unfollowed_slot_hold_s
    assert hold > 0

    await _complete(
        world,
        [_ended(unfollowed, CompletionStatus.FAILED, ACCOUNT_CREDENTIALS_UNREADABLE)],
    )

    assert world.store.job(unfollowed).state is JobState.FAILED
    assert world.store.busy() == 1
    held_until = world.store.job(unfollowed).slot_held_until
    assert held_until is not None
    assert abs((held_until - world.store.now()).total_seconds() - hold) < 5
    world.store.clock_offset = timedelta(seconds=hold + 1)
    assert world.store.busy() == 0  # released when the hold ends, nothing else to do


async def test_a_submission_whose_outcome_is_unknown_keeps_its_slot_for_a_while() -> None:
    world = make_world(FakeAdapter([SubmitOutcomeUnknown("no answer")], guarantees=UNSAFE))
    await world.queue()
    held = await world.claim()

    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert job.state is JobState.FAILED
    assert job.last_error is not None
    assert job.last_error["code"] == "submission_outcome_unknown"
    assert job.slot_held_until is not None
    assert world.store.busy() == 1


async def _complete(world: World, events: list[GenerationCompleted]) -> None:
    """The completed consumer's handler, with the dependencies its table entry gives it."""
    await handlers.on_generations_completed(
        events,
        world.deps.uow(),
        wake=world.deps.wake.set,
        unfollowed_slot_hold_s=world.deps.settings.unfollowed_slot_hold_s,
    )

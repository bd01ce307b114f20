"""The fake unit of work keeps the promises of the SQL one that the service-layer tests rely on:
nothing before commit, fenced writes, first terminal state wins."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from genbus.contracts import (
    COMPLETED,
    CompletionStatus,
    GenerationCompleted,
    GenerationRequested,
)
from genbus.dispatcher.adapters.repository import JobRepository, LeaseLost
from genbus.dispatcher.domain.model import ClaimedJob, JobState
from tests.unit.dispatcher.fakes import OWNER, claimed_job, make_world, requested

pytestmark = pytest.mark.service_layer


def _cancelled(request: GenerationRequested) -> GenerationCompleted:
    return GenerationCompleted.following(request, status=CompletionStatus.CANCELLED, attempt=1)


FencedWrite = Callable[[JobRepository, ClaimedJob], Awaitable[Any]]

FENCED: dict[str, FencedWrite] = {
    "record_submit_started": lambda jobs, c: jobs.record_submit_started(c, 30),
    "record_refusal": lambda jobs, c: jobs.record_refusal(c, 30),
    "mark_submitted": lambda jobs, c: jobs.mark_submitted(c, "pj-1"),
    "requeue": lambda jobs, c: jobs.requeue(c, 0.0, {"code": "x"}),
    "fail_claimed": lambda jobs, c: jobs.fail_claimed(c, {"code": "x"}),
}


async def test_nothing_reaches_the_store_without_commit() -> None:
    world, held = await claimed_job()
    gid = held.claim.generation_id
    request = requested(generation_id=gid)
    commits, rollbacks = world.store.commits, world.store.rollbacks

    async with world.store.uow() as uow:
        await uow.jobs.fail_claimed(held.claim, {"code": "x"})
        await uow.accounts.cool_down(held.claim.account_id, 10, "x")
        await uow.stage(COMPLETED, _cancelled(request))

    assert world.store.job(gid).state is JobState.CLAIMED
    assert world.store.account().cooldown_until is None
    assert world.store.events == []
    assert (world.store.commits, world.store.rollbacks) == (commits, rollbacks + 1)

    async with world.store.uow() as uow:
        await uow.jobs.fail_claimed(held.claim, {"code": "x"})
        await uow.stage(COMPLETED, _cancelled(request))
        await uow.commit()

    assert world.store.job(gid).state is JobState.FAILED
    assert [b.name for b, _ in world.store.events] == ["completed"]
    assert world.store.commits == commits + 1


@pytest.mark.parametrize("write", sorted(FENCED))
async def test_every_write_on_a_claim_is_fenced_by_its_token(write: str) -> None:
    world, held = await claimed_job()
    await world.steal(held.claim.generation_id)
    before = dataclasses.replace(world.store.job(held.claim.generation_id))

    async with world.store.uow() as uow:
        with pytest.raises(LeaseLost):
            await FENCED[write](uow.jobs, held.claim)

    assert world.store.job(held.claim.generation_id) == before


async def test_leases_are_renewed_only_for_their_holder() -> None:
    world, held = await claimed_job()
    async with world.store.uow() as uow:
        assert await uow.jobs.renew_leases([held.claim], 30) == {held.claim.generation_id}
        await uow.commit()
    await world.steal(held.claim.generation_id)
    async with world.store.uow() as uow:
        assert await uow.jobs.renew_leases([held.claim], 30) == set()


async def test_ingest_is_idempotent_and_the_first_terminal_state_wins() -> None:
    world = make_world()
    event = await world.queue()
    async with world.store.uow() as uow:
        assert not await uow.jobs.ingest(event)
        done = await uow.jobs.finish(event.generation_id, JobState.CANCELLED)
        again = await uow.jobs.finish(event.generation_id, JobState.FAILED, {"code": "x"})
        await uow.commit()
    assert done is not None
    assert again is None
    assert world.store.job(event.generation_id).state is JobState.CANCELLED
    assert world.store.job(event.generation_id).last_error is None
    assert [op for op in world.store.ops() if op == "ingest"] == ["ingest"]
    async with world.store.uow() as uow:
        assert await uow.jobs.claim_next(OWNER, 30) is None

"""Fair share at the claim against Postgres: within a priority a freed slot goes to the user
with the fewest jobs in flight (ties: the user served longest ago), a user at its in-flight cap
is passed over without blocking others, and the lanes the trigger keeps match the jobs."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from dispatcher_harness import Dispatcher, claim_once
from sqlalchemy import text

from genbus.dispatcher.adapters.repository import Contended
from genbus.dispatcher.domain.model import AccountStatus

pytestmark = pytest.mark.integration


async def _claim_all(dispatcher: Dispatcher) -> list[UUID]:
    """Claim until nothing more can be claimed; the claimed ids in claim order."""
    claimed = []
    while (claim := await claim_once(dispatcher.engine)) is not None:
        claimed.append(claim.generation_id)
    return claimed


async def _lanes_match_jobs(dispatcher: Dispatcher) -> None:
    async with dispatcher.engine.connect() as conn:
        lanes = {
            (r.user_id, r.priority): (r.queued, r.in_flight)
            for r in await conn.execute(
                text("SELECT user_id, priority, queued, in_flight FROM dispatcher.user_lanes")
            )
        }
        truth = (
            await conn.execute(
                text(
                    """
                    SELECT l.user_id, l.priority,
                           count(*) FILTER (WHERE j.state = 'queued'
                                              AND j.priority = l.priority) AS queued,
                           count(*) FILTER (WHERE j.state IN ('claimed', 'submitted'))
                               AS in_flight
                      FROM dispatcher.user_lanes l
                      JOIN dispatcher.dispatch_jobs j ON j.user_id = l.user_id
                     GROUP BY l.user_id, l.priority
                    """
                )
            )
        ).all()
    assert lanes == {(r.user_id, r.priority): (r.queued, r.in_flight) for r in truth}


async def test_a_freed_slot_goes_to_the_user_with_the_fewest_in_flight(
    dispatcher: Dispatcher,
) -> None:
    await dispatcher.add_account("only", "sim-key-1", max_concurrent=20)
    alice = await dispatcher.queue(6, user_id="alice", together=True)
    bob = await dispatcher.queue(2, user_id="bob", together=True)
    # Arrival order would be alice's six, then bob's two.
    assert await _claim_all(dispatcher) == [alice[0], bob[0], alice[1], bob[1], *alice[2:]]
    await _lanes_match_jobs(dispatcher)
    # Five of Alice's jobs end: she has fewer in flight than Bob, so her next job goes first.
    for generation_id in alice[:5]:
        await dispatcher.complete(generation_id)
    later_bob = await dispatcher.queue(1, user_id="bob")
    later_alice = await dispatcher.queue(1, user_id="alice")
    assert await _claim_all(dispatcher) == [later_alice[0], later_bob[0]]
    await _lanes_match_jobs(dispatcher)


async def test_priority_comes_before_fair_share(dispatcher: Dispatcher) -> None:
    await dispatcher.add_account("only", "sim-key-1", max_concurrent=20)
    alice = await dispatcher.queue(3, user_id="alice", priority=9, together=True)
    bob = await dispatcher.queue(1, user_id="bob", priority=5)
    assert await _claim_all(dispatcher) == [*alice, *bob]


async def test_a_user_at_its_cap_is_passed_over_without_blocking_others(
    dispatcher: Dispatcher,
) -> None:
    await dispatcher.add_account("only", "sim-key-1", max_concurrent=20)
    capped = await dispatcher.queue(5, user_id="capped", priority=9, max_in_flight=2)
    other = await dispatcher.queue(2, user_id="other", priority=1)
    assert await _claim_all(dispatcher) == [capped[0], capped[1], *other]
    await dispatcher.complete(capped[0])
    assert await _claim_all(dispatcher) == [capped[2]]
    # The latest request sets the cap: raised to 4, two more go.
    raised = await dispatcher.queue(1, user_id="capped", priority=9, max_in_flight=4)
    assert await _claim_all(dispatcher) == [capped[3], capped[4]]
    await _lanes_match_jobs(dispatcher)
    assert (await dispatcher.job(raised[0]))["state"] == "queued"


async def test_intake_tells_the_api_why_a_job_cannot_start(dispatcher: Dispatcher) -> None:
    account = await dispatcher.add_account("only", "sim-key-1", max_concurrent=20)
    first = await dispatcher.queue(1, user_id="capped", max_in_flight=1)
    assert await _claim_all(dispatcher) == first
    assert await dispatcher.published() == []  # it could start: nothing to tell
    held = await dispatcher.queue(2, user_id="capped", max_in_flight=1, together=True)
    told = [e for e in await dispatcher.published() if e["subject"] == "generations.waiting.sim"]
    assert [(e["generation_id"], e["reason"], e["sequence"]) for e in told] == [
        (str(g), "user_at_capacity", 1) for g in held
    ]
    uow = dispatcher.deps.uow()
    async with uow:
        await uow.accounts.set_status(account.id, AccountStatus.DISABLED, "paused")
        await uow.commit()
    [unserved] = await dispatcher.queue(1, user_id="someone")
    told = [e for e in await dispatcher.published() if e["generation_id"] == str(unserved)]
    assert [(e["reason"], e["sequence"]) for e in told] == [("provider_unavailable", 1)]
    # Told once per change: the same reason again tells nothing.
    uow = dispatcher.deps.uow()
    async with uow:
        assert await uow.jobs.note_wait(unserved, "provider_unavailable") is None
        noted = await uow.jobs.note_wait(unserved, "retrying")
        await uow.commit()
    assert noted is not None
    assert noted.sequence == 2


async def test_concurrent_batches_and_claims_keep_the_lanes_exact(dispatcher: Dispatcher) -> None:
    """Batches of several users in opposite orders, claims and completions at once: no
    deadlock (each would raise), and the lanes still match the jobs."""
    await dispatcher.add_account("only", "sim-key-1", max_concurrent=1000)
    users = [f"user-{i}" for i in range(6)]

    async def intake(order: list[str]) -> None:
        for _ in range(5):
            batch = []
            for user in order:
                batch += await dispatcher.events(2, user_id=user)
            await dispatcher.ingest(batch)

    async def claims() -> None:
        for _ in range(40):
            try:
                claim = await claim_once(dispatcher.engine)
            except Contended:  # the other claimer holds the account: as the scheduler, again
                continue
            if claim is not None and claim.generation_id.int % 2:
                await dispatcher.complete(claim.generation_id)

    await asyncio.gather(intake(users), intake(users[::-1]), claims(), claims())
    await _lanes_match_jobs(dispatcher)

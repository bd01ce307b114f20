"""Billed once: fenced claims on a real Postgres, and submissions that outlive a lease or lose
their answer, driven through the real scheduler against a real sim server."""

from __future__ import annotations

from uuid import UUID

import pytest
from dispatcher_harness import Dispatcher, eventually
from sqlalchemy import text

from genbus.contracts import SUBMITTED, GenerationRequested, GenerationSubmitted
from genbus.dispatcher.adapters.repository import LeaseLost
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.domain.model import ClaimedJob

pytestmark = pytest.mark.integration

LEASE_S = 1.0


@pytest.fixture
def settings(database_url: str) -> DispatcherSettings:
    return DispatcherSettings(
        database_url=database_url,
        max_submit_tries=3,
        submit_backoff_base_s=0.01,
        submit_backoff_max_s=0.05,
        idle_tick_s=0.05,
        lease_s=LEASE_S,
    )


async def _claim(dispatcher: Dispatcher, owner: str) -> ClaimedJob:
    uow = dispatcher.deps.uow()
    async with uow:
        claim = await uow.jobs.claim_next(owner, 30.0)
        await uow.commit()
    assert claim is not None
    return claim


async def _expire_leases(dispatcher: Dispatcher) -> None:
    async with dispatcher.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE dispatcher.dispatch_jobs SET lease_until = now() - interval '1 second' "
                "WHERE state = 'claimed'"
            )
        )


async def test_only_one_of_two_replicas_recovers_an_expired_lease(dispatcher: Dispatcher) -> None:
    await dispatcher.add_account("only", "sim-key-1")
    [gid] = await dispatcher.queue()
    first = await _claim(dispatcher, "replica-a")
    await _expire_leases(dispatcher)

    # Two replicas look for expired leases at the same moment, in open transactions.
    b, c = dispatcher.deps.uow(), dispatcher.deps.uow()
    async with b, c:
        taken_b = await b.jobs.recover_expired_lease("replica-b", 30.0)
        taken_c = await c.jobs.recover_expired_lease("replica-c", 30.0)
        await b.commit()
        await c.commit()

    winners = [claim for claim in (taken_b, taken_c) if claim is not None]
    assert len(winners) == 1
    assert winners[0].generation_id == gid
    assert winners[0].lease_token != first.lease_token
    job = await dispatcher.job(gid)
    assert job["lease_owner"] in ("replica-b", "replica-c")
    assert job["lease_token"] == winners[0].lease_token


async def _claim_lost_to_another(dispatcher: Dispatcher) -> tuple[UUID, ClaimedJob, ClaimedJob]:
    """A job claimed by replica-a, whose lease expired and was recovered by replica-b: the
    generation, replica-a's stale claim and replica-b's current one."""
    await dispatcher.add_account("only", "sim-key-1")
    [gid] = await dispatcher.queue()
    stale = await _claim(dispatcher, "replica-a")
    await _expire_leases(dispatcher)
    uow = dispatcher.deps.uow()
    async with uow:
        current = await uow.jobs.recover_expired_lease("replica-b", 30.0)
        await uow.commit()
    assert current is not None
    return gid, stale, current


async def test_a_holder_that_lost_its_claim_can_record_nothing(dispatcher: Dispatcher) -> None:
    gid, stale, current = await _claim_lost_to_another(dispatcher)

    writes = {
        "mark_submitted": lambda u: u.jobs.mark_submitted(stale, "job-1"),
        "requeue": lambda u: u.jobs.requeue(stale, 0.0, {"code": "x"}),
        "record_submit_started": lambda u: u.jobs.record_submit_started(stale, 30.0),
        "record_refusal": lambda u: u.jobs.record_refusal(stale, 30.0),
        "fail_claimed": lambda u: u.jobs.fail_claimed(stale, {"code": "x"}),
    }
    for name, write in writes.items():
        uow = dispatcher.deps.uow()
        async with uow:
            with pytest.raises(LeaseLost):
                await write(uow)
        assert (await dispatcher.job(gid))["state"] == "claimed", name

    uow = dispatcher.deps.uow()
    async with uow:
        assert await uow.jobs.renew_leases([stale], 30.0) == set()
        assert await uow.jobs.renew_leases([current], 30.0) == {gid}
        assert await uow.jobs.mark_submitted(current, "job-2") is False
        await uow.commit()
    job = await dispatcher.job(gid)
    assert (job["state"], job["provider_job_id"]) == ("submitted", "job-2")
    assert job["lease_token"] is None


async def test_the_submitted_job_and_its_event_are_one_write_or_none(
    dispatcher: Dispatcher,
) -> None:
    """`mark_submitted` writes the job's row and its event's outbox row in one statement, with
    no transaction around it: a holder that lost its claim writes neither."""
    gid, stale, current = await _claim_lost_to_another(dispatcher)
    request = GenerationRequested.model_validate(current.request)

    def announce(claim: ClaimedJob, job: str) -> GenerationSubmitted:
        return GenerationSubmitted.following(
            request, account_id=claim.account_id, provider_job_id=job, attempt=claim.attempt
        )

    uow = dispatcher.deps.one_statement()
    async with uow:
        with pytest.raises(LeaseLost):
            await uow.mark_submitted(stale, "job-1", announce(stale, "job-1"))
    assert (await dispatcher.job(gid))["state"] == "claimed"
    assert await dispatcher.published() == []

    uow = dispatcher.deps.one_statement()
    async with uow:
        assert await uow.mark_submitted(current, "job-2", announce(current, "job-2")) is False
        # Committed by the statement itself, before `commit()`.
        assert (await dispatcher.job(gid))["provider_job_id"] == "job-2"
        with pytest.raises(RuntimeError, match="without its change"):
            await uow.stage(SUBMITTED, announce(current, "job-3"))
        await uow.commit()
    [event] = await dispatcher.published()
    assert (event["generation_id"], event["provider_job_id"]) == (str(gid), "job-2")
    assert event["subject"] == SUBMITTED.subject("sim")


@pytest.mark.parametrize("provider_id", ["pixverse", "sim"])
async def test_a_submission_slower_than_its_lease_is_submitted_once(
    dispatcher: Dispatcher, provider_id: str
) -> None:
    await dispatcher.add_account("only", "sim-key-1", provider_id=provider_id)
    # Every job-creating call takes 2.5 leases: only renewal keeps the claim.
    await dispatcher.sim.configure(submit_latency_ms=2500 * LEASE_S)
    async with dispatcher.running():
        ids = await dispatcher.queue(2, provider_id=provider_id)
        jobs = await eventually(
            lambda: dispatcher.jobs(ids),
            lambda js: all(j["state"] == "submitted" for j in js),
            timeout=30,
        )
    stats = await dispatcher.sim.stats()
    assert stats["submissions"] == 2
    assert stats["duplicate_references"] == 0
    assert all(j["submit_tries"] in (0, 1) for j in jobs)
    assert all(j["submit_started_at"] is None for j in jobs)


async def test_pixverse_answer_lost_ends_the_generation_without_a_second_job(
    dispatcher: Dispatcher,
) -> None:
    await dispatcher.add_account("only", "sim-key-1", provider_id="pixverse")
    await dispatcher.sim.configure(lost_response_rate=1.0)
    async with dispatcher.running():
        [gid] = await dispatcher.queue(provider_id="pixverse")
        job = await eventually(
            lambda: dispatcher.job(gid), lambda j: j["state"] == "failed", timeout=30
        )
    stats = await dispatcher.sim.stats()
    assert stats["submissions"] == 1
    assert stats["lost_responses"] == 1
    assert stats["duplicate_references"] == 0
    assert job["last_error"]["code"] == "submission_outcome_unknown"
    [event] = [e for e in await dispatcher.published() if e["generation_id"] == str(gid)]
    assert event["status"] == "failed"
    assert event["error"]["code"] == "submission_outcome_unknown"
    assert event["error"]["retryable"] is True


async def test_sim_answer_lost_is_found_by_reference(dispatcher: Dispatcher) -> None:
    await dispatcher.add_account("only", "sim-key-1")
    await dispatcher.sim.configure(lost_response_rate=1.0)
    async with dispatcher.running():
        [gid] = await dispatcher.queue()
        job = await eventually(
            lambda: dispatcher.job(gid), lambda j: j["state"] == "submitted", timeout=30
        )
    stats = await dispatcher.sim.stats()
    assert stats["submissions"] == 1
    assert stats["duplicate_references"] == 0
    assert stats["lost_responses"] == 1
    assert job["provider_job_id"]


async def test_a_claim_recovered_in_doubt_is_not_resubmitted_to_pixverse(
    dispatcher: Dispatcher,
) -> None:
    """A holder died after recording that its call started: the next one never resubmits."""
    await dispatcher.add_account("only", "sim-key-1", provider_id="pixverse")
    [gid] = await dispatcher.queue(provider_id="pixverse")
    dead = await _claim(dispatcher, "replica-dead")
    uow = dispatcher.deps.uow()
    async with uow:
        await uow.jobs.record_submit_started(dead, 30.0)
        await uow.commit()
    await _expire_leases(dispatcher)
    async with dispatcher.running():
        job = await eventually(
            lambda: dispatcher.job(gid), lambda j: j["state"] == "failed", timeout=30
        )
    assert job["last_error"]["code"] == "submission_outcome_unknown"
    assert (await dispatcher.sim.stats())["submissions"] == 0


async def test_a_job_past_its_deadline_is_never_claimed(dispatcher: Dispatcher) -> None:
    """A request replayed after its deadline (e.g. from the dead letters) is not submitted."""
    await dispatcher.add_account("only", "sim-key-1")
    [gid] = await dispatcher.queue()
    async with dispatcher.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE dispatcher.dispatch_jobs SET deadline_at = now() - interval '1 second' "
                "WHERE generation_id = :g"
            ),
            {"g": gid},
        )
    uow = dispatcher.deps.uow()
    async with uow:
        assert await uow.jobs.claim_next("replica-a", 30.0) is None

"""Submitting one claimed job, on a fake unit of work: each provider answer and its one reaction,
fencing, and submissions whose outcome is unknown (billed once, never resubmitted blindly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from genbus.contracts import (
    COMPLETED,
    SUBMITTED,
    WAITING,
    CompletionStatus,
    GenerationCompleted,
    GenerationSubmitted,
    GenerationWaiting,
    WaitingReason,
    provider_idempotency_key,
)
from genbus.dispatcher.domain.model import UNFOLLOWED_FAILURES, AccountStatus, JobState
from genbus.dispatcher.service_layer.held_claim import HeldClaim
from genbus.dispatcher.service_layer.submission import submit_claimed
from genbus.providers import (
    AuthFailed,
    ConcurrencyLimited,
    ContentRejected,
    CredentialCipher,
    Credentials,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    SubmitOutcomeUnknown,
    SubmitRequest,
)
from tests.unit.dispatcher.fakes import (
    ACCOUNT,
    API_KEY,
    FINDABLE_ONLY,
    IDEMPOTENT_ONLY,
    OWNER,
    SAFE,
    UNSAFE,
    FakeAdapter,
    World,
    claimed_job,
    hang,
    make_world,
    requested,
    result,
)

pytestmark = pytest.mark.service_layer


def _completed(world: World) -> list[GenerationCompleted]:
    return world.store.events_of(COMPLETED)


def _submitted(world: World) -> list[GenerationSubmitted]:
    return world.store.events_of(SUBMITTED)


def _assert_failed(world: World, held: HeldClaim, code: str) -> GenerationCompleted:
    """The job ended failed with `code`, its slot released, one COMPLETED event and no other."""
    job = world.store.job(held.claim.generation_id)
    assert job.state is JobState.FAILED
    assert job.last_error is not None
    assert job.last_error["code"] == code
    assert job.lease_token is None
    assert job.finished_at is not None
    assert job.provider_job_id is None
    # A job that may be running at the provider keeps its slot a while; any other frees it.
    assert world.store.busy() == (1 if code in UNFOLLOWED_FAILURES else 0)
    assert (job.slot_held_until is not None) == (code in UNFOLLOWED_FAILURES)
    assert len(_announced(world)) == 1
    [event] = _completed(world)
    assert event.status is CompletionStatus.FAILED
    assert event.error is not None
    assert event.error.code == code
    assert event.generation_id == held.claim.generation_id
    assert event.account_id == ACCOUNT
    assert event.attempt == held.claim.attempt == 1
    assert world.deps.wake.is_set()
    return event


def _announced(world: World) -> list[Any]:
    """Events staged, but for the waits told the api (`GenerationWaiting`)."""
    return [e for e in world.store.events if e[0] is not WAITING]


def _assert_requeued(world: World, held: HeldClaim, code: str) -> None:
    """Back in the queue at once, slot released, no attempt spent; the api is told only that
    it is retrying (`GenerationWaiting`), now."""
    job = world.store.job(held.claim.generation_id)
    assert job.state is JobState.QUEUED
    assert job.account_id is None
    assert job.lease_token is None
    assert job.lease_owner is None
    assert job.attempt == 1
    assert job.due_at <= world.store.now()
    assert job.last_error is not None
    assert job.last_error["code"] == code
    assert world.store.busy() == 0
    [(binding, told)] = world.store.events
    assert binding is WAITING
    assert isinstance(told, GenerationWaiting)
    assert told.reason is WaitingReason.RETRYING
    assert told.sequence == job.wait_sequence
    assert told.next_attempt_at is not None
    assert told.next_attempt_at <= datetime.now(UTC)
    assert world.deps.wake.is_set()


def _key(held: HeldClaim) -> str:
    return provider_idempotency_key(held.claim.generation_id, held.claim.attempt)


# -- the provider takes the job ---------------------------------------------------------------


async def test_success_records_the_job_stages_one_submitted_event_and_keeps_the_slot() -> None:
    world, held = await claimed_job(FakeAdapter([result("pj-1")], guarantees=SAFE))

    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert job.state is JobState.SUBMITTED
    assert job.provider_job_id == "pj-1"
    assert job.account_id == ACCOUNT
    assert (job.lease_token, job.lease_owner, job.submit_started_at) == (None, None, None)
    assert world.store.busy() == 1  # the provider runs it: the slot stays busy
    [event] = _submitted(world)
    assert len(_announced(world)) == 1
    assert event.provider_job_id == "pj-1"
    assert event.account_id == ACCOUNT
    assert event.attempt == 1
    assert event.generation_id == held.claim.generation_id
    assert event.deadline_at == job.deadline_at
    # What the provider was sent: the decrypted credentials, the account's URL, the attempt's key.
    [sent] = world.adapter.submits
    assert sent.credentials == Credentials(api_key=API_KEY)
    assert sent.base_url == "http://provider.test"
    assert sent.idempotency_key == _key(held)
    assert sent.params == {"prompt": "a cat"}
    assert held.settled
    # An idempotent provider needs no durable "call started" mark.
    assert world.store.ops() == ["ingest", "claim_next", "submit", "mark_submitted"]


async def test_a_replayed_result_is_recorded_once_like_a_new_job() -> None:
    world, held = await claimed_job(FakeAdapter([result("pj-old", replayed=True)], guarantees=SAFE))

    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert (job.state, job.provider_job_id) == (JobState.SUBMITTED, "pj-old")
    assert [e.provider_job_id for e in _submitted(world)] == ["pj-old"]
    assert len(_announced(world)) == 1
    assert len(world.adapter.submits) == 1


async def test_a_non_idempotent_provider_call_is_durably_marked_before_it_starts() -> None:
    world, held = await claimed_job(FakeAdapter([result("pj-1")], guarantees=UNSAFE))

    await submit_claimed(world.deps, held)

    assert world.store.ops() == [
        "ingest",
        "claim_next",
        "record_submit_started",
        "submit",
        "mark_submitted",
    ]
    job = world.store.job(held.claim.generation_id)
    assert job.state is JobState.SUBMITTED
    assert job.submit_started_at is None  # cleared once the provider answered
    assert job.submit_tries == 1


async def test_a_cancel_requested_during_the_submission_is_sent_to_the_provider() -> None:
    world = make_world(FakeAdapter([result("pj-9")], guarantees=SAFE))
    event = await world.queue()

    async def user_cancels(_: SubmitRequest) -> None:
        async with world.store.uow() as uow:
            await uow.jobs.flag_cancel_requested(event.generation_id)
            await uow.commit()

    world.adapter.on_submit = user_cancels
    held = await world.claim()

    await submit_claimed(world.deps, held)

    assert world.store.job(event.generation_id).state is JobState.SUBMITTED
    assert [c.provider_job_id for c in world.adapter.cancels] == ["pj-9"]
    assert world.adapter.cancels[0].credentials == Credentials(api_key=API_KEY)
    assert world.store.ops()[-2:] == ["mark_submitted", "cancel"]


# -- the provider refuses before creating anything -------------------------------------------


@pytest.mark.parametrize(
    ("error", "cooldown_s"),
    [
        (RateLimited("slow down", retry_after_s=7), 7.0),
        (RateLimited("slow down"), 11.0),  # rate_limit_cooldown_s
        (ConcurrencyLimited("full", retry_after_s=4), 4.0),
        (ConcurrencyLimited("full"), 3.0),  # concurrency_cooldown_s
    ],
    ids=["rate-limited-retry-after", "rate-limited", "concurrency-retry-after", "concurrency"],
)
async def test_push_back_cools_the_account_down_and_requeues_without_an_attempt(
    error: ProviderError, cooldown_s: float
) -> None:
    world, held = await claimed_job(
        FakeAdapter([error], guarantees=SAFE), rate_limit_cooldown_s=11, concurrency_cooldown_s=3
    )
    before = world.store.now()

    await submit_claimed(world.deps, held)

    _assert_requeued(world, held, error.code)
    account = world.store.account()
    assert account.status is AccountStatus.ACTIVE
    assert account.status_reason == error.code
    assert account.cooldown_until is not None
    expected = before + timedelta(seconds=cooldown_s)
    assert expected <= account.cooldown_until <= world.store.now() + timedelta(seconds=cooldown_s)
    assert len(world.adapter.submits) == 1
    # Cooling down: nothing can be claimed now, the job included.
    async with world.store.uow() as uow:
        assert await uow.jobs.claim_next(OWNER, 30) is None


async def test_quota_exhausted_marks_the_account_exhausted_and_requeues() -> None:
    world, held = await claimed_job(FakeAdapter([QuotaExhausted("no credits left")]))

    await submit_claimed(world.deps, held)

    _assert_requeued(world, held, "quota_exhausted")
    account = world.store.account()
    assert account.status is AccountStatus.EXHAUSTED
    assert account.credits == 0
    assert account.status_reason == "no credits left"
    assert account.cooldown_until is None


async def test_auth_failure_disables_the_account_with_the_reason_and_requeues() -> None:
    world, held = await claimed_job(FakeAdapter([AuthFailed("key revoked")]))

    await submit_claimed(world.deps, held)

    _assert_requeued(world, held, "unauthorized")
    account = world.store.account()
    assert account.status is AccountStatus.DISABLED
    assert account.status_reason == "key revoked"


@pytest.mark.parametrize(
    "error",
    [ContentRejected("nsfw prompt"), InvalidRequest("duration too long")],
    ids=["content-rejected", "invalid-request"],
)
async def test_a_refused_request_fails_the_generation_with_its_code(error: ProviderError) -> None:
    world, held = await claimed_job(FakeAdapter([error], guarantees=SAFE))

    await submit_claimed(world.deps, held)

    event = _assert_failed(world, held, error.code)
    assert event.error is not None
    assert event.error.message == error.message
    assert event.error.retryable is False
    assert len(world.adapter.submits) == 1
    assert world.store.account().status is AccountStatus.ACTIVE
    assert world.store.account().cooldown_until is None


# -- transient errors -------------------------------------------------------------------------


@pytest.mark.parametrize("guarantees", [SAFE, UNSAFE], ids=["idempotent", "not-idempotent"])
async def test_unavailable_is_retried_with_the_same_key_until_it_succeeds(guarantees: Any) -> None:
    errors = [ProviderUnavailable("502"), ProviderUnavailable("timeout")]
    world, held = await claimed_job(FakeAdapter([*errors, result("pj-3")], guarantees=guarantees))

    await submit_claimed(world.deps, held)

    assert [r.idempotency_key for r in world.adapter.submits] == [_key(held)] * 3
    job = world.store.job(held.claim.generation_id)
    assert (job.state, job.provider_job_id) == (JobState.SUBMITTED, "pj-3")
    assert job.account_id == ACCOUNT
    assert [e.provider_job_id for e in _submitted(world)] == ["pj-3"]
    assert len(_announced(world)) == 1
    ops = [op for op in world.store.ops() if op not in ("ingest", "claim_next")]
    # Each refusal counts against the account's breaker; the success closes it again.
    accepted = ["submit", "mark_submitted", "breaker_success"]
    if guarantees.idempotent:
        assert ops == ["submit", "breaker_failure", "record_refusal"] * 2 + accepted
    else:
        refused = ["record_submit_started", "submit", "breaker_failure", "record_refusal"]
        assert ops == [*refused, *refused, "record_submit_started", *accepted]
    assert world.store.account().breaker_failures == 0


async def test_unavailable_after_max_tries_fails_the_generation_provider_unavailable() -> None:
    tries = 3
    world, held = await claimed_job(
        FakeAdapter([ProviderUnavailable("503")] * tries, guarantees=SAFE), max_submit_tries=tries
    )

    await submit_claimed(world.deps, held)

    event = _assert_failed(world, held, "provider_unavailable")
    assert event.error is not None
    assert event.error.retryable is True
    assert len(world.adapter.submits) == tries
    assert {r.idempotency_key for r in world.adapter.submits} == {_key(held)}
    assert world.store.job(held.claim.generation_id).submit_tries == tries


# -- before any provider call -----------------------------------------------------------------


async def test_undecryptable_credentials_disable_the_account_and_requeue_the_job() -> None:
    world = make_world(FakeAdapter([result()]))
    other_key = CredentialCipher([CredentialCipher.generate_key()])
    world.store.account().credentials_ciphertext = other_key.encrypt({"api_key": "x"})
    await world.queue()
    held = await world.claim()

    await submit_claimed(world.deps, held)

    _assert_requeued(world, held, "account_disabled")
    account = world.store.account()
    assert account.status is AccountStatus.DISABLED
    assert account.status_reason is not None
    assert "decrypted" in account.status_reason
    assert world.adapter.submits == []


async def test_an_unknown_provider_fails_the_generation_unsupported_provider() -> None:
    world = make_world(FakeAdapter([result()]))
    world.store.add_account(world.store.account().credentials_ciphertext, account_id="acc-x")
    world.store.account("acc-x").provider_id = "nowhere"
    del world.store.accounts[ACCOUNT]
    await world.queue(requested(provider_id="nowhere"))
    held = await world.claim()

    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert job.state is JobState.FAILED
    assert job.last_error is not None
    assert job.last_error["code"] == "unsupported_provider"
    assert world.store.busy("acc-x") == 0
    [event] = _completed(world)
    assert event.error is not None
    assert event.error.code == "unsupported_provider"
    assert event.error.retryable is False
    assert world.adapter.submits == []


# -- fencing: another holder recovered the claim mid-call -------------------------------------


@pytest.mark.parametrize(
    "outcome",
    [result("pj-late"), RateLimited("slow"), ContentRejected("no"), SubmitOutcomeUnknown("lost")],
    ids=["accepted", "rate-limited", "rejected", "outcome-unknown"],
)
async def test_a_holder_fenced_out_mid_call_records_nothing(outcome: Any) -> None:
    world = make_world(FakeAdapter([outcome], guarantees=UNSAFE))
    event = await world.queue()
    new_tokens = []

    async def stolen(_: SubmitRequest) -> None:
        new_tokens.append((await world.steal(event.generation_id)).lease_token)

    world.adapter.on_submit = stolen
    held = await world.claim()

    await submit_claimed(world.deps, held)

    job = world.store.job(event.generation_id)
    assert job.state is JobState.CLAIMED
    assert job.lease_owner == "replica-b"
    assert job.lease_token == new_tokens[0] != held.claim.lease_token
    assert job.provider_job_id is None
    assert job.last_error is None
    assert job.submit_started_at is not None  # the new holder knows the call may have landed
    assert _announced(world) == []
    # Durable since the claim: the mark before the call, and the thief's recovery. Nothing else
    # about the job (a lost answer still counts against the account's breaker: a fact about
    # the account, whoever holds the job).
    breaker = ["breaker_failure"] if isinstance(outcome, SubmitOutcomeUnknown) else []
    assert world.store.ops()[2:] == [
        "record_submit_started",
        "submit",
        "recover_expired_lease",
        *breaker,
    ]
    assert world.store.rollbacks >= 1
    account = world.store.account()  # the refusal's account change was rolled back with it
    assert (account.status, account.cooldown_until) == (AccountStatus.ACTIVE, None)
    assert world.store.busy() == 1
    assert held.settled
    assert len(world.adapter.submits) == 1


# -- the outcome of a submission is unknown ---------------------------------------------------


async def test_unknown_outcome_without_lookup_or_idempotency_fails_and_never_resubmits() -> None:
    world, held = await claimed_job(FakeAdapter([SubmitOutcomeUnknown("reset")], guarantees=UNSAFE))

    await submit_claimed(world.deps, held)

    _assert_failed(world, held, "submission_outcome_unknown")
    assert len(world.adapter.submits) == 1
    assert world.adapter.lookups == []
    # The start of the call was durable before the call: a later holder would know.
    assert world.store.ops() == [
        "ingest",
        "claim_next",
        "record_submit_started",
        "submit",
        "breaker_failure",
        "fail_claimed",
    ]


async def test_unknown_outcome_found_by_reference_is_that_job() -> None:
    adapter = FakeAdapter(
        [SubmitOutcomeUnknown("reset")], guarantees=FINDABLE_ONLY, found=result("pj-found")
    )
    world, held = await claimed_job(adapter)

    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert (job.state, job.provider_job_id) == (JobState.SUBMITTED, "pj-found")
    assert [e.provider_job_id for e in _submitted(world)] == ["pj-found"]
    assert len(_announced(world)) == 1
    assert len(adapter.submits) == 1
    assert [r.idempotency_key for r in adapter.lookups] == [_key(held)]


async def test_unknown_outcome_not_found_by_reference_is_submitted_again() -> None:
    adapter = FakeAdapter(
        [SubmitOutcomeUnknown("reset"), result("pj-2")], guarantees=FINDABLE_ONLY, found=None
    )
    world, held = await claimed_job(adapter)

    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert (job.state, job.provider_job_id) == (JobState.SUBMITTED, "pj-2")
    assert len(adapter.submits) == 2
    assert [r.idempotency_key for r in adapter.submits] == [_key(held)] * 2
    assert world.store.ops()[2:] == [
        "record_submit_started",
        "submit",
        "breaker_failure",
        "find_by_reference",
        "record_submit_started",
        "submit",
        "mark_submitted",
        "breaker_success",
    ]
    assert job.submit_tries == 2


async def test_unknown_outcome_on_an_idempotent_provider_is_replayed_with_the_same_key() -> None:
    adapter = FakeAdapter(
        [SubmitOutcomeUnknown("reset"), result("pj-1", replayed=True)], guarantees=IDEMPOTENT_ONLY
    )
    world, held = await claimed_job(adapter)

    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert (job.state, job.provider_job_id) == (JobState.SUBMITTED, "pj-1")
    assert [r.idempotency_key for r in adapter.submits] == [_key(held)] * 2
    assert adapter.lookups == []
    assert len(_submitted(world)) == 1
    assert len(_announced(world)) == 1


async def _recovered_in_doubt(adapter: FakeAdapter) -> tuple[World, HeldClaim]:
    """A claim whose first holder marked its call started, then died; recovered by replica-b."""
    world, first = await claimed_job(adapter)
    async with world.store.uow() as uow:
        await uow.jobs.record_submit_started(first.claim, 30)
        await uow.commit()
    held = await world.steal(first.claim.generation_id)
    return world, HeldClaim(claim=held, valid_until=first.valid_until)


async def test_a_claim_recovered_in_doubt_without_lookup_fails_with_no_provider_call() -> None:
    world, held = await _recovered_in_doubt(FakeAdapter([result()], guarantees=UNSAFE))
    assert held.claim.in_doubt
    assert held.claim.lease_token is not None

    await submit_claimed(world.deps, held)

    _assert_failed(world, held, "submission_outcome_unknown")
    assert world.adapter.submits == []
    assert world.adapter.lookups == []


async def test_a_claim_recovered_in_doubt_is_looked_up_not_resubmitted() -> None:
    adapter = FakeAdapter([], guarantees=FINDABLE_ONLY, found=result("pj-first"))
    world, held = await _recovered_in_doubt(adapter)

    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert (job.state, job.provider_job_id, job.lease_token) == (
        JobState.SUBMITTED,
        "pj-first",
        None,
    )
    assert adapter.submits == []
    assert [r.idempotency_key for r in adapter.lookups] == [_key(held)]


async def test_a_provider_call_outliving_the_submit_budget_is_in_doubt() -> None:
    adapter = FakeAdapter([result()], guarantees=UNSAFE, on_submit=hang)
    world, held = await claimed_job(adapter, submit_budget_s=0.05)

    await submit_claimed(world.deps, held)

    _assert_failed(world, held, "submission_outcome_unknown")
    assert len(adapter.submits) == 1
    assert adapter.script == [result()]  # the call never answered
    assert held.call_started


@pytest.mark.parametrize(
    "escaped",
    [TimeoutError("read timed out"), httpx.ReadError("reset"), ConnectionResetError("reset")],
    ids=["timeout", "httpx", "connection"],
)
async def test_a_raw_network_error_escaping_the_adapter_is_in_doubt(escaped: Exception) -> None:
    adapter = FakeAdapter([escaped, result()], guarantees=UNSAFE)
    world, held = await claimed_job(adapter)

    await submit_claimed(world.deps, held)

    _assert_failed(world, held, "submission_outcome_unknown")
    assert len(adapter.submits) == 1  # never a second paid job


async def test_a_database_blip_after_the_provider_accepted_is_retried_not_left_in_doubt() -> None:
    adapter = FakeAdapter([result("pj-1")], guarantees=UNSAFE)
    world, held = await claimed_job(adapter)

    async def lose_the_database(_: Any) -> None:
        world.store.failing_commits = 2  # the next two transactions fail

    adapter.on_submit = lose_the_database
    await submit_claimed(world.deps, held)

    job = world.store.job(held.claim.generation_id)
    assert (job.state, job.provider_job_id) == (JobState.SUBMITTED, "pj-1")
    assert len(adapter.submits) == 1
    assert world.store.failing_commits == 0


# -- refusals spend no attempt ----------------------------------------------------------------


async def test_rate_limits_do_not_use_up_the_submit_tries_of_a_non_idempotent_provider() -> None:
    tries = 2
    world = make_world(
        FakeAdapter([RateLimited("slow", retry_after_s=1)] * tries + [result("pj-1")]),
        max_submit_tries=tries,
    )
    event = await world.queue()
    for _ in range(tries):
        held = await world.claim()
        await submit_claimed(world.deps, held)
        assert world.store.job(event.generation_id).state is JobState.QUEUED
        world.store.account().cooldown_until = None  # the cooldown has passed
    held = await world.claim()

    await submit_claimed(world.deps, held)

    job = world.store.job(event.generation_id)
    assert (job.state, job.provider_job_id) == (JobState.SUBMITTED, "pj-1")
    assert len(world.adapter.submits) == tries + 1

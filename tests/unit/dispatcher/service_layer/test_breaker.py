"""The circuit breaker per provider account, on the fake unit of work (which mirrors its SQL):
repeated transient failures open it, an open account takes no claims, the first claim after the
pause is a lone probe, success closes it and failure re-opens it for longer. Billed once: an
in-doubt submission is never moved to another account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from genbus.dispatcher.domain.model import (
    AccountStatus,
    BreakerState,
    JobState,
    breaker_pause_s,
)
from genbus.dispatcher.service_layer import accounts
from genbus.dispatcher.service_layer.dispatch_status import dispatch_status
from genbus.dispatcher.service_layer.observability import DispatchGauges
from genbus.dispatcher.service_layer.submission import submit_claimed
from genbus.providers import (
    ConcurrencyLimited,
    Credentials,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    SubmitOutcomeUnknown,
)
from tests.unit.dispatcher.fakes import (
    ACCOUNT,
    API_KEY,
    IDEMPOTENT_ONLY,
    OWNER,
    PROVIDER,
    SAFE,
    UNSAFE,
    FakeAdapter,
    World,
    make_world,
    result,
)

pytestmark = pytest.mark.service_layer

OPEN_S = 10.0
MAX_S = 300.0


def _world(adapter: FakeAdapter, *, failures: int = 3, tries: int = 10, **settings: Any) -> World:
    world = make_world(
        adapter,
        breaker_failures=failures,
        breaker_open_s=OPEN_S,
        breaker_open_max_s=MAX_S,
        max_submit_tries=tries,
        **settings,
    )
    world.store.account().max_concurrent = 5  # capacity is never why a claim is refused here
    return world


def _trips() -> float:
    labels = {"provider": PROVIDER}
    return REGISTRY.get_sample_value("genbus_account_breaker_trips_total", labels) or 0.0


async def _claim_or_none(world: World) -> Any:
    async with world.store.uow() as uow:
        claim = await uow.jobs.claim_next(OWNER, world.deps.settings.lease_s)
        await uow.commit()
    return claim


async def _submit_next(world: World) -> Any:
    held = await world.claim()
    await submit_claimed(world.deps, held)
    return world.store.job(held.claim.generation_id)


def _pass_time(world: World, seconds: float) -> None:
    world.store.clock_offset += timedelta(seconds=seconds)


async def _open(world: World) -> Any:
    """Three 503s on one job: the breaker opens; the job that tripped it."""
    await world.queue()
    return await _submit_next(world)


async def test_the_breaker_opens_after_n_transient_failures_in_a_row_and_requeues_the_job() -> None:
    world = _world(FakeAdapter([ProviderUnavailable("503")] * 3, guarantees=SAFE))
    trips = _trips()

    job = await _open(world)

    account = world.store.account()
    assert (account.breaker_opened_count, account.breaker_failures) == (1, 0)
    assert account.breaker_open_until is not None
    pause = (account.breaker_open_until - world.store.now()).total_seconds()
    assert OPEN_S - 1 < pause <= OPEN_S
    assert account.status is AccountStatus.ACTIVE
    assert account.cooldown_until is None  # not a cooldown: told apart in the view
    # Not hammered a 4th time, not failed: back in the queue without spending an attempt.
    assert len(world.adapter.submits) == 3
    assert (job.state, job.account_id, job.attempt, job.submit_tries) == (
        JobState.QUEUED,
        None,
        1,
        0,
    )
    assert job.last_error is not None
    assert job.last_error["code"] == "account_breaker_open"
    # Only the api is told it is retrying.
    assert [b.name for b, _ in world.store.events] == ["waiting"]
    assert _trips() == trips + 1


async def test_failures_below_the_threshold_do_not_open_it_and_a_success_resets_them() -> None:
    world = _world(FakeAdapter([ProviderError("500")] * 2 + [result()], guarantees=SAFE))
    await world.queue()

    job = await _submit_next(world)

    assert job.state is JobState.SUBMITTED
    account = world.store.account()
    assert (account.breaker_failures, account.breaker_opened_count) == (0, 0)
    assert world.store.ops().count("breaker_failure") == 2
    assert world.store.ops()[-1] == "breaker_success"


async def test_an_open_account_takes_no_claims_and_is_shown_open() -> None:
    world = _world(FakeAdapter([ProviderUnavailable("503")] * 3, guarantees=SAFE))
    await _open(world)
    await world.queue()

    assert await _claim_or_none(world) is None
    _pass_time(world, OPEN_S - 1)
    assert await _claim_or_none(world) is None

    view = await accounts.get_account(world.store.uow(), ACCOUNT)
    assert view.status is AccountStatus.ACTIVE
    assert view.breaker is BreakerState.OPEN
    assert view.as_dict()["breaker"]["state"] == "open"
    assert view.as_dict()["breaker"]["open_until"] is not None
    status = await dispatch_status(world.store.uow())
    assert status["in_flight"][0]["breaker"] == "open"
    assert status["accounts"]["by_provider"][PROVIDER]["usable"] == 0
    async with world.store.uow() as uow:
        wake_at = await uow.jobs.next_wake_at()
    assert wake_at == world.store.account().breaker_open_until  # woken when it half-opens

    await DispatchGauges(world.store.uow).refresh()
    labels = {"provider": PROVIDER, "account": ACCOUNT}
    assert REGISTRY.get_sample_value("genbus_account_breaker_open", labels) == 1.0
    assert REGISTRY.get_sample_value("genbus_account_slots", {**labels, "state": "free"}) == 0.0


async def test_after_the_pause_one_probe_goes_through_and_its_success_closes_the_breaker() -> None:
    world = _world(FakeAdapter([ProviderUnavailable("503")] * 3 + [result("pj-probe")]))
    first = await _open(world)
    second = await world.queue()
    _pass_time(world, OPEN_S + 0.1)

    probe = await world.claim()
    # Half-open: one probe at a time, although the account has free slots.
    assert world.store.busy() == 1
    assert await _claim_or_none(world) is None
    view = await accounts.get_account(world.store.uow(), ACCOUNT)
    assert view.breaker is BreakerState.HALF_OPEN
    assert probe.claim.breaker_dirty

    await submit_claimed(world.deps, probe)

    assert world.store.job(probe.claim.generation_id).state is JobState.SUBMITTED
    account = world.store.account()
    assert (account.breaker_failures, account.breaker_opened_count) == (0, 0)
    assert account.breaker_open_until is None
    # Closed: taken again as usual.
    claim = await _claim_or_none(world)
    assert claim is not None
    assert {claim.generation_id, probe.claim.generation_id} == {
        first.generation_id,
        second.generation_id,
    }
    await DispatchGauges(world.store.uow).refresh()
    labels = {"provider": PROVIDER, "account": ACCOUNT}
    assert REGISTRY.get_sample_value("genbus_account_breaker_open", labels) == 0.0


async def test_a_failed_probe_reopens_it_for_twice_as_long_and_requeues_the_probe() -> None:
    world = _world(FakeAdapter([ProviderUnavailable("503")] * 4, guarantees=SAFE))
    first = await _open(world)
    _pass_time(world, OPEN_S + 0.1)
    trips = _trips()

    job = await _submit_next(world)

    assert job.generation_id == first.generation_id
    assert len(world.adapter.submits) == 4  # one probe call, not retried on the account
    assert (job.state, job.attempt, job.submit_tries) == (JobState.QUEUED, 1, 0)
    account = world.store.account()
    assert account.breaker_opened_count == 2
    assert account.breaker_open_until is not None
    pause = (account.breaker_open_until - world.store.now()).total_seconds()
    assert 2 * OPEN_S - 1 < pause <= 2 * OPEN_S
    assert _trips() == trips + 1
    assert await _claim_or_none(world) is None


async def test_the_pause_doubles_up_to_its_cap() -> None:
    assert [breaker_pause_s(n, OPEN_S, MAX_S) for n in (1, 2, 3, 5, 6, 20)] == [
        10.0,
        20.0,
        40.0,
        160.0,
        300.0,
        300.0,
    ]
    world = _world(FakeAdapter([ProviderUnavailable("503")], guarantees=SAFE))
    account = world.store.account()
    account.breaker_opened_count = 9  # half-open after its 9th trip in a row
    account.breaker_open_until = world.store.now() - timedelta(seconds=1)
    await world.queue()

    await _submit_next(world)

    account = world.store.account()
    assert account.breaker_opened_count == 10
    assert account.breaker_open_until is not None
    pause = (account.breaker_open_until - world.store.now()).total_seconds()
    assert MAX_S - 1 < pause <= MAX_S


@pytest.mark.parametrize(
    "refusal",
    [RateLimited("slow down", retry_after_s=0), ConcurrencyLimited("busy", retry_after_s=0)],
    ids=["rate-limited", "concurrency-limited"],
)
async def test_rate_and_concurrency_limits_are_not_breaker_failures(refusal: Any) -> None:
    world = _world(FakeAdapter([refusal] * 4, guarantees=SAFE), failures=2)

    for _ in range(4):
        await world.queue()
        job = await _submit_next(world)
        assert job.state is JobState.QUEUED
        world.store.account().cooldown_until = None  # the limit's own behaviour, done with

    account = world.store.account()
    assert (account.breaker_failures, account.breaker_opened_count) == (0, 0)
    assert "breaker_failure" not in world.store.ops()


async def test_work_moves_to_a_healthy_account_with_the_same_attempt() -> None:
    world = _world(FakeAdapter([ProviderUnavailable("503")] * 3 + [result("pj-ok")]))
    world.store.account().priority = 10  # the failing account is preferred while closed
    healthy = world.store.add_account(
        world.cipher.encrypt(Credentials(api_key=API_KEY)), account_id="acc-2"
    )
    first = await _open(world)
    key = world.adapter.submits[0].idempotency_key

    job = await _submit_next(world)

    assert job.generation_id == first.generation_id
    assert (job.state, job.account_id, job.attempt) == (JobState.SUBMITTED, healthy.id, 1)
    # Nothing was created on the first account (it refused): the same key is safe elsewhere.
    assert world.adapter.submits[-1].idempotency_key == key
    assert world.store.account().breaker_opened_count == 1  # still open: no success there


async def test_an_in_doubt_failure_counts_but_the_job_is_never_moved_to_another_account() -> None:
    world = _world(FakeAdapter([SubmitOutcomeUnknown("lost")], guarantees=UNSAFE), failures=1)
    world.store.add_account(world.cipher.encrypt(Credentials(api_key=API_KEY)), account_id="acc-2")
    await world.queue()
    trips = _trips()

    job = await _submit_next(world)

    assert world.store.account().breaker_opened_count == 1
    assert _trips() == trips + 1
    # Billed once: the answer was lost, so the job is not resubmitted anywhere.
    assert (job.state, job.account_id) == (JobState.FAILED, ACCOUNT)
    assert job.last_error is not None
    assert job.last_error["code"] == "submission_outcome_unknown"
    assert len(world.adapter.submits) == 1


async def test_an_in_doubt_replay_stays_on_its_account_and_its_success_closes_the_breaker() -> None:
    adapter = FakeAdapter(
        [SubmitOutcomeUnknown("lost"), result("pj-1", replayed=True)], guarantees=IDEMPOTENT_ONLY
    )
    world = _world(adapter, failures=1)
    await world.queue()

    job = await _submit_next(world)

    assert (job.state, job.account_id, job.provider_job_id) == (
        JobState.SUBMITTED,
        ACCOUNT,
        "pj-1",
    )
    assert len({r.idempotency_key for r in adapter.submits}) == 1
    assert world.store.ops().count("breaker_failure") == 1
    assert world.store.account().breaker_opened_count == 0  # the replay's answer closed it


async def test_an_operator_enable_closes_the_breaker() -> None:
    world = _world(FakeAdapter([ProviderUnavailable("503")] * 3, guarantees=SAFE))
    await _open(world)

    view = await accounts.enable_account(world.store.uow(), ACCOUNT)

    assert view.breaker is BreakerState.CLOSED
    assert await _claim_or_none(world) is not None

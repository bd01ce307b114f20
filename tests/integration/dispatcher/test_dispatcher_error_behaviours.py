"""Each provider error class produces its one behaviour (genbus.providers.errors.BEHAVIOURS),
driven through the real scheduler against a real sim server and Postgres."""

from __future__ import annotations

import pytest
from dispatcher_harness import Dispatcher, eventually

from genbus.dispatcher.service_layer import accounts

pytestmark = pytest.mark.integration


async def test_rate_limit_cools_the_account_down_and_requeues_without_spending_an_attempt(
    dispatcher: Dispatcher,
) -> None:
    account = await dispatcher.add_account("only", "sim-key-1")
    await dispatcher.sim.configure(rate_limit_rate=1.0, retry_after_s=1)
    async with dispatcher.running():
        [gid] = await dispatcher.queue()
        view = await eventually(
            lambda: dispatcher.account(account.id), lambda a: a.cooldown_until is not None
        )
        await dispatcher.sim.configure(rate_limit_rate=0.0)
        assert view.status == "cooling_down"
        assert view.status_reason == "rate_limited"
        job = await eventually(lambda: dispatcher.job(gid), lambda j: j["state"] == "submitted")

    assert view.cooldown_until is not None
    # Not used before the cooldown ended (Retry-After: 1 s), used right after.
    assert job["submitted_at"] >= view.cooldown_until
    assert (job["submitted_at"] - view.cooldown_until).total_seconds() < 1.0
    assert job["account_id"] == account.id
    assert (job["attempt"], job["submit_tries"]) == (1, 0)  # no attempt spent
    stats = await dispatcher.sim.key_stats("sim-key-1")
    assert stats["rejections"] == {"rate_limited": 1}
    assert stats["submissions"] == 1


async def test_concurrency_limit_cools_down_briefly_and_requeues_on_another_account(
    dispatcher: Dispatcher,
) -> None:
    # The provider allows 1 unfinished job per key; account A claims 3 (misconfigured).
    await dispatcher.sim.configure(per_key_concurrency=1, enforce_concurrency=True, duration_s=5)
    a = await dispatcher.add_account("a", "sim-key-1", max_concurrent=3, priority=1)
    b = await dispatcher.add_account("b", "sim-key-2", max_concurrent=3)
    async with dispatcher.running():
        ids = await dispatcher.queue(2)
        jobs = await eventually(
            lambda: dispatcher.jobs(ids), lambda js: all(j["state"] == "submitted" for j in js)
        )
        view = await dispatcher.account(a.id)

    assert sorted(j["account_id"] for j in jobs) == [a.id, b.id]
    assert all((j["attempt"], j["submit_tries"]) == (1, 0) for j in jobs)
    assert view.status == "cooling_down"
    assert view.status_reason == "concurrency_limit"
    assert (await dispatcher.sim.key_stats("sim-key-1"))["rejections"] == {"concurrency_limit": 1}
    stats = await dispatcher.sim.stats()
    assert stats["concurrency_violations"] == 0
    assert stats["duplicate_references"] == 0


async def test_quota_exhausted_marks_the_account_exhausted_and_others_take_the_work(
    dispatcher: Dispatcher,
) -> None:
    await dispatcher.sim.configure(per_key_credits={"sim-key-1": 0})
    spent = await dispatcher.add_account("spent", "sim-key-1", priority=5)
    funded = await dispatcher.add_account("funded", "sim-key-2", max_concurrent=10)
    async with dispatcher.running():
        first = await dispatcher.queue(3)
        await eventually(
            lambda: dispatcher.states(first), lambda s: s == ["submitted"] * 3, timeout=10
        )
        refusals = (await dispatcher.sim.key_stats("sim-key-1"))["rejections"]
        # Exhausted: skipped from now on, although it has the higher priority.
        later = await dispatcher.queue(3)
        jobs = await eventually(
            lambda: dispatcher.jobs(first + later),
            lambda js: all(j["state"] == "submitted" for j in js),
        )
        view = await dispatcher.account(spent.id)

    assert {j["account_id"] for j in jobs} == {funded.id}
    assert all((j["attempt"], j["submit_tries"]) == (1, 0) for j in jobs)
    assert view.status == "exhausted"
    assert view.credits == 0
    assert view.status_reason is not None
    assert "quota_exhausted" in view.status_reason
    key = await dispatcher.sim.key_stats("sim-key-1")
    assert key["submissions"] == 0
    assert 1 <= refusals["quota_exhausted"] <= 3  # one per job claimed before the first answer
    assert key["rejections"] == refusals  # never tried again


async def test_auth_failure_disables_the_account_with_the_reason(dispatcher: Dispatcher) -> None:
    revoked = await dispatcher.add_account("revoked", "sim-key-unknown", priority=5)
    good = await dispatcher.add_account("good", "sim-key-2", max_concurrent=10)
    async with dispatcher.running():
        first = await dispatcher.queue(2)
        await eventually(lambda: dispatcher.states(first), lambda s: s == ["submitted"] * 2)
        later = await dispatcher.queue(2)
        jobs = await eventually(
            lambda: dispatcher.jobs(first + later),
            lambda js: all(j["state"] == "submitted" for j in js),
        )
        view = await dispatcher.account(revoked.id)

    assert {j["account_id"] for j in jobs} == {good.id}
    assert view.status == "disabled"
    assert view.status_reason is not None
    assert "unauthorized" in view.status_reason
    assert "sim-key-unknown" not in view.status_reason


async def test_a_disabled_account_is_not_used_until_enabled(dispatcher: Dispatcher) -> None:
    a = await dispatcher.add_account("a", "sim-key-1", priority=5)
    b = await dispatcher.add_account("b", "sim-key-2", max_concurrent=10)
    await accounts.disable_account(dispatcher.deps.uow(), a.id, "invoice unpaid")
    async with dispatcher.running():
        while_disabled = await dispatcher.queue(4)
        jobs = await eventually(
            lambda: dispatcher.jobs(while_disabled),
            lambda js: all(j["state"] == "submitted" for j in js),
        )
        assert {j["account_id"] for j in jobs} == {b.id}
        assert (await dispatcher.sim.key_stats("sim-key-1"))["submissions"] == 0

        await accounts.enable_account(dispatcher.deps.uow(), a.id)
        dispatcher.deps.wake.set()
        after = await dispatcher.queue(2)
        jobs = await eventually(
            lambda: dispatcher.jobs(after), lambda js: all(j["state"] == "submitted" for j in js)
        )
    assert {j["account_id"] for j in jobs} == {a.id}


async def test_content_rejection_fails_at_once_with_its_code(dispatcher: Dispatcher) -> None:
    await dispatcher.add_account("a", "sim-key-1")
    async with dispatcher.running():
        [gid] = await dispatcher.queue(prompt="something [reject] worthy")
        job = await eventually(lambda: dispatcher.job(gid), lambda j: j["state"] == "failed")

    assert job["last_error"]["code"] == "content_rejected"
    assert job["submit_tries"] == 0
    [event] = [e for e in await dispatcher.published() if e["generation_id"] == str(gid)]
    assert event["status"] == "failed"
    assert event["error"]["code"] == "content_rejected"
    key = await dispatcher.sim.key_stats("sim-key-1")
    assert key["rejections"] == {"content_rejected": 1}  # asked once, never retried
    assert key["submissions"] == 0


async def test_transient_errors_are_retried_then_fail_with_provider_unavailable(
    dispatcher: Dispatcher,
) -> None:
    account = await dispatcher.add_account("a", "sim-key-1")
    await dispatcher.sim.configure(error_5xx_rate=1.0)
    async with dispatcher.running():
        [gid] = await dispatcher.queue()
        job = await eventually(lambda: dispatcher.job(gid), lambda j: j["state"] == "failed")

    tries = dispatcher.settings.max_submit_tries
    assert job["last_error"]["code"] == "provider_unavailable"
    told = [e for e in await dispatcher.published() if e["generation_id"] == str(gid)]
    # The api was told once that it is retrying (not at every try), then that it failed.
    waiting, event = told
    assert (waiting["reason"], waiting["sequence"]) == ("retrying", 1)
    assert event["error"]["code"] == "provider_unavailable"
    refusals = (await dispatcher.sim.key_stats("sim-key-1"))["rejections"]
    assert sum(refusals.values()) == tries  # exactly the configured attempts, then stop
    assert set(refusals) <= {"internal_error", "unavailable"}
    view = await dispatcher.account(account.id)
    assert view.status == "active"  # the account is not to blame
    assert view.busy == 0  # the slot went back when the job failed

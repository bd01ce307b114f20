"""Account selection against Postgres: the preferred account wins when eligible, the daily cap
is counted from the day's submissions, a cooldown is honoured."""

from __future__ import annotations

import pytest
from dispatcher_harness import Dispatcher, eventually

pytestmark = pytest.mark.integration


async def test_the_preferred_account_wins_when_eligible(dispatcher: Dispatcher) -> None:
    high = await dispatcher.add_account("high", "sim-key-1", priority=9, max_concurrent=10)
    low = await dispatcher.add_account("low", "sim-key-2", max_concurrent=1)
    async with dispatcher.running():
        [preferred] = await dispatcher.queue(preferred_account_id=low.id)
        await eventually(lambda: dispatcher.job(preferred), lambda j: j["state"] == "submitted")
        # `low` is now full: not eligible, so the preference gives way.
        [full] = await dispatcher.queue(preferred_account_id=low.id)
        [unknown] = await dispatcher.queue(preferred_account_id="no-such-account")
        jobs = await eventually(
            lambda: dispatcher.jobs([preferred, full, unknown]),
            lambda js: all(j["state"] == "submitted" for j in js),
        )
    assert [j["account_id"] for j in jobs] == [low.id, high.id, high.id]


async def test_an_account_at_its_daily_cap_is_skipped_even_with_free_slots(
    dispatcher: Dispatcher,
) -> None:
    capped = await dispatcher.add_account("capped", "sim-key-1", priority=9, daily_cap=2)
    other = await dispatcher.add_account("other", "sim-key-2", max_concurrent=10)
    async with dispatcher.running():
        first = await dispatcher.queue(5)
        jobs = await eventually(
            lambda: dispatcher.jobs(first), lambda js: all(j["state"] == "submitted" for j in js)
        )
        assert sorted(j["account_id"] for j in jobs) == [capped.id] * 2 + [other.id] * 3
        # Its jobs end, so its slots are free again; the day's submissions still count.
        for job in jobs:
            if job["account_id"] == capped.id:
                await dispatcher.complete(job["generation_id"])
        later = await dispatcher.queue(3)
        jobs = await eventually(
            lambda: dispatcher.jobs(later), lambda js: all(j["state"] == "submitted" for j in js)
        )
        view = await dispatcher.account(capped.id)
    assert {j["account_id"] for j in jobs} == {other.id}
    assert (view.used_today, view.daily_cap, view.busy) == (2, 2, 0)
    assert (await dispatcher.sim.key_stats("sim-key-1"))["submissions"] == 2


async def test_a_cooling_account_is_skipped_until_its_cooldown_ends(
    dispatcher: Dispatcher,
) -> None:
    cool = await dispatcher.add_account("cool", "sim-key-1", priority=9, max_concurrent=10)
    warm = await dispatcher.add_account("warm", "sim-key-2", max_concurrent=10)
    uow = dispatcher.deps.uow()
    async with uow:
        await uow.accounts.cool_down(cool.id, 1.0, "rate_limited")
        await uow.commit()
    view = await dispatcher.account(cool.id)
    assert view.status == "cooling_down"
    assert view.cooldown_until is not None
    async with dispatcher.running():
        during = await dispatcher.queue(3)
        jobs = await eventually(
            lambda: dispatcher.jobs(during), lambda js: all(j["state"] == "submitted" for j in js)
        )
        assert {j["account_id"] for j in jobs} == {warm.id}
        assert all(j["submitted_at"] < view.cooldown_until for j in jobs)
        await eventually(
            lambda: dispatcher.account(cool.id), lambda a: a.status == "active", timeout=5
        )
        after = await dispatcher.queue(2)
        jobs = await eventually(
            lambda: dispatcher.jobs(after), lambda js: all(j["state"] == "submitted" for j in js)
        )
    assert {j["account_id"] for j in jobs} == {cool.id}
    assert all(j["submitted_at"] >= view.cooldown_until for j in jobs)


async def test_generations_queued_together_are_claimed_in_arrival_order(
    dispatcher: Dispatcher,
) -> None:
    await dispatcher.add_account("only", "sim-key-1", max_concurrent=20)
    for _ in range(3):  # random ids: their order must not decide
        arrived = await dispatcher.queue(6, together=True)
        claimed = []
        for _ in arrived:
            uow = dispatcher.deps.uow()
            async with uow:
                claim = await uow.jobs.claim_next("tester", 30.0)
                await uow.commit()
            assert claim is not None
            claimed.append(claim.generation_id)
        assert claimed == arrived
        for generation_id in arrived:
            await dispatcher.complete(generation_id)

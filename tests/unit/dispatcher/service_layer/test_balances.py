"""Provider balances on the fakes: read into the account's credits, an account that cannot pay
is offered no work, an exhausted one that can pay again is active again, a quota_exhausted
refusal asks for a fresh read."""

from __future__ import annotations

import pytest

from genbus.dispatcher.domain.model import AccountStatus
from genbus.dispatcher.service_layer.balances import refresh_balances
from genbus.providers import ProviderUnavailable, QuotaExhausted
from tests.unit.dispatcher.fakes import API_KEY, FakeAdapter, claimed_job, make_world

pytestmark = pytest.mark.service_layer


async def test_a_balance_read_is_kept_and_an_account_that_cannot_pay_gets_no_work() -> None:
    world = make_world()
    world.adapter.balance_answer = 0
    [account_id] = world.store.tables.accounts
    assert await refresh_balances(world.deps) == {account_id: 0}
    assert world.adapter.balance_reads[0].get("api_key") == API_KEY
    assert world.store.tables.accounts[account_id].credits == 0
    await world.queue()
    async with world.store.uow() as uow:
        assert await uow.accounts.available() == []
        assert await uow.jobs.claim_next("owner-1", 30) is None
    world.adapter.balance_answer = 40
    await refresh_balances(world.deps)
    async with world.store.uow() as uow:
        assert [a.id for a in await uow.accounts.available()] == [account_id]


async def test_an_exhausted_account_with_credits_again_is_active_again() -> None:
    world = make_world()
    [account_id] = world.store.tables.accounts
    async with world.store.uow() as uow:
        await uow.accounts.mark_exhausted(account_id, "no credits")
        await uow.commit()
    world.adapter.balance_answer = 12
    world.deps.wake.clear()
    await refresh_balances(world.deps)
    row = world.store.tables.accounts[account_id]
    assert (row.status, row.credits, row.status_reason) == (AccountStatus.ACTIVE, 12, None)
    assert world.deps.wake.is_set()  # the scheduler looks again at once


async def test_unknown_or_unreadable_balances_change_nothing() -> None:
    world = make_world()
    [account_id] = world.store.tables.accounts
    world.adapter.balance_answer = None  # the provider has no balance API
    assert await refresh_balances(world.deps) == {}
    world.adapter.balance_answer = ProviderUnavailable("down")
    assert await refresh_balances(world.deps) == {}
    assert world.store.tables.accounts[account_id].credits is None


async def test_a_quota_exhausted_refusal_asks_for_a_balance_read() -> None:
    from genbus.dispatcher.service_layer.submission import submit_claimed

    world, held = await claimed_job(FakeAdapter([QuotaExhausted("spent")]))
    assert not world.deps.balance_check.is_set()
    await submit_claimed(world.deps, held)
    [account] = world.store.tables.accounts.values()
    assert account.status is AccountStatus.EXHAUSTED
    assert world.deps.balance_check.is_set()

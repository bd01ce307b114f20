"""Provider balances on real Postgres and the real sim: read into each account's credits; an
account that cannot pay is skipped before any refused submission; one topped up is used again."""

from __future__ import annotations

import pytest
from dispatcher_harness import Dispatcher

from genbus.dispatcher.service_layer.balances import refresh_balances
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_an_account_that_cannot_pay_is_skipped_without_a_refused_submission(
    dispatcher: Dispatcher,
) -> None:
    await dispatcher.sim.configure(per_key_credits={"sim-key-1": 0, "sim-key-2": 50})
    broke = await dispatcher.add_account("broke", "sim-key-1", priority=5)
    funded = await dispatcher.add_account("funded", "sim-key-2", max_concurrent=10)
    try:
        read = await refresh_balances(dispatcher.deps)
    finally:
        await dispatcher.deps.adapters.aclose()
    assert read == {broke.id: 0, funded.id: 50}
    assert (await dispatcher.account(broke.id)).credits == 0
    async with dispatcher.running():
        ids = await dispatcher.queue(3)
        jobs = await eventually(
            lambda: dispatcher.jobs(ids), lambda js: all(j["state"] == "submitted" for j in js)
        )
    assert {j["account_id"] for j in jobs} == {funded.id}
    # Skipped before submitting: the sim never refused the broke key.
    assert (await dispatcher.sim.key_stats("sim-key-1"))["rejections"] == {}
    assert (await dispatcher.account(broke.id)).status == "active"


async def test_an_exhausted_account_topped_up_is_active_again(dispatcher: Dispatcher) -> None:
    await dispatcher.sim.configure(per_key_credits={"sim-key-1": 0})
    spent = await dispatcher.add_account("spent", "sim-key-1", max_concurrent=10)
    async with dispatcher.running():
        await dispatcher.queue(1)
        await eventually(lambda: dispatcher.account(spent.id), lambda a: a.status == "exhausted")
    assert dispatcher.deps.balance_check.is_set()  # the refusal asked for a fresh read
    await dispatcher.sim.configure(per_key_credits={"sim-key-1": 7})
    try:
        assert await refresh_balances(dispatcher.deps) == {spent.id: 7}
    finally:
        await dispatcher.deps.adapters.aclose()
    view = await dispatcher.account(spent.id)
    assert (view.status, view.credits, view.status_reason) == ("active", 7, None)

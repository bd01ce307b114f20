"""The circuit breaker per account, through the real scheduler on Postgres against two sim
servers: one answering every submission with a 5xx, one healthy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from dispatcher_harness import Dispatcher, claim_once, eventually, serve_sim
from prometheus_client import REGISTRY
from sqlalchemy import text

pytestmark = pytest.mark.integration

JOBS = 4


def _trips() -> float:
    return REGISTRY.get_sample_value("genbus_account_breaker_trips_total", {"provider": "sim"}) or 0


async def test_the_breaker_opens_work_moves_to_a_healthy_account_and_it_recovers(
    dispatcher: Dispatcher,
) -> None:
    settings = dispatcher.settings.model_copy(
        update={"breaker_failures": 2, "breaker_open_s": 1.0, "breaker_open_max_s": 2.0}
    )
    dispatcher.settings = dispatcher.deps.settings = settings
    trips = _trips()
    async with serve_sim(["sim-key-1"]) as broken:
        await broken.configure(error_5xx_rate=1.0)
        # Preferred while its breaker is closed; the healthy account has room for the batch.
        flaky = await dispatcher.add_account(
            "flaky", "sim-key-1", max_concurrent=JOBS, priority=5, base_url=broken.url
        )
        healthy = await dispatcher.add_account("healthy", "sim-key-2", max_concurrent=JOBS)
        async with dispatcher.running():
            first = await dispatcher.queue(JOBS, together=True)
            jobs = await eventually(
                lambda: dispatcher.jobs(first),
                lambda js: all(j["state"] == "submitted" for j in js),
                timeout=15,
            )
            opened = await dispatcher.account(flaky.id)
            refused = sum((await broken.key_stats("sim-key-1"))["rejections"].values())

            # Every job went to the healthy account, none failed or spent an attempt.
            assert {j["account_id"] for j in jobs} == {healthy.id}
            assert all(j["attempt"] == 1 for j in jobs)
            assert opened.breaker.value in ("open", "half_open")
            assert opened.breaker_opened_count >= 1
            assert opened.status.value == "active"  # the breaker is not a stored status
            assert _trips() >= trips + 1
            # Without the breaker each job would have tried the flaky account max_submit_tries
            # times before failing; with it, a job leaves at its first failure once it opened.
            assert settings.breaker_failures <= refused < JOBS * settings.max_submit_tries
            assert (await broken.key_stats("sim-key-1"))["submissions"] == 0

            # Healed: the healthy account is full, so the next jobs can only go to the flaky
            # one; the first after the pause is its probe, whose success closes the breaker.
            await broken.configure(error_5xx_rate=0.0)
            later = await dispatcher.queue(2)
            moved = await eventually(
                lambda: dispatcher.jobs(later),
                lambda js: all(j["state"] == "submitted" for j in js),
                timeout=15,
            )
            recovered = await dispatcher.account(flaky.id)
            accepted = (await broken.key_stats("sim-key-1"))["submissions"]

    assert {j["account_id"] for j in moved} == {flaky.id}
    assert recovered.breaker.value == "closed"
    assert (recovered.breaker_failures, recovered.breaker_opened_count) == (0, 0)
    assert recovered.breaker_open_until is None
    assert recovered.as_dict()["breaker"]["state"] == "closed"
    assert accepted == 2


async def _record_failure(dispatcher: Dispatcher, account_id: str) -> Any:
    uow = dispatcher.deps.uow()
    async with uow:
        update = await uow.accounts.record_breaker_failure(
            account_id, threshold=2, open_s=10.0, max_s=15.0
        )
        await uow.commit()
    return update


async def _end_pause(dispatcher: Dispatcher, account_id: str) -> None:
    """The pause is over (as if its time had passed)."""
    async with dispatcher.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE dispatcher.provider_accounts "
                "SET breaker_open_until = now() - interval '1 second' WHERE id = :a"
            ),
            {"a": account_id},
        )


async def test_the_breaker_sql_opens_lets_one_probe_through_and_doubles_its_pause(
    dispatcher: Dispatcher,
) -> None:
    account = await dispatcher.add_account("only", "sim-key-1", max_concurrent=5)
    await dispatcher.queue(3)

    first = await _record_failure(dispatcher, account.id)
    assert (first.state.value, first.tripped) == ("closed", False)
    assert (await dispatcher.account(account.id)).breaker_failures == 1
    opened = await _record_failure(dispatcher, account.id)
    assert (opened.state.value, opened.tripped, opened.opened_count) == ("open", True, 1)
    view = await dispatcher.account(account.id)
    assert view.breaker_open_until is not None
    assert 9 < (view.breaker_open_until - datetime.now(UTC)).total_seconds() <= 10
    assert await claim_once(dispatcher.engine) is None  # open: no claims
    # A failure while open is only counted: the pause is not extended.
    assert (await _record_failure(dispatcher, account.id)).tripped is False
    assert (await dispatcher.account(account.id)).breaker_open_until == view.breaker_open_until

    await _end_pause(dispatcher, account.id)
    assert (await dispatcher.account(account.id)).breaker.value == "half_open"
    probe = await claim_once(dispatcher.engine)
    assert probe is not None
    assert probe.breaker_dirty
    assert await claim_once(dispatcher.engine) is None  # one probe at a time

    reopened = await _record_failure(dispatcher, account.id)  # the probe failed
    assert (reopened.state.value, reopened.tripped, reopened.opened_count) == ("open", True, 2)
    assert reopened.open_until is not None
    # 10 s doubled, capped at 15 s.
    assert 14 < (reopened.open_until - datetime.now(UTC)).total_seconds() <= 15
    async with dispatcher.engine.connect() as conn:
        wake_at = await conn.scalar(
            text("SELECT breaker_open_until FROM dispatcher.provider_accounts WHERE id = :a"),
            {"a": account.id},
        )
    uow = dispatcher.deps.uow()
    async with uow:
        assert await uow.jobs.next_wake_at() == wake_at

    uow = dispatcher.deps.uow()
    async with uow:
        assert await uow.accounts.record_breaker_success(account.id)
        assert not await uow.accounts.record_breaker_success(account.id)  # clean: no write
        await uow.commit()
    closed = await dispatcher.account(account.id)
    assert (closed.breaker.value, closed.breaker_failures, closed.breaker_opened_count) == (
        "closed",
        0,
        0,
    )
    assert await claim_once(dispatcher.engine) is not None  # closed: claims as usual

"""Finished jobs are deleted after their retention, in bounded batches, on a real Postgres."""

from __future__ import annotations

from uuid import UUID

import pytest
from dispatcher_harness import Dispatcher
from prometheus_client import REGISTRY
from sqlalchemy import text

from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.service_layer import reconciler

pytestmark = pytest.mark.integration

RETENTION_H = 168.0


@pytest.fixture
def settings(database_url: str) -> DispatcherSettings:
    return DispatcherSettings(
        database_url=database_url, finished_retention_h=RETENTION_H, finished_purge_batch=2
    )


async def _set(
    dispatcher: Dispatcher,
    gid: UUID,
    state: str,
    ended_h_ago: float | None,
    held_for_s: float | None = None,
) -> None:
    async with dispatcher.engine.begin() as conn:
        await conn.execute(
            text(
                """
                UPDATE dispatcher.dispatch_jobs
                   SET state = :state,
                       finished_at = CASE WHEN CAST(:ago AS float8) IS NULL THEN NULL
                                     ELSE now() - make_interval(secs => CAST(:ago AS float8) * 3600)
                                     END,
                       slot_held_until = CASE WHEN CAST(:held AS float8) IS NULL THEN NULL
                                     ELSE now() + make_interval(secs => CAST(:held AS float8))
                                     END
                 WHERE generation_id = :g
                """
            ),
            {"g": gid, "state": state, "ago": ended_h_ago, "held": held_for_s},
        )


async def _remaining(dispatcher: Dispatcher) -> set[UUID]:
    async with dispatcher.engine.connect() as conn:
        rows = await conn.execute(text("SELECT generation_id FROM dispatcher.dispatch_jobs"))
        return {r.generation_id for r in rows}


async def test_only_old_finished_jobs_without_a_held_slot_are_purged_in_batches(
    dispatcher: Dispatcher,
) -> None:
    ids = await dispatcher.queue(8)
    old = RETENTION_H + 1
    done, failed, cancelled, released, held, recent, queued, just_old = ids
    await _set(dispatcher, done, "completed", old)
    await _set(dispatcher, failed, "failed", old)
    await _set(dispatcher, cancelled, "cancelled", old)
    await _set(dispatcher, released, "failed", old, held_for_s=-60)  # its hold has passed
    await _set(dispatcher, held, "failed", old, held_for_s=600)  # the slot is still held
    await _set(dispatcher, recent, "completed", RETENTION_H - 1)
    await _set(dispatcher, just_old, "completed", old)
    # `queued` stays queued: not finished, never purged.
    kept = {held, recent, queued}

    # One statement deletes at most its batch, whatever more is eligible.
    uow = dispatcher.deps.uow()
    async with uow:
        assert await uow.jobs.purge_finished(RETENTION_H * 3600, limit=2) == 2
        await uow.commit()
    assert len(await _remaining(dispatcher)) == 6

    # The reconciler's pass goes on in batches of `finished_purge_batch` until one comes short.
    before = _purged_total()
    assert await reconciler.purge_finished(dispatcher.deps) == 3
    assert _purged_total() - before == 3
    assert await _remaining(dispatcher) == kept
    assert await reconciler.purge_finished(dispatcher.deps) == 0


async def test_a_pass_is_bounded_by_its_batches(dispatcher: Dispatcher) -> None:
    ids = await dispatcher.queue(5)
    for gid in ids:
        await _set(dispatcher, gid, "completed", RETENTION_H + 1)

    assert await reconciler.purge_finished(dispatcher.deps, max_batches=2) == 4
    assert len(await _remaining(dispatcher)) == 1


def _purged_total() -> float:
    return REGISTRY.get_sample_value("genbus_dispatch_jobs_purged_total") or 0.0

"""The deadline sweep and the retention purges on the fake unit of work."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genbus.api.adapters.idempotency import StoredKey
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer.upkeep import (
    DEADLINE_CANCEL_REASON,
    fail_overdue_generations,
    purge_expired,
)
from genbus.contracts import CANCEL_REQUESTED, DEADLINE_EXCEEDED
from tests.unit.api.fakes import NOW, USER, FakeDatabase, generation

pytestmark = pytest.mark.service_layer

GRACE = timedelta(seconds=30)


async def test_the_sweep_fails_open_generations_past_deadline_and_grace() -> None:
    db = FakeDatabase()
    overdue_pending = generation(deadline_at=NOW - timedelta(minutes=5))
    overdue_running = generation(GenerationStatus.PROCESSING, deadline_at=NOW - timedelta(hours=1))
    within_grace = generation(deadline_at=NOW - GRACE / 2)
    not_due = generation()
    ended = generation(GenerationStatus.COMPLETED, deadline_at=NOW - timedelta(hours=1))
    db.add(overdue_pending, overdue_running, within_grace, not_due, ended)

    failed = await fail_overdue_generations(db.uow(), now=NOW, grace=GRACE)

    assert {g.id for g in failed} == {overdue_running.id, overdue_pending.id}
    for g in failed:
        stored = db.generations[g.id]
        assert (stored.status, stored.error, stored.completed_at) == (
            GenerationStatus.FAILED,
            DEADLINE_EXCEEDED,
            NOW,
        )
        assert db.changes_of(g.id) == [("generation", "failed")]
    for g in (within_grace, not_due, ended):
        assert db.generations[g.id] == g
    cancels = db.events_of(CANCEL_REQUESTED)
    assert {e.generation_id for e in cancels} == {overdue_pending.id, overdue_running.id}
    assert {e.reason for e in cancels} == {DEADLINE_CANCEL_REASON}


async def test_the_sweep_takes_at_most_its_limit_and_the_next_pass_the_rest() -> None:
    db = FakeDatabase()
    oldest = generation(deadline_at=NOW - timedelta(hours=3))
    db.add(oldest, *(generation(deadline_at=NOW - timedelta(minutes=i + 1)) for i in range(2)))
    first = await fail_overdue_generations(db.uow(), now=NOW, grace=GRACE, limit=2)
    # The longest overdue go first.
    assert len(first) == 2
    assert oldest.id in {g.id for g in first}
    assert len(await fail_overdue_generations(db.uow(), now=NOW, grace=GRACE, limit=2)) == 1
    assert await fail_overdue_generations(db.uow(), now=NOW, grace=GRACE, limit=2) == []
    assert {g.status for g in db.generations.values()} == {GenerationStatus.FAILED}
    assert len(db.events_of(CANCEL_REQUESTED)) == 3


async def _seed(db: FakeDatabase, *, keys: int, changes: int, age: timedelta) -> None:
    g = generation()
    for i in range(keys):
        db.tables.idempotency_keys[(USER, f"k{age}-{i}")] = StoredKey("h", g.id, NOW - age)
    async with db.uow() as uow:
        for _ in range(changes):
            await uow.change_log.append(
                generation_id=g.id,
                user_id=USER,
                event_type="generation",
                status="pending",
                payload={},
                at=NOW - age,
            )
        await uow.commit()


async def test_purges_go_in_bounded_batches_one_transaction_each() -> None:
    db = FakeDatabase()
    ttl = timedelta(hours=24)
    await _seed(db, keys=7, changes=3, age=ttl + timedelta(hours=1))
    await _seed(db, keys=2, changes=2, age=ttl - timedelta(hours=1))
    commits = db.commits

    purged = await purge_expired(
        db.uow, now=NOW, idempotency_ttl=ttl, change_log_ttl=ttl, batch=3, max_batches=10
    )

    assert purged == (7, 3, 0)
    # Batches of 3 keys: 3, 3, 1 (the short one ends the pass).
    assert db.commits == commits + 3
    assert len(db.tables.idempotency_keys) == 2
    assert len(db.change_log) == 2
    assert all(r.created_at > NOW - ttl for r in db.change_log)


async def test_a_purge_pass_stops_after_its_last_batch() -> None:
    db = FakeDatabase()
    ttl = timedelta(hours=1)
    await _seed(db, keys=10, changes=0, age=ttl * 2)

    assert await purge_expired(
        db.uow, now=NOW, idempotency_ttl=ttl, change_log_ttl=ttl, batch=2, max_batches=3
    ) == (6, 0, 0)
    assert len(db.tables.idempotency_keys) == 4
    assert await purge_expired(
        db.uow, now=NOW, idempotency_ttl=ttl, change_log_ttl=ttl, batch=2, max_batches=3
    ) == (4, 0, 0)
    assert db.tables.idempotency_keys == {}


async def test_daily_quota_counters_go_once_their_day_is_past_yesterday() -> None:
    db = FakeDatabase()
    today = NOW.date()
    for days_ago in (0, 1, 2, 40):
        db.tables.daily_usage[(USER, today - timedelta(days=days_ago))] = 3
    db.tables.daily_usage[("other-user", today - timedelta(days=2))] = 1
    ttl = timedelta(hours=1)

    purged = await purge_expired(db.uow, now=NOW, idempotency_ttl=ttl, change_log_ttl=ttl)

    assert purged.quota_counters == 3
    # Today's counter is the quota; yesterday's stays for a request that began before midnight.
    assert set(db.tables.daily_usage) == {(USER, today), (USER, today - timedelta(days=1))}

"""The api's sweeps: generations past their deadline, and rows past their retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from genbus.api.domain.events import cancel_requested
from genbus.api.domain.limits import quota_day
from genbus.api.domain.model import Generation
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.contracts import (
    CANCEL_REQUESTED,
    DEADLINE_EXCEEDED,
)
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

DEADLINE_CANCEL_REASON = "deadline exceeded"


async def fail_overdue_generations(
    uow: UnitOfWork, *, now: datetime, grace: timedelta, limit: int = 500
) -> list[Generation]:
    """Fail generations still open `grace` after their deadline (`deadline_exceeded`), and ask
    the dispatcher to stop whatever it still does for them."""
    async with uow:
        failed = await uow.generations.fail_overdue(
            due_before=now - grace, error=DEADLINE_EXCEEDED, at=now, limit=limit
        )
        for generation in failed:
            await uow.publish(
                CANCEL_REQUESTED, cancel_requested(generation, DEADLINE_CANCEL_REASON, now)
            )
        await uow.record_changes(failed)
        await uow.commit()
    for generation in failed:
        log.warning("generation failed: deadline exceeded", generation_id=str(generation.id))
    return failed


#: Rows deleted per statement and statements per pass: every statement stays short (well
#: inside the statement timeout) however large the backlog; the next pass takes the rest.
PURGE_BATCH = 1000
PURGE_MAX_BATCHES = 20


class Purged(NamedTuple):
    """Rows one purge pass deleted."""

    idempotency_keys: int
    change_log: int
    quota_counters: int


async def purge_expired(
    new_uow: Callable[[], UnitOfWork],
    *,
    now: datetime,
    idempotency_ttl: timedelta,
    change_log_ttl: timedelta,
    batch: int = PURGE_BATCH,
    max_batches: int = PURGE_MAX_BATCHES,
) -> Purged:
    """Forget idempotency keys and change-log rows past their retention, and the daily quota
    counters of days before yesterday (only today's is read), in bounded batches (one
    transaction each); returns the counts."""
    purged = Purged(0, 0, 0)
    counters_before = quota_day(now) - timedelta(days=1)
    for _ in range(max_batches):
        uow = new_uow()
        async with uow:
            this_batch = Purged(
                await uow.idempotency.purge(before=now - idempotency_ttl, limit=batch),
                await uow.change_log.purge(before=now - change_log_ttl, limit=batch),
                await uow.usage.purge(before=counters_before, limit=batch),
            )
            await uow.commit()
        purged = Purged(*(total + more for total, more in zip(purged, this_batch, strict=True)))
        if all(count < batch for count in this_batch):
            break
    return purged

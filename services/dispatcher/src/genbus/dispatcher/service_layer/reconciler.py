"""Moves stuck work forward: jobs past their deadline end failed `deadline_exceeded`.

Queued jobs fail at their deadline. Submitted jobs are ended by the poller; if nothing has
ended one by its deadline plus `submitted_deadline_grace_s` (a poller down, a lost event), the
dispatcher cancels it at the provider, fails it and releases its slot: no job can hold a slot
forever, whatever the poller does. Expired claim leases are recovered by the scheduler itself;
unpublished outbox rows by the relay.

Every `finished_purge_interval_s` it also deletes jobs that ended more than
`finished_retention_h` ago (and hold no slot any more), in transactions of at most
`finished_purge_batch` rows, so the queue table does not grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib

from genbus.contracts import (
    COMPLETED,
    DEADLINE_EXCEEDED,
    CompletionStatus,
    GenerationCompleted,
    GenerationRequested,
)
from genbus.dispatcher.adapters.repository import JobSnapshot
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.domain.model import JobState, slot_hold_s
from genbus.dispatcher.service_layer.handlers import provider_job_of
from genbus.dispatcher.service_layer.metrics import DISPATCH_METRICS
from genbus.dispatcher.service_layer.provider_cancel import cancel_at_provider
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


async def fail_overdue_queued(deps: Deps) -> int:
    uow = deps.uow()
    async with uow:
        overdue = await uow.jobs.overdue_queued()
        await uow.jobs.lock_users_of(overdue)  # before the first change: see `lock_users`
        for generation_id in overdue:
            job = await uow.jobs.finish(
                generation_id,
                JobState.FAILED,
                DEADLINE_EXCEEDED.model_dump(),
                only_from=(JobState.QUEUED,),
            )
            if job is not None:
                await _stage_deadline_exceeded(uow, job)
        await uow.commit()
    if overdue:
        log.warning("failed overdue queued jobs", count=len(overdue))
    return len(overdue)


async def fail_overdue_submitted(deps: Deps) -> int:
    """Fail submitted jobs past deadline + grace, release their slots, cancel at the provider."""
    ended: list[JobSnapshot] = []
    uow = deps.uow()
    async with uow:
        overdue = await uow.jobs.overdue_submitted(deps.settings.submitted_deadline_grace_s)
        await uow.jobs.lock_users_of(j.generation_id for j in overdue)
        for job in overdue:
            done = await uow.jobs.finish(
                job.generation_id,
                JobState.FAILED,
                DEADLINE_EXCEEDED.model_dump(),
                only_from=(JobState.SUBMITTED,),
                # A provider that cannot cancel may still run it: the slot stays busy a while.
                hold_slot_s=slot_hold_s(
                    DEADLINE_EXCEEDED.code, deps.settings.unfollowed_slot_hold_s
                ),
            )
            if done is not None:
                await _stage_deadline_exceeded(uow, done)
                ended.append(job)
        await uow.commit()
    for job in ended:
        DISPATCH_METRICS.overdue_submitted.labels(job.provider_id).inc()
        ref = provider_job_of(deps.cipher, job)
        if ref is not None:
            with contextlib.suppress(Exception):
                await cancel_at_provider(deps.adapters.get(job.provider_id), ref)
    if ended:
        log.warning("failed submitted jobs past their deadline", count=len(ended))
        deps.wake.set()
    return len(ended)


async def _stage_deadline_exceeded(uow: AbstractUnitOfWork, job: JobSnapshot) -> None:
    request = GenerationRequested.model_validate(job.request)
    await uow.stage(
        COMPLETED,
        GenerationCompleted.following(
            request,
            status=CompletionStatus.FAILED,
            attempt=job.attempt,
            error=DEADLINE_EXCEEDED,
            account_id=job.account_id,
            provider_job_id=job.provider_job_id,
        ),
    )


async def purge_finished(deps: Deps, max_batches: int = 10) -> int:
    """Delete finished jobs past their retention: batches of `finished_purge_batch` rows, each
    its own transaction (short locks, bounded statements), at most `max_batches` per pass."""
    settings = deps.settings
    retention_s = settings.finished_retention_h * 3600
    total = 0
    for _ in range(max_batches):
        uow = deps.uow()
        async with uow:
            purged = await uow.jobs.purge_finished(retention_s, settings.finished_purge_batch)
            await uow.commit()
        total += purged
        DISPATCH_METRICS.jobs_purged.inc(purged)
        if purged < settings.finished_purge_batch:
            break
    if total:
        log.info("purged finished jobs", count=total)
    return total


async def run_reconciler(deps: Deps, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    next_purge = loop.time()
    while not stop.is_set():
        for sweep in (fail_overdue_queued, fail_overdue_submitted):
            try:
                await sweep(deps)
            except Exception as exc:
                log.warning("reconcile failed", sweep=sweep.__name__, error=repr(exc))
        if loop.time() >= next_purge:
            next_purge = loop.time() + deps.settings.finished_purge_interval_s
            try:
                await purge_finished(deps)
            except Exception as exc:
                log.warning("reconcile failed", sweep="purge_finished", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), deps.settings.reconcile_interval_s)

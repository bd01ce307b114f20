"""Moves stuck work forward: queued jobs past their deadline end failed `deadline_exceeded`.

Expired claim leases are recovered by the scheduler itself; unpublished outbox rows by the relay.
"""

from __future__ import annotations

import asyncio
import contextlib

from genbus.contracts import COMPLETED, CompletionStatus, ErrorInfo, GenerationRequested
from genbus.dispatcher.adapters import repository as repo
from genbus.dispatcher.domain.model import JobState
from genbus.dispatcher.service_layer import events
from genbus.dispatcher.service_layer.deps import Deps
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

DEADLINE_EXCEEDED = ErrorInfo(
    code="deadline_exceeded", message="no account could take the job before its deadline"
)


async def fail_overdue_queued(deps: Deps) -> int:
    async with deps.uow() as uow:
        overdue = await repo.overdue_queued(uow.conn)
        for generation_id in overdue:
            job = await repo.finish(
                uow.conn,
                generation_id,
                JobState.FAILED,
                DEADLINE_EXCEEDED.model_dump(),
                only_from=(JobState.QUEUED,),
            )
            if job is None:
                continue
            request = GenerationRequested.model_validate(job.request)
            await uow.stage(
                COMPLETED,
                events.ended(
                    request, CompletionStatus.FAILED, attempt=job.attempt, error=DEADLINE_EXCEEDED
                ),
            )
    if overdue:
        log.warning("failed overdue queued jobs", count=len(overdue))
    return len(overdue)


async def run_reconciler(deps: Deps, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await fail_overdue_queued(deps)
        except Exception as exc:
            log.warning("reconcile failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), deps.settings.reconcile_interval_s)

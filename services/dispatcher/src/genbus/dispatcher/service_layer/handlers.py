"""What the dispatcher does when each event arrives. Every handler is idempotent.

Handlers are `(event or events, uow, *, dependencies)`: the consumers' table
(`entrypoints.consumers.EVENT_HANDLERS`) says which runs for which event, and gives each the
dependencies it names (keyword-only parameters) and a fresh unit of work."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from genbus.contracts import (
    COMPLETED,
    CompletionStatus,
    GenerationCancelRequested,
    GenerationCompleted,
    GenerationRequested,
)
from genbus.dispatcher.adapters.repository import JobSnapshot
from genbus.dispatcher.domain.model import JobState, slot_hold_s
from genbus.dispatcher.service_layer.provider_cancel import cancel_at_provider
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork
from genbus.dispatcher.service_layer.waits import tell_waits_at_intake
from genbus.providers import (
    AdapterRegistry,
    CredentialCipher,
    CredentialDecryptError,
    ProviderJobRef,
)
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

#: Tells the scheduler to look at the queue at once (a job arrived or a slot may be free).
Wake = Callable[[], None]

_END_STATE = {
    CompletionStatus.COMPLETED: JobState.COMPLETED,
    CompletionStatus.FAILED: JobState.FAILED,
    CompletionStatus.CANCELLED: JobState.CANCELLED,
}


async def on_generations_requested(
    events: Sequence[GenerationRequested], uow: AbstractUnitOfWork, *, wake: Wake
) -> None:
    """Queue generations in one transaction (a redelivery is a no-op); the scheduler looks at
    once. Each event carries the trace context it came in with (`with_trace_context`).

    Rows are written in the order given, which must be arrival order (the queue's tie-break):
    the stream's order, the same in every transaction, so two of them never deadlock."""
    queued = []
    async with uow:
        await uow.jobs.lock_users(e.user_id for e in events)
        for event in events:
            if await uow.jobs.ingest(event):
                queued.append(event.generation_id)
        await tell_waits_at_intake(uow, queued)
        await uow.commit()
    if queued:
        wake()


async def on_generations_completed(
    events: Sequence[GenerationCompleted],
    uow: AbstractUnitOfWork,
    *,
    wake: Wake,
    unfollowed_slot_hold_s: float,
) -> None:
    """Jobs ended: each slot is released once, whatever the deliveries, and reused at once
    (in generation id order, in one transaction)."""
    released = False
    async with uow:
        await uow.jobs.lock_users(e.user_id for e in events)
        for event in sorted(events, key=lambda e: e.generation_id):
            done = await uow.jobs.finish(
                event.generation_id,
                _END_STATE[event.status],
                _error(event),
                hold_slot_s=slot_hold_s(
                    event.error.code if event.error else None, unfollowed_slot_hold_s
                ),
            )
            released |= done is not None
        await uow.commit()
    if released:
        wake()


async def on_cancel_requested(
    event: GenerationCancelRequested,
    uow: AbstractUnitOfWork,
    *,
    wake: Wake,
    adapters: AdapterRegistry,
    cipher: CredentialCipher,
) -> None:
    """Queued: end it cancelled now. Submitted: cancel at the provider; the poller reports.
    Not known yet: a tombstone, so that the request, when it comes, is never dispatched."""
    cancel_ref: ProviderJobRef | None = None
    async with uow:
        job = await uow.jobs.lock_job(event.generation_id)
        if job is None:
            tombstone = event.model_dump(mode="json")
            if await uow.jobs.insert_cancelled_tombstone(event.generation_id, tombstone):
                await uow.stage(
                    COMPLETED,
                    GenerationCompleted.following(
                        event, status=CompletionStatus.CANCELLED, attempt=0
                    ),
                )
                await uow.commit()
                return
            # The request's row was being inserted while we looked (not visible to our first
            # statement): the tombstone waited for it and conflicted. Cancel that job instead.
            job = await uow.jobs.lock_job(event.generation_id)
            if job is None:  # the conflicting row is committed by now: not expected
                await uow.commit()
                return
        if job.state is JobState.QUEUED:
            await uow.jobs.finish(event.generation_id, JobState.CANCELLED)
            original = GenerationRequested.model_validate(job.request)
            await uow.stage(
                COMPLETED,
                GenerationCompleted.following(
                    original, status=CompletionStatus.CANCELLED, attempt=job.attempt
                ),
            )
        elif job.state in (JobState.CLAIMED, JobState.SUBMITTED):
            await uow.jobs.flag_cancel_requested(event.generation_id)
            if job.state is JobState.SUBMITTED:
                cancel_ref = provider_job_of(cipher, job)
        await uow.commit()
    if cancel_ref is not None:
        await cancel_at_provider(adapters.get(event.provider_id), cancel_ref)
    wake()


def provider_job_of(cipher: CredentialCipher, job: JobSnapshot) -> ProviderJobRef | None:
    """How to reach a submitted job at its provider; None when it cannot be reached (no job id,
    or the account's credentials are unreadable: the job then ends by its deadline)."""
    provider_job_id = job.provider_job_id
    if provider_job_id is None or job.credentials_ciphertext is None:
        return None
    try:
        credentials = cipher.decrypt(job.credentials_ciphertext)
    except CredentialDecryptError:
        log.warning("cannot cancel at the provider: credentials unreadable", account=job.account_id)
        return None
    return ProviderJobRef(
        provider_job_id=provider_job_id, credentials=credentials, base_url=job.base_url
    )


def _error(event: GenerationCompleted) -> dict[str, object] | None:
    return event.error.model_dump() if event.error else None

"""What the dispatcher does when each event arrives. Every handler is idempotent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genbus.contracts import (
    COMPLETED,
    CompletionStatus,
    GenerationCancelRequested,
    GenerationCompleted,
    GenerationRequested,
)
from genbus.dispatcher.adapters.repository import JobSnapshot
from genbus.dispatcher.domain.model import JobState, slot_hold_s
from genbus.dispatcher.service_layer.deps import Deps
from genbus.dispatcher.service_layer.observability import with_trace_context
from genbus.dispatcher.service_layer.provider_cancel import cancel_at_provider
from genbus.providers import CredentialDecryptError, ProviderJobRef
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

_END_STATE = {
    CompletionStatus.COMPLETED: JobState.COMPLETED,
    CompletionStatus.FAILED: JobState.FAILED,
    CompletionStatus.CANCELLED: JobState.CANCELLED,
}


async def on_generation_requested(
    deps: Deps, event: GenerationRequested, trace_context: Mapping[str, str] | None = None
) -> None:
    """Queue the generation (a redelivery is a no-op) and let the scheduler look at once."""
    await on_generations_requested(deps, [(event, trace_context)])


async def on_generations_requested(
    deps: Deps, events: Sequence[tuple[GenerationRequested, Mapping[str, str] | None]]
) -> None:
    """Queue several generations in one transaction, each with the trace context it came in.

    Rows are written in the order given, which must be arrival order (the queue's tie-break):
    the stream's order, the same in every transaction, so two of them never deadlock."""
    queued = False
    uow = deps.uow()
    async with uow:
        for event, trace_context in events:
            queued |= await uow.jobs.ingest(with_trace_context(event, trace_context))
        await uow.commit()
    if queued:
        deps.wake.set()


async def on_generation_completed(deps: Deps, event: GenerationCompleted) -> None:
    """The job ended: its slot is released (once, whatever the deliveries) and reused now."""
    await on_generations_completed(deps, [event])


async def on_generations_completed(deps: Deps, events: Sequence[GenerationCompleted]) -> None:
    """Several jobs ended, released in one transaction (in generation id order)."""
    released = False
    uow = deps.uow()
    async with uow:
        for event in sorted(events, key=lambda e: e.generation_id):
            done = await uow.jobs.finish(
                event.generation_id,
                _END_STATE[event.status],
                _error(event),
                hold_slot_s=slot_hold_s(
                    event.error.code if event.error else None,
                    deps.settings.unfollowed_slot_hold_s,
                ),
            )
            released |= done is not None
        await uow.commit()
    if released:
        deps.wake.set()


async def on_cancel_requested(deps: Deps, event: GenerationCancelRequested) -> None:
    """Queued: end it cancelled now. Submitted: cancel at the provider; the poller reports."""
    cancel_ref: ProviderJobRef | None = None
    uow = deps.uow()
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
                cancel_ref = provider_job_of(deps, job)
        await uow.commit()
    if cancel_ref is not None:
        await cancel_at_provider(deps.adapters.get(event.provider_id), cancel_ref)
    deps.wake.set()


def provider_job_of(deps: Deps, job: JobSnapshot) -> ProviderJobRef | None:
    """How to reach a submitted job at its provider; None when it cannot be reached (no job id,
    or the account's credentials are unreadable: the job then ends by its deadline)."""
    provider_job_id = job.provider_job_id
    if provider_job_id is None or job.credentials_ciphertext is None:
        return None
    try:
        credentials = deps.cipher.decrypt(job.credentials_ciphertext)
    except CredentialDecryptError:
        log.warning("cannot cancel at the provider: credentials unreadable", account=job.account_id)
        return None
    return ProviderJobRef(
        provider_job_id=provider_job_id, credentials=credentials, base_url=job.base_url
    )


def _error(event: GenerationCompleted) -> dict[str, object] | None:
    return event.error.model_dump() if event.error else None

"""What the api does for each command and event. Each handler is one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from genbus.api.domain.errors import GenerationNotFound, GenerationTerminal
from genbus.api.domain.events import cancel_requested, generation_requested
from genbus.api.domain.hashing import reproducible_hash
from genbus.api.domain.model import DEADLINE_EXCEEDED, Generation
from genbus.api.domain.requests import (
    GenerationDraft,
    ProviderCatalog,
    RequestLimits,
    canonical_inputs,
    validate_request,
)
from genbus.api.domain.status import CANCELLABLE_AT_ONCE, GenerationStatus
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.contracts import (
    CANCEL_REQUESTED,
    REQUESTED,
    GenerationCompleted,
    GenerationSubmitted,
)
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

USER_CANCEL_REASON = "cancelled by user"
DEADLINE_CANCEL_REASON = "deadline exceeded"


async def create_generation(
    draft: GenerationDraft,
    user_id: str,
    uow: UnitOfWork,
    *,
    catalog: ProviderCatalog,
    limits: RequestLimits,
    now: datetime,
) -> Generation:
    """Validate, then commit the generation and its `GenerationRequested` together."""
    request = validate_request(draft, catalog, limits, now)
    async with uow:
        references = [i.generation_id for i in request.inputs if i.generation_id is not None]
        sources = await uow.generations.get_many(references, user_id=user_id)
        inputs = canonical_inputs(request.inputs, sources)
        generation = Generation(
            id=uuid4(),
            user_id=user_id,
            operation_type=request.operation_type,
            provider_id=draft.provider_id,
            status=GenerationStatus.PENDING,
            params=dict(draft.params),
            canonical_params=request.canonical_params,
            inputs=[i.as_json() for i in draft.inputs],
            canonical_inputs=inputs,
            priority=draft.priority,
            scheduled_at=request.scheduled_at,
            deadline_at=request.deadline_at,
            reproducible_hash=reproducible_hash(
                request.operation_type, draft.provider_id, request.canonical_params, inputs
            ),
            name=draft.name,
            metadata=dict(draft.metadata),
            attempt=0,
            account_id=None,
            provider_job_id=None,
            asset=None,
            error=None,
            created_at=now,
            updated_at=now,
            submitted_at=None,
            completed_at=None,
        )
        await uow.generations.add(generation)
        await uow.publish(REQUESTED, generation_requested(generation, now))
        await uow.commit()
    log.info("generation created", generation_id=str(generation.id), user_id=user_id)
    return generation


async def get_generation(generation_id: UUID, user_id: str, uow: UnitOfWork) -> Generation:
    async with uow:
        generation = await uow.generations.get(generation_id, user_id=user_id)
    if generation is None:
        raise GenerationNotFound(f"generation {generation_id} not found")
    return generation


@dataclass(frozen=True)
class CancelResult:
    generation: Generation
    #: True when the generation is cancelled now; False when the provider must stop it first.
    cancelled_at_once: bool


async def cancel_generation(
    generation_id: UUID, user_id: str, uow: UnitOfWork, *, now: datetime
) -> CancelResult:
    """Pending: cancelled at once. Processing: ask the dispatcher; the outcome comes by event."""
    async with uow:
        generation = await uow.generations.get(generation_id, user_id=user_id)
        if generation is None:
            raise GenerationNotFound(f"generation {generation_id} not found")
        if generation.status in CANCELLABLE_AT_ONCE:
            cancelled = await uow.generations.cancel_at_once(generation_id, at=now)
            if cancelled is not None:
                # The dispatcher still has it queued: tell it to drop the job.
                await uow.publish(
                    CANCEL_REQUESTED, cancel_requested(cancelled, USER_CANCEL_REASON, now)
                )
                await uow.commit()
                return CancelResult(cancelled, cancelled_at_once=True)
            # It moved on since we read it: decide again on what it is now.
            generation = await uow.generations.get(generation_id, user_id=user_id)
            assert generation is not None
        if generation.terminal:
            raise GenerationTerminal(f"generation {generation_id} is already {generation.status}")
        await uow.publish(CANCEL_REQUESTED, cancel_requested(generation, USER_CANCEL_REASON, now))
        await uow.commit()
    return CancelResult(generation, cancelled_at_once=False)


async def on_generation_submitted(
    event: GenerationSubmitted, uow: UnitOfWork, *, now: datetime
) -> Generation | None:
    """pending → processing. A redelivered, stale or late event changes nothing."""
    async with uow:
        updated = await uow.generations.record_submission(
            event.generation_id,
            attempt=event.attempt,
            account_id=event.account_id,
            provider_job_id=event.provider_job_id,
            submitted_at=event.occurred_at,
            now=now,
        )
        if updated is None:
            await _ignore_stale(uow, event.generation_id, event.event_type)
        await uow.commit()
    return updated


async def on_generation_completed(
    event: GenerationCompleted, uow: UnitOfWork, *, now: datetime
) -> Generation | None:
    """→ completed | failed | cancelled, unless already terminal: the first terminal wins."""
    async with uow:
        updated = await uow.generations.record_outcome(
            event.generation_id,
            GenerationStatus(event.status.value),
            asset=event.asset,
            error=event.error,
            completed_at=event.occurred_at,
            now=now,
            attempt=event.attempt,
            account_id=event.account_id,
            provider_job_id=event.provider_job_id,
        )
        if updated is None:
            await _ignore_stale(uow, event.generation_id, event.event_type)
        await uow.commit()
    return updated


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
        await uow.commit()
    for generation in failed:
        log.warning("generation failed: deadline exceeded", generation_id=str(generation.id))
    return failed


async def _ignore_stale(uow: UnitOfWork, generation_id: UUID, event_type: str) -> None:
    current = await uow.generations.get(generation_id)
    if current is None:
        raise GenerationNotFound(f"generation {generation_id} not found")
    log.info(
        "event changes nothing, ignored",
        generation_id=str(generation_id),
        event_type=event_type,
        status=current.status,
    )

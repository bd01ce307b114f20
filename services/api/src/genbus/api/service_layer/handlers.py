"""What the api does for each command and event. Each handler is one transaction.

Every handler that changes a generation also logs the change (`uow.record_changes`) in the
same transaction: that log is what live-status streams read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID, uuid4

from genbus.api.domain.errors import (
    GenerationNotFound,
    GenerationNotRetryable,
    GenerationNotTerminal,
    GenerationTerminal,
    IdempotencyKeyReused,
)
from genbus.api.domain.events import cancel_requested, generation_requested
from genbus.api.domain.hashing import reproducible_hash
from genbus.api.domain.idempotency import IdempotencyClaim
from genbus.api.domain.listing import Cursor, GenerationFilter, Page
from genbus.api.domain.model import Generation
from genbus.api.domain.requests import (
    GenerationDraft,
    InputSpec,
    ProviderCatalog,
    RequestLimits,
    ValidRequest,
    canonical_inputs,
    validate_request,
)
from genbus.api.domain.status import CANCELLABLE_AT_ONCE, RETRYABLE, GenerationStatus
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.contracts import (
    CANCEL_REQUESTED,
    DEADLINE_EXCEEDED,
    REQUESTED,
    Event,
    GenerationCompleted,
    GenerationSubmitted,
)
from genbus.runtime.logging import get_logger

log = get_logger(__name__)
E = TypeVar("E", bound=Event)

USER_CANCEL_REASON = "cancelled by user"
DEADLINE_CANCEL_REASON = "deadline exceeded"


@dataclass(frozen=True)
class Created:
    generation: Generation
    #: True when an idempotency key named an earlier request: nothing new was created.
    replayed: bool = False


async def create_generation(
    draft: GenerationDraft,
    user_id: str,
    uow: UnitOfWork,
    *,
    catalog: ProviderCatalog,
    limits: RequestLimits,
    now: datetime,
    idempotency: IdempotencyClaim | None = None,
) -> Created:
    """Validate, then commit the generation and its `GenerationRequested` together.

    With an idempotency key, a request the key already names returns that generation instead.
    """
    # Without a key, an invalid request is refused before touching the database.
    request = None if idempotency else validate_request(draft, catalog, limits, now)
    async with uow:
        generation_id = uuid4()
        if idempotency is not None:
            earlier = await _claim(uow, idempotency, user_id, generation_id, limits, now)
            if earlier is not None:
                return earlier
            request = validate_request(draft, catalog, limits, now)
        assert request is not None
        generation = await _add_generation(uow, request, user_id, generation_id, now)
        await uow.commit()
    log.info("generation created", generation_id=str(generation.id), user_id=user_id)
    return Created(generation)


async def retry_generation(
    generation_id: UUID,
    user_id: str,
    uow: UnitOfWork,
    *,
    catalog: ProviderCatalog,
    limits: RequestLimits,
    now: datetime,
    idempotency: IdempotencyClaim | None = None,
) -> Created:
    """A new generation with the request of a failed or cancelled one, linked to it.

    The schedule and deadline are not carried over: the retry is due now, with the default
    deadline.
    """
    async with uow:
        new_id = uuid4()
        if idempotency is not None:
            earlier = await _claim(uow, idempotency, user_id, new_id, limits, now)
            if earlier is not None:
                return earlier
        parent = await uow.generations.get(generation_id, user_id=user_id)
        if parent is None:
            raise GenerationNotFound(f"generation {generation_id} not found")
        if parent.status not in RETRYABLE:
            raise GenerationNotRetryable(
                f"generation {generation_id} is {parent.status}; only failed or cancelled "
                "generations can be retried"
            )
        request = validate_request(_draft_of(parent), catalog, limits, now)
        generation = await _add_generation(uow, request, user_id, new_id, now, parent=parent.id)
        await uow.commit()
    log.info(
        "generation retried",
        generation_id=str(generation.id),
        parent_generation_id=str(generation_id),
        user_id=user_id,
    )
    return Created(generation)


async def idempotency_key_used(
    claim: IdempotencyClaim, user_id: str, uow: UnitOfWork, *, limits: RequestLimits, now: datetime
) -> bool:
    """Whether `user_id` already used `claim`'s key (within its lifetime): the request is then
    a replay (or a reuse with another body), which creates nothing."""
    async with uow:
        stored = await uow.idempotency.find(
            user_id=user_id, key=claim.key, not_before=now - limits.idempotency_ttl
        )
    return stored is not None


async def _claim(
    uow: UnitOfWork,
    claim: IdempotencyClaim,
    user_id: str,
    generation_id: UUID,
    limits: RequestLimits,
    now: datetime,
) -> Created | None:
    """None when the key is new (now claimed for `generation_id`), else the earlier result."""
    stored = await uow.idempotency.claim(
        user_id=user_id,
        key=claim.key,
        request_hash=claim.fingerprint,
        generation_id=generation_id,
        at=now,
        expired_before=now - limits.idempotency_ttl,
    )
    if stored is None:
        return None
    if stored.request_hash != claim.fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was already used for a different request")
    earlier = await uow.generations.get(stored.generation_id, user_id=user_id)
    if earlier is None:  # pragma: no cover - keys are deleted with their generation
        raise IdempotencyKeyReused("this Idempotency-Key names a generation that is gone")
    return Created(earlier, replayed=True)


async def _add_generation(
    uow: UnitOfWork,
    request: ValidRequest,
    user_id: str,
    generation_id: UUID,
    now: datetime,
    *,
    parent: UUID | None = None,
) -> Generation:
    draft = request.draft
    references = [i.generation_id for i in request.inputs if i.generation_id is not None]
    sources = await uow.generations.get_many(references, user_id=user_id)
    inputs = canonical_inputs(request.inputs, sources)
    generation = Generation(
        id=generation_id,
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
        parent_generation_id=parent,
        prompt_version_id=draft.prompt_version_id,
    )
    await uow.generations.add(generation)
    await uow.publish(REQUESTED, generation_requested(generation, now))
    await uow.record_changes([generation])
    return generation


def _draft_of(g: Generation) -> GenerationDraft:
    """The request a generation was created from, as its owner sent it."""
    inputs = [
        InputSpec(
            role=str(item["role"]),
            url=item.get("url"),
            generation_id=UUID(item["generation_id"]) if item.get("generation_id") else None,
        )
        for item in g.inputs
    ]
    return GenerationDraft(
        operation_type=g.operation_type,
        provider_id=g.provider_id,
        params=g.params,
        inputs=inputs,
        priority=g.priority,
        name=g.name,
        metadata=g.metadata,
        prompt_version_id=g.prompt_version_id,
    )


async def get_generation(generation_id: UUID, owner: str | None, uow: UnitOfWork) -> Generation:
    """The generation, if `owner` owns it (None: whoever owns it, for admins)."""
    async with uow:
        generation = await uow.generations.get(generation_id, user_id=owner)
    if generation is None:
        raise GenerationNotFound(f"generation {generation_id} not found")
    return generation


async def list_generations(
    user_id: str, uow: UnitOfWork, where: GenerationFilter, *, after: Cursor | None, limit: int
) -> Page:
    """One page of `user_id`'s generations, newest first."""
    async with uow:
        return await uow.generations.list_page(user_id, where, after=after, limit=limit)


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
                await uow.record_changes([cancelled])
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


async def delete_generation(
    generation_id: UUID, user_id: str, uow: UnitOfWork, *, now: datetime
) -> Generation:
    """Delete a terminal generation, its idempotency keys and its change history."""
    async with uow:
        deleted = await uow.generations.delete_terminal(generation_id, user_id=user_id)
        if deleted is None:
            current = await uow.generations.get(generation_id, user_id=user_id)
            if current is None:
                raise GenerationNotFound(f"generation {generation_id} not found")
            raise GenerationNotTerminal(
                f"generation {generation_id} is {current.status}; cancel it first"
            )
        await uow.idempotency.forget_generation(generation_id)
        await uow.record_deletion(deleted, now)
        await uow.commit()
    log.info("generation deleted", generation_id=str(generation_id), user_id=user_id)
    return deleted


async def on_generation_submitted(
    event: GenerationSubmitted, uow: UnitOfWork, *, now: datetime
) -> Generation | None:
    """pending → processing. After its completed event (the two travel on separate consumers)
    only the submission time is filled in; a redelivered or stale event changes nothing."""
    changed = await on_generations_submitted([event], uow, now=now)
    return changed[0] if changed else None


async def on_generations_submitted(
    events: Sequence[GenerationSubmitted], uow: UnitOfWork, *, now: datetime
) -> list[Generation]:
    """`on_generation_submitted` for several events in one transaction; returns the changed."""

    async def apply(event: GenerationSubmitted) -> Generation | None:
        generations = uow.generations
        for record in (generations.record_submission, generations.record_late_submission):
            updated = await record(
                event.generation_id,
                attempt=event.attempt,
                account_id=event.account_id,
                provider_job_id=event.provider_job_id,
                submitted_at=event.occurred_at,
                now=now,
            )
            if updated is not None:
                return updated
        return None

    return await _apply_in_one_transaction(events, apply, uow)


async def on_generation_completed(
    event: GenerationCompleted, uow: UnitOfWork, *, now: datetime
) -> Generation | None:
    """→ completed | failed | cancelled, unless already terminal: the first terminal wins."""
    changed = await on_generations_completed([event], uow, now=now)
    return changed[0] if changed else None


async def on_generations_completed(
    events: Sequence[GenerationCompleted], uow: UnitOfWork, *, now: datetime
) -> list[Generation]:
    """`on_generation_completed` for several events in one transaction; returns the changed."""

    async def apply(event: GenerationCompleted) -> Generation | None:
        return await uow.generations.record_outcome(
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

    return await _apply_in_one_transaction(events, apply, uow)


async def _apply_in_one_transaction(
    events: Sequence[E],
    apply: Callable[[E], Awaitable[Generation | None]],
    uow: UnitOfWork,
) -> list[Generation]:
    """Apply each event, log the changes, commit once. Generations are updated in id order, so
    two such transactions never wait for each other's rows in a cycle."""
    changed: list[Generation] = []
    async with uow:
        for event in sorted(events, key=lambda e: e.generation_id):
            updated = await apply(event)
            if updated is None:
                await _ignore_stale(uow, event.generation_id, event.event_type)
            else:
                changed.append(updated)
        if changed:
            await uow.record_changes(changed)
        await uow.commit()
    return changed


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


async def purge_expired(
    new_uow: Callable[[], UnitOfWork],
    *,
    now: datetime,
    idempotency_ttl: timedelta,
    change_log_ttl: timedelta,
    batch: int = PURGE_BATCH,
    max_batches: int = PURGE_MAX_BATCHES,
) -> tuple[int, int]:
    """Forget idempotency keys and change-log rows past their retention, in bounded batches
    (one transaction each); returns the counts."""
    keys = changes = 0
    for _ in range(max_batches):
        uow = new_uow()
        async with uow:
            purged_keys = await uow.idempotency.purge(before=now - idempotency_ttl, limit=batch)
            purged_changes = await uow.change_log.purge(before=now - change_log_ttl, limit=batch)
            await uow.commit()
        keys += purged_keys
        changes += purged_changes
        if purged_keys < batch and purged_changes < batch:
            break
    return keys, changes


async def _ignore_stale(uow: UnitOfWork, generation_id: UUID, event_type: str) -> None:
    current = await uow.generations.get(generation_id)
    if current is None:
        if await uow.change_log.was_deleted(generation_id):
            # A late event for a generation its owner deleted (only terminal ones can be).
            log.info("event for a deleted generation, ignored", generation_id=str(generation_id))
            return
        raise GenerationNotFound(f"generation {generation_id} not found")
    log.info(
        "event changes nothing, ignored",
        generation_id=str(generation_id),
        event_type=event_type,
        status=current.status,
    )

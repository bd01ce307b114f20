"""What the api does when each event arrives: the projection of submitted and completed
events into generation rows and their change log. Each call is one transaction.

The consumers' table (`entrypoints.consumers.EVENT_HANDLERS`) says which runs for which event.
Commands live beside them: `intake` (create, retry), `generations` (get, list, cancel, delete),
`upkeep` (deadline sweep, purges).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from genbus.api.domain.errors import (
    GenerationNotFound,
)
from genbus.api.domain.model import Generation
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.contracts import (
    Event,
    GenerationCompleted,
    GenerationSubmitted,
    GenerationWaiting,
)
from genbus.runtime.logging import get_logger

log = get_logger(__name__)
E = TypeVar("E", bound=Event)


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
                cost=event.cost,
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
            cost=event.cost,
        )

    return await _apply_in_one_transaction(events, apply, uow)


async def on_generation_waiting(
    event: GenerationWaiting, uow: UnitOfWork, *, now: datetime
) -> Generation | None:
    """The dispatcher holds a pending generation back: keep its reason (the newest report
    wins; once submitted or ended, a late report changes nothing)."""
    changed = await on_generations_waiting([event], uow, now=now)
    return changed[0] if changed else None


async def on_generations_waiting(
    events: Sequence[GenerationWaiting], uow: UnitOfWork, *, now: datetime
) -> list[Generation]:
    """`on_generation_waiting` for several events in one transaction; returns the changed."""

    async def apply(event: GenerationWaiting) -> Generation | None:
        return await uow.generations.record_wait(
            event.generation_id,
            reason=event.reason.value,
            next_attempt_at=event.next_attempt_at,
            sequence=event.sequence,
            now=now,
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

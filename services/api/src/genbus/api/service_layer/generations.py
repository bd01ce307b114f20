"""Reading, cancelling and deleting a caller's generations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from genbus.api.adapters.queue_standing import QueueStanding
from genbus.api.domain.errors import (
    GenerationNotFound,
    GenerationNotTerminal,
    GenerationTerminal,
)
from genbus.api.domain.events import cancel_requested
from genbus.api.domain.listing import Cursor, GenerationFilter, Page
from genbus.api.domain.model import Generation
from genbus.api.domain.status import CANCELLABLE_AT_ONCE
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.contracts import (
    CANCEL_REQUESTED,
)
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

USER_CANCEL_REASON = "cancelled by user"


async def get_generation(generation_id: UUID, owner: str | None, uow: UnitOfWork) -> Generation:
    """The generation, if `owner` owns it (None: whoever owns it, for admins)."""
    async with uow:
        generation = await uow.generations.get(generation_id, user_id=owner)
    if generation is None:
        raise GenerationNotFound(f"generation {generation_id} not found")
    return generation


async def get_generation_standing(
    generation_id: UUID, owner: str | None, uow: UnitOfWork, *, now: datetime
) -> tuple[Generation, QueueStanding | None]:
    """The generation and, while it is pending, where it stands in its provider's queue."""
    async with uow:
        generation = await uow.generations.get(generation_id, user_id=owner)
        if generation is None:
            raise GenerationNotFound(f"generation {generation_id} not found")
        return generation, await uow.generations.queue_standing(generation, now)


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

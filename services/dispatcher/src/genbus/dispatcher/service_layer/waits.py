"""Telling the api why a queued generation waits (`GenerationWaiting`), once per change.

- `user_at_capacity` and `provider_unavailable`: at intake, for jobs that no freed slot can
  take now (their user is at its in-flight cap; no account of their provider is active with
  its breaker closed).
- `retrying`: when a try was refused before the provider took the job (requeued, or held for
  a backoff on its account), with when it is tried again.

The api shows the reason until the generation is submitted or ends. A reason is not withdrawn
when it stops holding (the cap frees, an account comes back): the next report, or the
submission, replaces it. Known gap: jobs queued while their user was under its cap are not told
`user_at_capacity` when later claims bring the user to the cap (telling every queued job of the
user at that moment would cost as much as its backlog); nor are queued jobs told
`provider_unavailable` when their provider's last account goes down after they were queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from genbus.contracts import WAITING, GenerationRequested, GenerationWaiting, WaitingReason
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork


async def tell_wait(
    uow: AbstractUnitOfWork,
    generation_id: UUID,
    reason: WaitingReason,
    *,
    retry_in_s: float | None = None,
) -> None:
    """Stage a `GenerationWaiting` in `uow` if `reason` is news for the job: a job refused
    again while already `retrying` tells nothing more (its `next_attempt_at` is the first's)."""
    noted = await uow.jobs.note_wait(generation_id, reason.value)
    if noted is None:
        return
    next_attempt_at = (
        datetime.now(UTC) + timedelta(seconds=retry_in_s) if retry_in_s is not None else None
    )
    await uow.stage(
        WAITING,
        GenerationWaiting.following(
            GenerationRequested.model_validate(noted.request),
            reason=reason,
            sequence=noted.sequence,
            next_attempt_at=next_attempt_at,
        ),
    )


async def tell_waits_at_intake(uow: AbstractUnitOfWork, generation_ids: Sequence[UUID]) -> None:
    """For jobs just queued that no freed slot can take now, tell why."""
    for generation_id, reason in await uow.jobs.reasons_at_intake(generation_ids):
        await tell_wait(uow, generation_id, WaitingReason(reason))

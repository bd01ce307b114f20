"""The events the api publishes, built from a generation by the contracts' constructors: their
ids are derived, never random, so staging the same fact twice (a retried request, a second
cancel) yields the same event."""

from __future__ import annotations

from datetime import datetime

from genbus.api.domain.model import Generation
from genbus.contracts import GenerationCancelRequested, GenerationRequested, InputRef


def generation_requested(
    generation: Generation, occurred_at: datetime, *, max_in_flight: int | None = None
) -> GenerationRequested:
    return GenerationRequested.new(
        generation_id=generation.id,
        user_id=generation.user_id,
        provider_id=generation.provider_id,
        operation_type=generation.operation_type,
        params=generation.canonical_params,
        inputs=[InputRef.model_validate(item) for item in generation.canonical_inputs],
        priority=generation.priority,
        scheduled_at=generation.scheduled_at,
        deadline_at=generation.deadline_at,
        reproducible_hash=generation.reproducible_hash,
        max_in_flight=max_in_flight,
        estimated_cost=generation.estimated_cost,
        occurred_at=occurred_at,
    )


def cancel_requested(
    generation: Generation, reason: str, occurred_at: datetime
) -> GenerationCancelRequested:
    return GenerationCancelRequested.new(
        generation_id=generation.id,
        user_id=generation.user_id,
        provider_id=generation.provider_id,
        operation_type=generation.operation_type,
        reason=reason,
        occurred_at=occurred_at,
    )

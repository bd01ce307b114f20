"""The events of a generation's life. Past tense: each states a fact that already happened.

Producers build them with the constructors below, never field by field: an event's id is derived
from its generation, type and attempt (so a replay has the same id and JetStream drops it), and
every event about a generation repeats the envelope of the one it follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from genbus.contracts.common import (
    Asset,
    CompletionStatus,
    ContractModel,
    ErrorInfo,
    InputRef,
    OperationType,
    ProviderId,
    WaitingReason,
)
from genbus.contracts.ids import derive_event_id


class Event(ContractModel):
    """Fields every event carries. `event_id` is also the JetStream `Nats-Msg-Id`."""

    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: UUID
    event_type: str
    schema_version: int = 1
    occurred_at: AwareDatetime
    generation_id: UUID
    user_id: str = Field(min_length=1, max_length=128)
    provider_id: ProviderId
    operation_type: OperationType

    @classmethod
    def _envelope(
        cls,
        generation_id: UUID,
        *,
        attempt: int = 0,
        occurred_at: datetime | None = None,
    ) -> dict[str, Any]:
        """`event_id` (derived from this class's `event_type`) and `occurred_at` (default now)."""
        event_type = cls.model_fields["event_type"].default
        return {
            "event_id": derive_event_id(generation_id, event_type, attempt),
            "occurred_at": occurred_at or datetime.now(UTC),
        }

    @classmethod
    def _following(
        cls, prior: Event, *, attempt: int = 0, occurred_at: datetime | None = None
    ) -> dict[str, Any]:
        """The envelope of an event about the same generation as `prior`."""
        return {
            **cls._envelope(prior.generation_id, attempt=attempt, occurred_at=occurred_at),
            "generation_id": prior.generation_id,
            "user_id": prior.user_id,
            "provider_id": prior.provider_id,
            "operation_type": prior.operation_type,
        }


class GenerationRequested(Event):
    """A user asked for a generation; the API committed it."""

    event_type: Literal["generation.requested"] = "generation.requested"
    params: dict[str, Any]
    inputs: list[InputRef] = Field(default_factory=list)
    priority: int = Field(default=5, ge=0, le=10, description="0..10, higher is dispatched first")
    scheduled_at: AwareDatetime | None = None
    deadline_at: AwareDatetime
    reproducible_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    preferred_account_id: str | None = None
    max_in_flight: int | None = Field(
        default=None,
        ge=1,
        description=(
            "The user's cap on generations in flight (claimed or submitted) at once, from the "
            "caller's key or tier; the dispatcher passes over the user's jobs while it holds. "
            "The latest request of a user sets it for all of its queued jobs. None: no cap."
        ),
    )
    estimated_cost: float | None = Field(
        default=None,
        ge=0,
        description="what the api's price table says the generation costs, in the provider's "
        "billing unit (credits); null: no price known",
    )

    @classmethod
    def new(
        cls,
        *,
        generation_id: UUID,
        user_id: str,
        provider_id: str,
        operation_type: str,
        params: dict[str, Any],
        deadline_at: datetime,
        reproducible_hash: str,
        inputs: Sequence[InputRef] = (),
        priority: int = 5,
        scheduled_at: datetime | None = None,
        preferred_account_id: str | None = None,
        max_in_flight: int | None = None,
        estimated_cost: float | None = None,
        occurred_at: datetime | None = None,
    ) -> Self:
        """The first event of a generation (one per generation: its attempt is 0)."""
        return cls(
            **cls._envelope(generation_id, occurred_at=occurred_at),
            generation_id=generation_id,
            user_id=user_id,
            provider_id=provider_id,
            operation_type=operation_type,
            params=params,
            inputs=list(inputs),
            priority=priority,
            scheduled_at=scheduled_at,
            deadline_at=deadline_at,
            reproducible_hash=reproducible_hash,
            preferred_account_id=preferred_account_id,
            max_in_flight=max_in_flight,
            estimated_cost=estimated_cost,
        )


class GenerationSubmitted(Event):
    """A provider accepted the generation as one of its jobs."""

    event_type: Literal["generation.submitted"] = "generation.submitted"
    account_id: str = Field(min_length=1, max_length=64)
    provider_job_id: str = Field(min_length=1, max_length=256)
    attempt: int = Field(ge=1)
    deadline_at: AwareDatetime
    cost: float | None = Field(
        default=None,
        ge=0,
        description="what the provider's submit answer says the job costs, in its billing "
        "unit (Pixverse: credits); null: not said",
    )

    @classmethod
    def following(
        cls,
        request: GenerationRequested,
        *,
        account_id: str,
        provider_job_id: str,
        attempt: int,
        cost: float | None = None,
        occurred_at: datetime | None = None,
    ) -> Self:
        """The provider accepted `request` as its job `provider_job_id` on this attempt."""
        return cls(
            **cls._following(request, attempt=attempt, occurred_at=occurred_at),
            account_id=account_id,
            provider_job_id=provider_job_id,
            attempt=attempt,
            deadline_at=request.deadline_at,
            cost=cost,
        )


class GenerationWaiting(Event):
    """The dispatcher holds the queued generation back, and why; published when the reason
    changes (never per scheduling pass). The next `GenerationSubmitted` or
    `GenerationCompleted` ends the wait."""

    event_type: Literal["generation.waiting"] = "generation.waiting"
    reason: WaitingReason
    next_attempt_at: AwareDatetime | None = Field(
        default=None, description="When it is tried again, if known (`retrying`)"
    )
    sequence: int = Field(
        ge=1,
        description=(
            "The n-th wait the dispatcher reported for this generation: a consumer keeps the "
            "highest it has seen (events on different consumers may arrive out of order)"
        ),
    )

    @classmethod
    def following(
        cls,
        request: GenerationRequested,
        *,
        reason: WaitingReason,
        sequence: int,
        next_attempt_at: datetime | None = None,
        occurred_at: datetime | None = None,
    ) -> Self:
        """`request` waits for `reason`; its id is derived from `sequence` (one per change)."""
        return cls(
            **cls._following(request, attempt=sequence, occurred_at=occurred_at),
            reason=reason,
            next_attempt_at=next_attempt_at,
            sequence=sequence,
        )


class GenerationCompleted(Event):
    """The generation reached a terminal state: completed with an asset, or failed/cancelled.

    v2 adds `asset.stored` (with `sha256`, `size_bytes`): producers send `stored: false`, the
    asset's `url` being the provider's expiring URL; the durable copy is the api's. A v1 event
    (no `stored`) means the same: consumers read it as `stored: false`.
    """

    SCHEMA_VERSION: ClassVar[int] = 2

    event_type: Literal["generation.completed"] = "generation.completed"
    schema_version: int = 2
    status: CompletionStatus
    asset: Asset | None = None
    error: ErrorInfo | None = None
    attempt: int = Field(default=0, ge=0, description="0 when it ended before any submission")
    account_id: str | None = None
    provider_job_id: str | None = None
    cost: float | None = Field(
        default=None,
        ge=0,
        description="what the provider reports the job used, in its billing unit (credits; "
        "Replicate: seconds of compute); null: not reported",
    )

    @classmethod
    def following(
        cls,
        prior: Event,
        *,
        status: CompletionStatus,
        attempt: int,
        error: ErrorInfo | None = None,
        asset: Asset | None = None,
        account_id: str | None = None,
        provider_job_id: str | None = None,
        cost: float | None = None,
        occurred_at: datetime | None = None,
    ) -> Self:
        """The generation of `prior` ended on this attempt (0: before any submission).

        One id per generation and attempt, whoever reports it: when the poller and the
        dispatcher both end the same attempt, JetStream keeps the first and drops the other.
        """
        return cls(
            **cls._following(prior, attempt=attempt, occurred_at=occurred_at),
            status=status,
            asset=asset,
            error=error,
            attempt=attempt,
            account_id=account_id,
            provider_job_id=provider_job_id,
            cost=cost,
        )

    @model_validator(mode="after")
    def _outcome_matches_status(self) -> GenerationCompleted:
        if self.status is CompletionStatus.COMPLETED and self.asset is None:
            raise ValueError("a completed generation carries an asset")
        if self.status is CompletionStatus.FAILED and self.error is None:
            raise ValueError("a failed generation carries an error")
        return self


class GenerationCancelRequested(Event):
    """The user asked to cancel a generation that is not yet terminal."""

    event_type: Literal["generation.cancel_requested"] = "generation.cancel_requested"
    reason: str = Field(default="cancelled by user", max_length=500)

    @classmethod
    def new(
        cls,
        *,
        generation_id: UUID,
        user_id: str,
        provider_id: str,
        operation_type: str,
        reason: str,
        occurred_at: datetime | None = None,
    ) -> Self:
        """The user's cancel of a generation (one per generation: asking again is a replay)."""
        return cls(
            **cls._envelope(generation_id, occurred_at=occurred_at),
            generation_id=generation_id,
            user_id=user_id,
            provider_id=provider_id,
            operation_type=operation_type,
            reason=reason,
        )

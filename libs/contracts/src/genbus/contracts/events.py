"""The events of a generation's life. Past tense: each states a fact that already happened."""

from __future__ import annotations

from typing import Any, ClassVar, Literal
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
)


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


class GenerationSubmitted(Event):
    """A provider accepted the generation as one of its jobs."""

    event_type: Literal["generation.submitted"] = "generation.submitted"
    account_id: str = Field(min_length=1, max_length=64)
    provider_job_id: str = Field(min_length=1, max_length=256)
    attempt: int = Field(ge=1)
    deadline_at: AwareDatetime


class GenerationCompleted(Event):
    """The generation reached a terminal state: completed with an asset, or failed/cancelled."""

    event_type: Literal["generation.completed"] = "generation.completed"
    status: CompletionStatus
    asset: Asset | None = None
    error: ErrorInfo | None = None
    attempt: int = Field(default=0, ge=0, description="0 when it ended before any submission")
    account_id: str | None = None
    provider_job_id: str | None = None

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

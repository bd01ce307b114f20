"""Request and response bodies of the HTTP API, and their translation to and from the domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

from genbus.api.domain.model import Generation
from genbus.api.domain.params import MediaUrl, OperationType
from genbus.api.domain.requests import DEFAULT_PRIORITY, GenerationDraft, InputSpec
from genbus.api.domain.status import GenerationStatus

MAX_INPUTS = 8

Role = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
ProviderIdIn = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=64)]
Priority = Annotated[int, Strict(), Field(ge=0, le=10, description="0..10, higher first")]
Params = Annotated[
    dict[str, Any],
    Strict(),
    Field(
        description="Validated per operation_type; provider-specific keys go in provider_options"
    ),
]
Name = Annotated[
    str, Strict(), StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputIn(_Body):
    """An input media item: a URL, or an earlier generation of yours (its asset is used)."""

    role: Role
    url: MediaUrl | None = None
    generation_id: UUID | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        if (self.url is None) == (self.generation_id is None):
            raise ValueError("an input has exactly one of url or generation_id")
        return self

    def to_domain(self) -> InputSpec:
        url = str(self.url) if self.url is not None else None
        return InputSpec(role=self.role, url=url, generation_id=self.generation_id)


class GenerationCreate(_Body):
    operation_type: OperationType
    provider_id: ProviderIdIn
    params: Params = Field(default_factory=dict)
    inputs: Annotated[list[InputIn], Field(max_length=MAX_INPUTS)] = Field(default_factory=list)
    priority: Priority = DEFAULT_PRIORITY
    scheduled_at: AwareDatetime | None = Field(default=None, description="not before this time")
    deadline: AwareDatetime | None = Field(
        default=None, description="terminal by this time; default: now + the configured default"
    )
    name: Name | None = None
    metadata: Annotated[dict[str, Any], Strict()] = Field(default_factory=dict)

    def to_draft(self) -> GenerationDraft:
        return GenerationDraft(
            operation_type=self.operation_type,
            provider_id=self.provider_id,
            params=self.params,
            inputs=[i.to_domain() for i in self.inputs],
            priority=self.priority,
            scheduled_at=self.scheduled_at,
            deadline=self.deadline,
            name=self.name,
            metadata=self.metadata,
        )


class JobCreate(_Body):
    """The legacy job request: a generation without inputs, schedule, deadline or name."""

    operation_type: OperationType
    provider_id: ProviderIdIn
    params: Params = Field(default_factory=dict)
    priority: Priority = DEFAULT_PRIORITY

    def to_draft(self) -> GenerationDraft:
        return GenerationDraft(
            operation_type=self.operation_type,
            provider_id=self.provider_id,
            params=self.params,
            priority=self.priority,
        )


class AssetOut(BaseModel):
    url: str
    media_type: str
    width: int | None
    height: int | None
    duration_s: float | None


class ErrorOut(BaseModel):
    code: str
    message: str
    retryable: bool


class GenerationPublic(BaseModel):
    """A generation as its owner sees it."""

    id: UUID
    status: GenerationStatus
    operation_type: str
    provider_id: str
    params: dict[str, Any] = Field(description="as sent")
    canonical_params: dict[str, Any] = Field(description="validated, defaults filled")
    inputs: list[dict[str, Any]] = Field(description="as sent")
    canonical_inputs: list[dict[str, Any]] = Field(description="every input as a URL")
    priority: int
    scheduled_at: datetime | None
    deadline_at: datetime
    name: str | None
    metadata: dict[str, Any]
    reproducible_hash: str
    attempt: int
    account_id: str | None
    provider_job_id: str | None
    asset: AssetOut | None
    error: ErrorOut | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def from_domain(cls, g: Generation) -> GenerationPublic:
        asset = None
        if g.asset is not None:
            asset = AssetOut(
                url=str(g.asset.url),
                media_type=g.asset.media_type,
                width=g.asset.width,
                height=g.asset.height,
                duration_s=g.asset.duration_s,
            )
        error = None
        if g.error is not None:
            error = ErrorOut(
                code=g.error.code, message=g.error.message, retryable=g.error.retryable
            )
        return cls(
            id=g.id,
            status=g.status,
            operation_type=g.operation_type,
            provider_id=g.provider_id,
            params=g.params,
            canonical_params=g.canonical_params,
            inputs=g.inputs,
            canonical_inputs=g.canonical_inputs,
            priority=g.priority,
            scheduled_at=g.scheduled_at,
            deadline_at=g.deadline_at,
            name=g.name,
            metadata=g.metadata,
            reproducible_hash=g.reproducible_hash,
            attempt=g.attempt,
            account_id=g.account_id,
            provider_job_id=g.provider_job_id,
            asset=asset,
            error=error,
            created_at=g.created_at,
            updated_at=g.updated_at,
            submitted_at=g.submitted_at,
            completed_at=g.completed_at,
        )

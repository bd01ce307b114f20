"""Response bodies of the HTTP API, and their translation from the domain (request bodies:
`request_bodies`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from genbus.api.domain.listing import Page
from genbus.api.domain.model import Generation, WaitReason
from genbus.api.domain.status import GenerationStatus
from genbus.api.entrypoints.http.request_bodies import PRIORITY_DOC
from genbus.contracts import Asset

_PUBLIC_EXAMPLE: dict[str, Any] = {
    "id": "3f2b8c1e-0d4a-4c55-9a77-1b2c3d4e5f60",
    "user_id": "alice",
    "status": "completed",
    "wait_reason": None,
    "next_attempt_at": None,
    "queue_position": None,
    "estimated_start_at": None,
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {"prompt": "a lighthouse at dusk", "seed": 42},
    "canonical_params": {
        "prompt": "a lighthouse at dusk",
        "seed": 42,
        "quality": "720p",
        "duration": 5,
        "aspect_ratio": "16:9",
    },
    "inputs": [],
    "canonical_inputs": [],
    "priority": 5,
    "scheduled_at": None,
    "deadline_at": "2025-06-01T13:00:00Z",
    "name": "lighthouse",
    "metadata": {},
    "reproducible_hash": "9f2c" + "0" * 60,
    "attempt": 1,
    "account_id": "sim-1",
    "provider_job_id": "job-8c1e",
    "asset": {
        "url": "/api/v1/generations/3f2b8c1e-0d4a-4c55-9a77-1b2c3d4e5f60/asset",
        "stored": True,
        "expires": False,
        "provider_url": "https://cdn.example.com/out.mp4",
        "media_type": "video/mp4",
        "width": 1280,
        "height": 720,
        "duration_s": 5.0,
        "sha256": "5d41" + "0" * 60,
        "size_bytes": 1048576,
    },
    "error": None,
    "created_at": "2025-06-01T12:00:00Z",
    "updated_at": "2025-06-01T12:00:09Z",
    "submitted_at": "2025-06-01T12:00:01Z",
    "completed_at": "2025-06-01T12:00:09Z",
    "parent_generation_id": None,
    "prompt_version_id": None,
    "estimated_cost": 1.0,
    "actual_cost": 1.0,
}


def asset_path(generation_id: UUID) -> str:
    """The durable download route of a generation's stored output (relative to the api)."""
    return f"/api/v1/generations/{generation_id}/asset"


class AssetOut(BaseModel):
    """The output. Once genbus holds a copy (`stored`), `url` is the api's own download route,
    which works for as long as the generation exists; until then `url` is the provider's URL,
    which the provider deletes (`expires` is true)."""

    url: str = Field(
        description="stored: `/api/v1/generations/{id}/asset`, relative to the api's base URL "
        "(needs your API key); not stored: the provider's URL (expires)"
    )
    stored: bool = Field(default=False, description="true: genbus holds a copy, served at `url`")
    expires: bool = Field(
        default=True, description="true: `url` is the provider's and stops working soon"
    )
    provider_url: str | None = Field(
        default=None, description="where the provider published it (expires)"
    )
    media_type: str
    width: int | None
    height: int | None
    duration_s: float | None
    sha256: str | None = Field(
        default=None, description="of the stored copy (also its download's ETag)"
    )
    size_bytes: int | None = Field(default=None, description="of the stored copy")

    @classmethod
    def from_domain(cls, generation_id: UUID, asset: Asset) -> AssetOut:
        provider_url = str(asset.url)
        return cls(
            url=asset_path(generation_id) if asset.stored else provider_url,
            stored=asset.stored,
            expires=not asset.stored,
            provider_url=provider_url,
            media_type=asset.media_type,
            width=asset.width,
            height=asset.height,
            duration_s=asset.duration_s,
            sha256=asset.sha256,
            size_bytes=asset.size_bytes,
        )


class ErrorOut(BaseModel):
    code: str
    message: str
    retryable: bool


class GenerationPublic(BaseModel):
    """A generation as its owner sees it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PUBLIC_EXAMPLE]})

    id: UUID
    user_id: str = Field(description="the owner")
    status: GenerationStatus = Field(
        description="pending → processing → completed | failed | cancelled (terminal)"
    )
    wait_reason: WaitReason | None = Field(
        description="while pending: `scheduled` (scheduled_at is in the future), "
        "`retrying` (a try was refused before the provider took it; again at "
        "`next_attempt_at`), `provider_unavailable` (no account of its provider can take work: "
        "disabled, exhausted, cooling down or circuit breaker open), `user_at_capacity` (the "
        "caller has as many generations in flight as its cap allows), `waiting_for_account` "
        "(due, waiting for a free provider account slot); null otherwise"
    )
    next_attempt_at: datetime | None = Field(
        default=None, description="while `retrying`: when the dispatcher tries again"
    )
    queue_position: int | None = Field(
        default=None,
        description="while pending (on `GET /generations/{id}`): about how many generations "
        "the dispatcher will start before this one on the same provider and operation "
        "(priority, then fair share between users, then arrival); 0 is next. An estimate",
    )
    estimated_start_at: datetime | None = Field(
        default=None,
        description="while pending (on `GET /generations/{id}`): when it should start, from "
        "`queue_position` and how fast the provider's generations ended over the last minute; "
        "null when none ended in that window",
    )
    operation_type: str
    provider_id: str
    params: dict[str, Any] = Field(description="as sent")
    canonical_params: dict[str, Any] = Field(description="validated, defaults filled")
    inputs: list[dict[str, Any]] = Field(description="as sent")
    canonical_inputs: list[dict[str, Any]] = Field(description="every input as a URL")
    priority: int = Field(description=PRIORITY_DOC)
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
    parent_generation_id: UUID | None = Field(description="the generation this one retries")
    prompt_version_id: str | None
    estimated_cost: float | None = Field(
        default=None,
        description="by the price table at creation, in the provider's unit (credits; "
        "Replicate: seconds of compute); null: no price configured",
    )
    actual_cost: float | None = Field(
        default=None, description="as the provider reported it once ended; null: not reported"
    )

    @classmethod
    def from_domain(cls, g: Generation, now: datetime) -> GenerationPublic:
        asset = AssetOut.from_domain(g.id, g.asset) if g.asset is not None else None
        error = None
        if g.error is not None:
            error = ErrorOut(
                code=g.error.code, message=g.error.message, retryable=g.error.retryable
            )
        return cls(
            id=g.id,
            user_id=g.user_id,
            status=g.status,
            wait_reason=g.wait_reason(now),
            next_attempt_at=g.next_attempt_at if g.wait_reason(now) == "retrying" else None,
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
            parent_generation_id=g.parent_generation_id,
            prompt_version_id=g.prompt_version_id,
            estimated_cost=g.estimated_cost,
            actual_cost=g.actual_cost,
        )


class GenerationPage(BaseModel):
    """One page of generations, newest first. Pass `next_cursor` as `cursor` for the next page;
    null means this is the last page."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_PUBLIC_EXAMPLE], "next_cursor": "eyJ0IjogIjIw..."}]
        }
    )

    items: list[GenerationPublic]
    next_cursor: str | None

    @classmethod
    def from_domain(cls, page: Page, now: datetime) -> GenerationPage:
        return cls(
            items=[GenerationPublic.from_domain(g, now) for g in page.items],
            next_cursor=page.next_cursor.encode() if page.next_cursor is not None else None,
        )


class GenerationDeleted(BaseModel):
    """The data of a `generation.deleted` live-status event."""

    id: UUID
    deleted_at: datetime

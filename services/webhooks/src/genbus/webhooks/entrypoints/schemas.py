"""Request and response bodies of the management API."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from genbus.webhooks.domain.model import (
    ALL_KINDS,
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EventKind,
)

URL_FIELD = Field(max_length=2000, description="an `http` or `https` URL reaching a public host")
EVENTS_DOC = (
    "which generation events to receive: `submitted` (accepted by a provider), "
    "`completed`, `failed`, `cancelled` (the terminal ones)"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointCreate(Strict):
    url: str = URL_FIELD
    events: list[EventKind] = Field(
        default_factory=lambda: list(ALL_KINDS), min_length=1, description=EVENTS_DOC
    )
    description: str = Field(default="", max_length=500)


class EndpointPatch(Strict):
    url: str | None = Field(default=None, max_length=2000)
    events: list[EventKind] | None = Field(default=None, min_length=1, description=EVENTS_DOC)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(
        default=None, description="false disables it; true re-enables it and resumes its queue"
    )


class EndpointView(BaseModel):
    id: UUID
    url: str
    description: str
    events: list[EventKind]
    enabled: bool
    disabled_reason: str | None = Field(description="why it is disabled, when it is")
    disabled_at: datetime | None
    consecutive_failures: int = Field(description="failed attempts in a row, across deliveries")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointView:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            events=list(endpoint.event_kinds),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            disabled_at=endpoint.disabled_at,
            consecutive_failures=endpoint.consecutive_failures,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class EndpointCreated(EndpointView):
    secret: str = Field(
        description="the Standard Webhooks signing secret (`whsec_...`): shown only now"
    )


class EndpointList(BaseModel):
    items: list[EndpointView]


class DeliveryView(BaseModel):
    id: UUID
    webhook_id: str = Field(description="the `webhook-id` header, the same on every retry")
    event_id: UUID
    type: str
    generation_id: UUID
    status: DeliveryStatus
    tries: int = Field(description="failed tries since it was last queued")
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Delivery) -> DeliveryView:
        return cls.model_validate(
            {
                "id": d.id,
                "webhook_id": d.webhook_id,
                "event_id": d.source_event_id,
                "type": d.event_type,
                "generation_id": d.generation_id,
                "status": d.status,
                "tries": d.tries,
                "next_attempt_at": d.next_attempt_at,
                "last_status_code": d.last_status_code,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "updated_at": d.updated_at,
            }
        )


class DeliveryList(BaseModel):
    items: list[DeliveryView]


class AttemptView(BaseModel):
    id: UUID
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    succeeded: bool

    @classmethod
    def of(cls, a: Attempt) -> AttemptView:
        return cls(
            id=a.id,
            attempted_at=a.attempted_at,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
            succeeded=a.succeeded,
        )


class AttemptList(BaseModel):
    items: list[AttemptView]

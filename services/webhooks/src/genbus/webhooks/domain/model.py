"""Endpoints, deliveries and attempts: what the webhooks service knows, without I/O."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from genbus.contracts import CompletionStatus, Event, GenerationCompleted, GenerationSubmitted

SECRET_PREFIX = "whsec_"
#: Namespace of the `webhook-id`s: one per (endpoint, event), the same on every retry.
_MESSAGE_NAMESPACE = UUID("6f0c1f55-4d7e-4b53-9a8e-3c1f2b0f9d21")


class EventKind(StrEnum):
    """What an endpoint subscribes to (its event filter)."""

    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def webhook_type(self) -> str:
        """The `type` of the delivered payload: `generation.completed`, ..."""
        return f"generation.{self.value}"


ALL_KINDS: tuple[EventKind, ...] = tuple(EventKind)

_TERMINAL_KIND = {
    CompletionStatus.COMPLETED: EventKind.COMPLETED,
    CompletionStatus.FAILED: EventKind.FAILED,
    CompletionStatus.CANCELLED: EventKind.CANCELLED,
}


def kind_of(event: Event) -> EventKind | None:
    """The webhook event kind of a contract event; None for events never delivered."""
    if isinstance(event, GenerationSubmitted):
        return EventKind.SUBMITTED
    if isinstance(event, GenerationCompleted):
        return _TERMINAL_KIND[event.status]
    return None


def webhook_payload(event: Event, kind: EventKind) -> dict[str, Any]:
    """The JSON body of a delivery: `type`, `timestamp` (when it happened) and `data`."""
    data = event.model_dump(mode="json", exclude={"event_type", "schema_version"})
    return {"type": kind.webhook_type, "timestamp": data["occurred_at"], "data": data}


def webhook_id(endpoint_id: UUID, event_id: UUID) -> str:
    """The `webhook-id` of an event's delivery to an endpoint: stable across retries and
    replays, so a receiver deduplicates by it."""
    return "msg_" + uuid.uuid5(_MESSAGE_NAMESPACE, f"{endpoint_id}:{event_id}").hex


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. Shown once."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    #: Every retry of the schedule failed; a replay sends it again.
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A caller's registered receiver. Its signing secret is kept apart (encrypted)."""

    id: UUID
    user_id: str
    url: str
    description: str
    event_kinds: tuple[EventKind, ...]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    def wants(self, kind: EventKind) -> bool:
        return kind in self.event_kinds


@dataclass(frozen=True, kw_only=True)
class Delivery:
    id: UUID
    endpoint_id: UUID
    source_event_id: UUID
    webhook_id: str
    event_type: str
    generation_id: UUID
    status: DeliveryStatus
    #: Failed tries since it was last (re)queued: the position in the retry schedule.
    tries: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class Attempt:
    id: UUID
    delivery_id: UUID
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    succeeded: bool


@dataclass(frozen=True, kw_only=True)
class DueDelivery:
    """A delivery claimed for sending, with what sending it needs."""

    id: UUID
    endpoint_id: UUID
    webhook_id: str
    url: str
    secret_encrypted: str
    payload: dict[str, Any]
    tries: int


@dataclass(frozen=True)
class SendResult:
    """What one HTTP attempt gave: a status code, or an error that prevented one."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

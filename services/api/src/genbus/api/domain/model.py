"""A generation as the api knows it: an immutable snapshot of one row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from genbus.api.domain.status import GenerationStatus
from genbus.contracts import Asset, ErrorInfo

JsonObject = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Generation:
    id: UUID
    user_id: str
    operation_type: str
    provider_id: str
    status: GenerationStatus
    #: As the user sent them, and canonical (validated, defaults filled: what providers get).
    params: JsonObject
    canonical_params: JsonObject
    #: As sent (`{role, url}` or `{role, generation_id}`), and canonical (every one a URL).
    inputs: list[JsonObject]
    canonical_inputs: list[JsonObject]
    priority: int
    scheduled_at: datetime | None
    deadline_at: datetime
    reproducible_hash: str
    name: str | None
    metadata: JsonObject
    attempt: int
    account_id: str | None
    provider_job_id: str | None
    asset: Asset | None
    error: ErrorInfo | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    #: The generation this one retries, if it is a retry.
    parent_generation_id: UUID | None = None
    #: The caller's own reference to the prompt version it used (opaque to genbus).
    prompt_version_id: str | None = None
    #: Credits by the price table at creation (None: no price), and as the provider reported
    #: them once it ended (None: not reported).
    estimated_cost: float | None = None
    actual_cost: float | None = None
    #: Why the dispatcher last said it holds the generation back (`GenerationWaiting`), when
    #: it tries again, and that report's sequence (only a higher one replaces it).
    dispatch_wait: str | None = None
    next_attempt_at: datetime | None = None
    wait_sequence: int = 0

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def wait_reason(self, now: datetime) -> WaitReason | None:
        """Why a pending generation is not running yet; None once it left `pending`."""
        if self.status is not GenerationStatus.PENDING:
            return None
        if self.scheduled_at is not None and self.scheduled_at > now:
            return WaitReason.SCHEDULED
        if self.dispatch_wait is not None:
            return WaitReason(self.dispatch_wait)
        return WaitReason.WAITING_FOR_ACCOUNT


class WaitReason(StrEnum):
    """Why a generation is still `pending`: `scheduled` (its `scheduled_at` is ahead), or
    what the dispatcher last reported (`GenerationWaiting`: `retrying`,
    `provider_unavailable`, `user_at_capacity`), else `waiting_for_account` (due, waiting for
    a free slot of a provider account)."""

    SCHEDULED = "scheduled"
    WAITING_FOR_ACCOUNT = "waiting_for_account"
    RETRYING = "retrying"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    USER_AT_CAPACITY = "user_at_capacity"

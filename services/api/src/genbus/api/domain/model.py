"""A generation as the api knows it: an immutable snapshot of one row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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

    @property
    def terminal(self) -> bool:
        return self.status.terminal


#: The error a generation fails with when nothing reported an outcome before its deadline.
DEADLINE_EXCEEDED = ErrorInfo(
    code="deadline_exceeded",
    message="the generation did not finish before its deadline",
    retryable=True,
)

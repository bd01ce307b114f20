"""The events the dispatcher announces, built from the job's original request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from genbus.contracts import (
    CompletionStatus,
    ErrorInfo,
    Event,
    GenerationCompleted,
    GenerationRequested,
    GenerationSubmitted,
    derive_event_id,
)


def _envelope(request: Event, event_type: str, attempt: int) -> dict[str, Any]:
    """The fields every event about this generation repeats from an earlier one."""
    return {
        "event_id": derive_event_id(request.generation_id, event_type, attempt),
        "occurred_at": datetime.now(UTC),
        "generation_id": request.generation_id,
        "user_id": request.user_id,
        "provider_id": request.provider_id,
        "operation_type": request.operation_type,
        "attempt": attempt,
    }


def submitted(
    request: GenerationRequested, account_id: str, provider_job_id: str, attempt: int
) -> GenerationSubmitted:
    return GenerationSubmitted(
        **_envelope(request, "generation.submitted", attempt),
        account_id=account_id,
        provider_job_id=provider_job_id,
        deadline_at=request.deadline_at,
    )


def ended(
    request: Event,
    status: CompletionStatus,
    *,
    attempt: int,
    error: ErrorInfo | None = None,
    account_id: str | None = None,
    provider_job_id: str | None = None,
) -> GenerationCompleted:
    """A failed or cancelled outcome decided by the dispatcher (never a success: the poller's)."""
    return GenerationCompleted(
        **_envelope(request, "generation.completed", attempt),
        status=status,
        error=error,
        account_id=account_id,
        provider_job_id=provider_job_id,
    )

"""The events the dispatcher announces, built from the job's original request."""

from __future__ import annotations

from datetime import UTC, datetime

from genbus.contracts import (
    CompletionStatus,
    ErrorInfo,
    GenerationCompleted,
    GenerationRequested,
    GenerationSubmitted,
    derive_event_id,
)


def submitted(
    request: GenerationRequested, account_id: str, provider_job_id: str, attempt: int
) -> GenerationSubmitted:
    return GenerationSubmitted(
        event_id=derive_event_id(request.generation_id, "generation.submitted", attempt),
        occurred_at=datetime.now(UTC),
        generation_id=request.generation_id,
        user_id=request.user_id,
        provider_id=request.provider_id,
        operation_type=request.operation_type,
        account_id=account_id,
        provider_job_id=provider_job_id,
        attempt=attempt,
        deadline_at=request.deadline_at,
    )


def ended(
    request: GenerationRequested,
    status: CompletionStatus,
    *,
    attempt: int,
    error: ErrorInfo | None = None,
    account_id: str | None = None,
    provider_job_id: str | None = None,
) -> GenerationCompleted:
    """A failed or cancelled outcome decided by the dispatcher (never a success: the poller's)."""
    return GenerationCompleted(
        event_id=derive_event_id(request.generation_id, "generation.completed", attempt),
        occurred_at=datetime.now(UTC),
        generation_id=request.generation_id,
        user_id=request.user_id,
        provider_id=request.provider_id,
        operation_type=request.operation_type,
        status=status,
        error=error,
        attempt=attempt,
        account_id=account_id,
        provider_job_id=provider_job_id,
    )

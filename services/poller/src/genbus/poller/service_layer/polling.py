"""Following one submitted provider job: poll, then report its end or ask to be woken later.

JetStream is the timer: an unfinished job's message is nak'ed with a delay, so the poller keeps
no state and any replica can take the next poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from genbus.contracts import (
    COMPLETED,
    CompletionStatus,
    ErrorInfo,
    GenerationCompleted,
    GenerationSubmitted,
    derive_event_id,
)
from genbus.poller.adapters.account_directory import AccountDirectory, AccountUnknown
from genbus.poller.config import PollerSettings
from genbus.poller.domain.schedule import next_poll_delay
from genbus.providers import (
    AdapterRegistry,
    Behaviour,
    JobState,
    JobStatus,
    ProviderJobRef,
    UnknownProvider,
    behaviour_of,
)
from genbus.runtime.consumer import RedeliverLater
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS, observe_since, provider_call
from genbus.runtime.publisher import EventPublisher

log = get_logger(__name__)

_END = {
    JobState.SUCCEEDED: CompletionStatus.COMPLETED,
    JobState.FAILED: CompletionStatus.FAILED,
    JobState.CANCELLED: CompletionStatus.CANCELLED,
}
DEADLINE_EXCEEDED = ErrorInfo(code="deadline_exceeded", message="the job passed its deadline")


@dataclass
class PollerDeps:
    settings: PollerSettings
    adapters: AdapterRegistry
    directory: AccountDirectory
    publisher: EventPublisher


async def poll_submitted(deps: PollerDeps, event: GenerationSubmitted) -> None:
    """Poll once. Returns when the job's end was published; raises RedeliverLater otherwise."""
    settings = deps.settings
    try:
        adapter = deps.adapters.get(event.provider_id)
    except UnknownProvider:
        await _publish_end(
            deps, event, CompletionStatus.FAILED, ErrorInfo(code="unsupported_provider")
        )
        return
    try:
        account = await deps.directory.get(event.account_id)
    except AccountUnknown:
        if _past_deadline(event):
            await _publish_end(deps, event, CompletionStatus.FAILED, DEADLINE_EXCEEDED)
            return
        raise RedeliverLater(1.0, "account not in the directory yet") from None
    ref = ProviderJobRef(
        provider_job_id=event.provider_job_id,
        credentials=account.credentials,
        base_url=account.base_url,
    )
    if _past_deadline(event):
        try:
            with provider_call(event.provider_id, "cancel"):
                await adapter.cancel(ref)
        except Exception as exc:
            log.warning("cancel of overdue job failed", error=repr(exc))
        await _publish_end(deps, event, CompletionStatus.FAILED, DEADLINE_EXCEEDED)
        return
    try:
        with provider_call(event.provider_id, "status"):
            status = await adapter.status(ref)
    except Exception as exc:
        if behaviour_of(exc) is Behaviour.FAIL and hasattr(exc, "to_error_info"):
            await _publish_end(deps, event, CompletionStatus.FAILED, exc.to_error_info())
            return
        # Provider trouble while polling is never fatal: the deadline bounds the retries.
        delay = next_poll_delay(
            max(_age_s(event), 1.0), settings.poll_initial_s, settings.poll_max_s
        )
        raise RedeliverLater(delay, f"status failed: {exc!r}") from None
    if status.terminal:
        done_at = time.perf_counter()
        end = _END[status.state]
        observe_since(METRICS.submitted_to_done, event.occurred_at, event.provider_id, end.value)
        await _publish_end(deps, event, end, status.error, status)
        METRICS.done_to_completed.labels(event.provider_id, end.value).observe(
            time.perf_counter() - done_at
        )
        return
    raise RedeliverLater(
        next_poll_delay(
            _age_s(event),
            settings.poll_initial_s,
            settings.poll_max_s,
            status.retry_after_s,
            status.progress,
        )
    )


def _age_s(event: GenerationSubmitted) -> float:
    """Seconds since the provider accepted the job."""
    return max((datetime.now(UTC) - event.occurred_at).total_seconds(), 0.0)


def _past_deadline(event: GenerationSubmitted) -> bool:
    return datetime.now(UTC) >= event.deadline_at


async def _publish_end(
    deps: PollerDeps,
    event: GenerationSubmitted,
    status: CompletionStatus,
    error: ErrorInfo | None,
    job: JobStatus | None = None,
) -> None:
    if status is CompletionStatus.FAILED and error is None:
        error = ErrorInfo(code="provider_failed")
    completed = GenerationCompleted(
        event_id=derive_event_id(event.generation_id, "generation.completed", event.attempt),
        occurred_at=datetime.now(UTC),
        generation_id=event.generation_id,
        user_id=event.user_id,
        provider_id=event.provider_id,
        operation_type=event.operation_type,
        status=status,
        asset=job.asset if job is not None and status is CompletionStatus.COMPLETED else None,
        error=error if status is CompletionStatus.FAILED else None,
        attempt=event.attempt,
        account_id=event.account_id,
        provider_job_id=event.provider_job_id,
    )
    await deps.publisher.publish(COMPLETED, completed)
    log.info(
        "job ended",
        generation_id=str(event.generation_id),
        status=status.value,
        error=error.code if error else None,
    )

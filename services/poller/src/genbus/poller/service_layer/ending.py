"""Ending a job: its one completed event, which is what releases its provider slot.

`end_job` reports the provider's outcome. `fail_job` reports a failure of the poller's own
(deadline, no adapter, unusable account): logged once with its code and counted. `end_overdue`
ends a job past its deadline, whatever else is wrong, so no slot is ever held for good.
"""

from __future__ import annotations

import asyncio

from genbus.contracts import (
    COMPLETED,
    DEADLINE_EXCEEDED,
    PROVIDER_FAILED,
    CompletionStatus,
    ErrorInfo,
    GenerationCompleted,
    GenerationSubmitted,
)
from genbus.contracts.topology import POLLER_SUBMITTED
from genbus.poller.adapters.account_directory import AccountLookupError
from genbus.poller.dependencies import PollerDeps, Publisher
from genbus.poller.service_layer.metrics import POLLER_METRICS
from genbus.providers import JobStatus, ProviderJobRef
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import provider_call

log = get_logger(__name__)

#: Time allowed for reading the account and asking the provider to cancel an overdue job; within
#: the consumer's ack wait, so the message is not handed to another replica meanwhile.
CANCEL_BUDGET_S = POLLER_SUBMITTED.ack_wait_s * 0.8


async def end_job(
    publisher: Publisher,
    event: GenerationSubmitted,
    status: CompletionStatus,
    error: ErrorInfo | None = None,
    job: JobStatus | None = None,
) -> None:
    """Publish the job's outcome as reported by the provider."""
    if status is CompletionStatus.FAILED and error is None:
        error = PROVIDER_FAILED
    await _publish(publisher, event, status, error, job)
    log.info(
        "job ended",
        generation_id=str(event.generation_id),
        status=status.value,
        error=error.code if error else None,
    )


async def fail_job(
    publisher: Publisher, event: GenerationSubmitted, failure: ErrorInfo, reason: str
) -> None:
    """Publish a failure the poller decided itself; `reason` must not hold secrets."""
    await _publish(publisher, event, CompletionStatus.FAILED, failure, None)
    POLLER_METRICS.poller_failures.labels(event.provider_id, failure.code).inc()
    log.warning(
        "job failed by the poller",
        generation_id=str(event.generation_id),
        provider_id=event.provider_id,
        account_id=event.account_id,
        code=failure.code,
        reason=reason,
    )


async def end_overdue(deps: PollerDeps, event: GenerationSubmitted) -> None:
    """Cancel the job at the provider if its account can be read, then fail it in any case."""
    try:
        async with asyncio.timeout(CANCEL_BUDGET_S):
            cancel = await _try_cancel(deps, event)
    except TimeoutError:
        cancel = f"cancel gave up after {CANCEL_BUDGET_S:g} s"
    await fail_job(deps.publisher, event, DEADLINE_EXCEEDED, f"past the deadline; {cancel}")


async def _try_cancel(deps: PollerDeps, event: GenerationSubmitted) -> str:
    """Ask the provider to cancel; returns what happened, for the log line."""
    try:
        adapter = deps.adapters.get(event.provider_id)
        account = await deps.directory.get(event.account_id)
    except Exception as exc:
        return f"not cancelled ({_describe(exc)})"
    ref = ProviderJobRef(
        provider_job_id=event.provider_job_id,
        credentials=account.credentials,
        base_url=account.base_url,
    )
    try:
        with provider_call(event.provider_id, "cancel"):
            await adapter.cancel(ref)
    except Exception as exc:
        return f"cancel failed ({_describe(exc)})"
    return "cancel requested"


def _describe(exc: Exception) -> str:
    """The error's class and code or safe reason: never its message, which may quote secrets."""
    if isinstance(exc, AccountLookupError):
        return f"{type(exc).__name__}: {exc.reason}"
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}: {code}" if isinstance(code, str) else type(exc).__name__


async def _publish(
    publisher: Publisher,
    event: GenerationSubmitted,
    status: CompletionStatus,
    error: ErrorInfo | None,
    job: JobStatus | None,
) -> None:
    completed = GenerationCompleted.following(
        event,
        status=status,
        attempt=event.attempt,
        asset=job.asset if job is not None and status is CompletionStatus.COMPLETED else None,
        error=error if status is CompletionStatus.FAILED else None,
        account_id=event.account_id,
        provider_job_id=event.provider_job_id,
        cost=job.cost if job is not None else None,
    )
    await publisher.publish(COMPLETED, completed)

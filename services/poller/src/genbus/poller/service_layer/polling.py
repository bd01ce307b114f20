"""Following one submitted provider job: poll, then report its end or ask to be woken later.

JetStream is the timer: an unfinished job's message is nak'ed with a delay, so the poller keeps
no state and any replica can take the next poll. The deadline is checked before anything that
can fail, so every job ends by its deadline and its provider slot is released.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from genbus.contracts import UNSUPPORTED_PROVIDER, CompletionStatus, GenerationSubmitted
from genbus.contracts.topology import POLLER_SUBMITTED
from genbus.poller.dependencies import PollerDeps
from genbus.poller.domain.schedule import next_poll_delay
from genbus.poller.domain.timeline import age_s, is_overdue
from genbus.poller.service_layer.accounts import Unusable, account_for
from genbus.poller.service_layer.ending import end_job, end_overdue, fail_job
from genbus.poller.service_layer.metrics import POLLER_METRICS
from genbus.providers import Behaviour, JobState, ProviderJobRef, UnknownProvider, behaviour_of
from genbus.runtime.consumer import RedeliverLater
from genbus.runtime.metrics import observe_since, provider_call

__all__ = ["STATUS_BUDGET_S", "STATUS_SHARE_OF_ACK_WAIT", "PollerDeps", "poll_submitted"]

#: Time allowed for one status call: within the consumer's ack wait, so the poll ends (and its
#: message is nak'ed with a backoff) before JetStream would hand the message to another replica.
#: A call that takes longer is provider trouble like any other, never a lost job.
STATUS_SHARE_OF_ACK_WAIT = 0.8
STATUS_BUDGET_S = POLLER_SUBMITTED.ack_wait_s * STATUS_SHARE_OF_ACK_WAIT

_END = {
    JobState.SUCCEEDED: CompletionStatus.COMPLETED,
    JobState.FAILED: CompletionStatus.FAILED,
    JobState.CANCELLED: CompletionStatus.CANCELLED,
}


async def poll_submitted(
    deps: PollerDeps, event: GenerationSubmitted, *, status_budget_s: float | None = None
) -> None:
    """Poll once. Returns when the job's end was published; raises RedeliverLater otherwise.

    The status call is given up after `status_budget_s` (default `STATUS_BUDGET_S`)."""
    settings = deps.settings
    now = datetime.now(UTC)
    if is_overdue(event, now):
        await end_overdue(deps, event)
        return
    try:
        adapter = deps.adapters.get(event.provider_id)
    except UnknownProvider:
        reason = f"no adapter for provider {event.provider_id!r}"
        await fail_job(deps.publisher, event, UNSUPPORTED_PROVIDER, reason)
        return
    account = await account_for(deps.directory, event, settings.account_unknown_grace_s, now)
    if isinstance(account, Unusable):
        await fail_job(deps.publisher, event, account.failure, account.reason)
        return
    ref = ProviderJobRef(
        provider_job_id=event.provider_job_id,
        credentials=account.credentials,
        base_url=account.base_url,
    )
    try:
        budget = STATUS_BUDGET_S if status_budget_s is None else status_budget_s
        with provider_call(event.provider_id, "status"):
            async with asyncio.timeout(budget):
                status = await adapter.status(ref)
    except Exception as exc:
        if behaviour_of(exc) is Behaviour.FAIL and hasattr(exc, "to_error_info"):
            await end_job(deps.publisher, event, CompletionStatus.FAILED, exc.to_error_info())
            return
        # Provider trouble while polling is never fatal: the deadline bounds the retries.
        delay = next_poll_delay(
            max(age_s(event, datetime.now(UTC)), 1.0), settings.poll_initial_s, settings.poll_max_s
        )
        raise RedeliverLater(delay, f"status failed: {exc!r}") from None
    if status.terminal:
        done_at = time.perf_counter()
        end = _END[status.state]
        observe_since(
            POLLER_METRICS.submitted_to_done, event.occurred_at, event.provider_id, end.value
        )
        await end_job(deps.publisher, event, end, status.error, status)
        POLLER_METRICS.done_to_completed.labels(event.provider_id, end.value).observe(
            time.perf_counter() - done_at
        )
        return
    raise RedeliverLater(
        next_poll_delay(
            age_s(event, datetime.now(UTC)),
            settings.poll_initial_s,
            settings.poll_max_s,
            status.retry_after_s,
            status.progress,
        )
    )

"""What the dispatcher shows SREs: queue and slot gauges, and the trace a queued job keeps.

A job waits in the dispatch queue between the `requested` message and its submission, possibly
on another replica: the trace context it arrived with is queued with it, so the submission
continues the generation's trace.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from genbus.contracts import GenerationRequested
from genbus.dispatcher.service_layer.metrics import DISPATCH_METRICS
from genbus.dispatcher.service_layer.unit_of_work import UowFactory
from genbus.runtime.tracing import current_trace_headers


class TracedRequest(GenerationRequested):
    """A request as the dispatch queue stores it: the event plus its trace context."""

    trace_context: dict[str, str] = Field(default_factory=dict)


def with_trace_context(
    event: GenerationRequested, trace_context: Mapping[str, str] | None = None
) -> GenerationRequested:
    """`event` carrying `trace_context` (default: the current one), to be queued with it."""
    headers = dict(trace_context) if trace_context is not None else current_trace_headers()
    if not headers:
        return event
    return TracedRequest(**event.model_dump(), trace_context=headers)


def trace_context_of(request: Mapping[str, object]) -> dict[str, str] | None:
    """The trace context queued with a request, if any."""
    value = request.get("trace_context")
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items()}


class DispatchGauges:
    """Refreshes due queue depth, oldest due job's wait, slots and breaker per account (on each
    scrape)."""

    def __init__(self, uow: UowFactory) -> None:
        self._uow = uow
        self._providers: set[str] = set()
        self._accounts: set[tuple[str, str]] = set()

    async def refresh(self) -> None:
        async with self._uow() as uow:
            queues = await uow.jobs.queue_depth()
            accounts = await uow.accounts.slots()
        seen = {r.provider_id for r in queues} | {r.provider_id for r in accounts}
        for provider in self._providers - seen:
            DISPATCH_METRICS.queue_depth.remove(provider)
            DISPATCH_METRICS.queue_oldest_age.remove(provider)
        for provider in seen:
            DISPATCH_METRICS.queue_depth.labels(provider).set(0)
            DISPATCH_METRICS.queue_oldest_age.labels(provider).set(0)
        for queue in queues:
            # Due jobs only: a job scheduled for later is not waiting (as `genbus status` says).
            DISPATCH_METRICS.queue_depth.labels(queue.provider_id).set(queue.due)
            DISPATCH_METRICS.queue_oldest_age.labels(queue.provider_id).set(
                queue.oldest_waiting_s or 0
            )
        self._providers = seen
        current = {(r.provider_id, r.id) for r in accounts}
        for provider, account in self._accounts - current:
            for state in ("busy", "free"):
                DISPATCH_METRICS.account_slots.remove(provider, account, state)
            DISPATCH_METRICS.account_breaker_open.remove(provider, account)
        for row in accounts:
            free = max(row.max_concurrent - row.busy, 0) if row.usable else 0
            DISPATCH_METRICS.account_slots.labels(row.provider_id, row.id, "busy").set(row.busy)
            DISPATCH_METRICS.account_slots.labels(row.provider_id, row.id, "free").set(free)
            DISPATCH_METRICS.account_breaker_open.labels(row.provider_id, row.id).set(
                1 if row.breaker_tripped else 0
            )
        self._accounts = current

"""Bulkheads: a concurrency budget per provider, so one slow provider never delays another.

Each replica polls at most `max_polls_per_provider` jobs of one provider at a time. A message
whose provider is at that limit is not held (holding it would pin memory, ack-pending slots and
handler workers for a provider that is not answering): it is put back at once, nak'ed with a
short jittered delay (`provider_busy_retry_s`), and counted in
`genbus_poller_polls_deferred_total`. Its neighbours of other providers are not affected: the
consumer handles messages one by one, concurrently, and never waits for a batch.

The deadline still comes first: an overdue job whose provider is at its limit is failed with
`deadline_exceeded` at once, without asking the (busy) provider to cancel it.

Provider calls are bounded too (see `polling.status_budget_s`), so a permit is never held for
longer than about the consumer's ack wait.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from genbus.contracts import DEADLINE_EXCEEDED, GenerationSubmitted
from genbus.poller.dependencies import PollerDeps
from genbus.poller.domain.timeline import is_overdue
from genbus.poller.service_layer.ending import fail_job
from genbus.poller.service_layer.metrics import POLLER_METRICS
from genbus.poller.service_layer.polling import poll_submitted
from genbus.runtime.consumer import RedeliverLater


class ProviderBulkheads:
    """Non-blocking permits, `limit` per provider (one event loop: plain counters suffice)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a provider needs at least one poll at a time, not {limit}")
        self.limit = limit
        self._in_flight: Counter[str] = Counter()

    def in_flight(self, provider_id: str) -> int:
        """Polls of `provider_id` holding a permit now."""
        return self._in_flight[provider_id]

    @contextmanager
    def permit(self, provider_id: str) -> Iterator[bool]:
        """Yields True with a permit held until the block ends, False if the budget is full."""
        if self._in_flight[provider_id] >= self.limit:
            yield False
            return
        self._in_flight[provider_id] += 1
        gauge = POLLER_METRICS.poller_polls_in_flight.labels(provider_id)
        gauge.inc()
        try:
            yield True
        finally:
            self._in_flight[provider_id] -= 1
            if not self._in_flight[provider_id]:
                del self._in_flight[provider_id]
            gauge.dec()


async def poll_within_budget(
    deps: PollerDeps,
    bulkheads: ProviderBulkheads,
    event: GenerationSubmitted,
    status_budget_s: float | None = None,
) -> None:
    """`poll_submitted` under the provider's budget; RedeliverLater soon when it is full."""
    with bulkheads.permit(event.provider_id) as granted:
        if granted:
            await poll_submitted(deps, event, status_budget_s=status_budget_s)
            return
    POLLER_METRICS.poller_polls_deferred.labels(event.provider_id).inc()
    if is_overdue(event, datetime.now(UTC)):
        reason = "past the deadline; not cancelled (provider at its poll limit)"
        await fail_job(deps.publisher, event, DEADLINE_EXCEEDED, reason)
        return
    retry = deps.settings.provider_busy_retry_s
    raise RedeliverLater(
        random.uniform(retry / 2, retry),  # jittered: deferred neighbours do not return together
        f"provider {event.provider_id!r} at its limit of {bulkheads.limit} polls",
    )


def worker_limit(max_polls_per_provider: int, providers: int, batch_size: int) -> int:
    """Messages one replica handles at once: every provider's full budget, plus a pull's worth
    for the quick ones (deferred, unknown provider), so a full budget never stalls fetching."""
    return max_polls_per_provider * max(providers, 1) + batch_size

"""The poller's own metrics: provider job life, polls in flight and deferred, its failures.

Shared metrics (provider calls, outbox, dead letters, HTTP, dependencies) are
`genbus.runtime.metrics.METRICS`; `docs/observability.md` lists them all.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from genbus.runtime.metrics import LATENCY_BUCKETS_S


class PollerMetrics:
    """Registered once on `registry` (the process-wide one by default)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.submitted_to_done = Histogram(
            "genbus_provider_job_seconds",
            "From the submitted event to the poll that saw the job terminal (poller)",
            ["provider", "status"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.done_to_completed = Histogram(
            "genbus_done_to_completed_seconds",
            "From the poll that saw the provider job terminal to the completed event stored "
            "in JetStream (poller)",
            ["provider", "status"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.poller_failures = Counter(
            "genbus_poller_failures_total",
            "Jobs the poller itself ended failed (deadline, unsupported provider, unusable "
            "account), by provider and code",
            ["provider", "code"],
            registry=registry,
        )
        self.poller_polls_in_flight = Gauge(
            "genbus_poller_polls_in_flight",
            "Polls running now on this replica (poller), by provider; at most "
            "GENBUS_POLLER_MAX_POLLS_PER_PROVIDER each",
            ["provider"],
            registry=registry,
        )
        self.poller_polls_deferred = Counter(
            "genbus_poller_polls_deferred_total",
            "Polls put off because their provider was at its concurrency limit on this replica "
            "(poller; the message is nak'ed with a short delay), by provider",
            ["provider"],
            registry=registry,
        )


POLLER_METRICS = PollerMetrics()

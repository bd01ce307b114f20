"""The api's own metrics: generation transitions, admission control, live-status streams.

Shared metrics (provider calls, outbox, dead letters, HTTP, dependencies) are
`genbus.runtime.metrics.METRICS`; `docs/observability.md` lists them all.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class ApiMetrics:
    """Registered once on `registry` (the process-wide one by default)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.generation_transitions = Counter(
            "genbus_generation_transitions_total",
            "Generations entering a status (api), by provider and new status",
            ["provider", "status"],
            registry=registry,
        )
        self.api_backlog = Gauge(
            "genbus_api_backlog",
            "The api replica's backlog estimate admission control compares with its bound, by "
            "kind: pending (due, not yet submitted generations), outbox (unpublished rows)",
            ["kind"],
            registry=registry,
        )
        self.api_backlog_limit = Gauge(
            "genbus_api_backlog_limit",
            "The bound of each backlog kind past which new generations are refused (0: none)",
            ["kind"],
            registry=registry,
        )
        self.api_backlog_drain_rate = Gauge(
            "genbus_api_backlog_drain_per_second",
            "How fast each backlog kind is draining (smoothed); what Retry-After is based on",
            ["kind"],
            registry=registry,
        )
        self.api_admission_refusals = Counter(
            "genbus_api_admission_refusals_total",
            "Requests refused with 429 by admission control, by reason: pending, outbox, "
            "user_pending (new generations), inflight (any request of a key with too many in "
            "progress), inflight_total (any request past the replica's bound in progress)",
            ["reason"],
            registry=registry,
        )
        self.api_sse_streams = Gauge(
            "genbus_api_sse_streams",
            "Live-status (SSE) streams open on this api replica",
            registry=registry,
        )
        self.api_sse_refusals = Counter(
            "genbus_api_sse_refusals_total",
            "Live-status streams refused with 429 too_many_streams, by scope: key, replica",
            ["scope"],
            registry=registry,
        )
        self.api_live_reads = Counter(
            "genbus_api_live_reads_total",
            "Change-log reads for live-status streams, by kind: shared (one per user and "
            "replica per change or catch-up tick), own (a stream catching up from an older row)",
            ["kind"],
            registry=registry,
        )


API_METRICS = ApiMetrics()


def record_generation_status(provider_id: str, status: str) -> None:
    """Call once per generation entering `status` (after the commit that moved it)."""
    API_METRICS.generation_transitions.labels(provider_id, status).inc()

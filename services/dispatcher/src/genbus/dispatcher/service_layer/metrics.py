"""The dispatcher's own metrics: its queue, account slots and breakers, time to submit.

Shared metrics (provider calls, outbox, dead letters, HTTP, dependencies) are
`genbus.runtime.metrics.METRICS`; `docs/observability.md` lists them all.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from genbus.runtime.metrics import LATENCY_BUCKETS_S


class DispatcherMetrics:
    """Registered once on `registry` (the process-wide one by default)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.queue_depth = Gauge(
            "genbus_dispatch_queue_depth",
            "Queued generations waiting for a slot (dispatcher), by provider",
            ["provider"],
            registry=registry,
        )
        self.queue_oldest_age = Gauge(
            "genbus_dispatch_queue_oldest_age_seconds",
            "Age of the oldest queued generation (dispatcher), by provider; 0 when empty",
            ["provider"],
            registry=registry,
        )
        self.account_slots = Gauge(
            "genbus_account_slots",
            "Provider account slots (dispatcher), by account and state busy|free",
            ["provider", "account", "state"],
            registry=registry,
        )
        self.account_breaker_open = Gauge(
            "genbus_account_breaker_open",
            "Provider accounts whose circuit breaker is not closed (dispatcher): 1 while open "
            "or half-open (waiting for a probe submission to succeed), 0 when closed",
            ["provider", "account"],
            registry=registry,
        )
        self.account_breaker_trips = Counter(
            "genbus_account_breaker_trips_total",
            "Times an account's circuit breaker opened after transient provider failures "
            "(timeouts, 5xx, answers lost) (dispatcher), by provider",
            ["provider"],
            registry=registry,
        )
        self.requested_to_submitted = Histogram(
            "genbus_requested_to_submitted_seconds",
            "From the request's occurred_at to the provider accepting the job (dispatcher)",
            ["provider"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.submissions_in_doubt = Counter(
            "genbus_submissions_in_doubt_total",
            "Job-creating provider calls whose outcome was unknown (no answer, a holder killed "
            "or fenced out mid-call), by provider and resolution: found (looked up at the "
            "provider), not_found, replayed (resubmitted with the same idempotency key), "
            "unknown (generation failed submission_outcome_unknown)",
            ["provider", "resolution"],
            registry=registry,
        )
        self.leases_lost = Counter(
            "genbus_dispatch_leases_lost_total",
            "Claims a dispatcher gave up mid-submission (dispatcher), by provider and reason: "
            "recovered (another holder took it), unrenewable (the database could not be "
            "reached in time), shutdown",
            ["provider", "reason"],
            registry=registry,
        )
        self.overdue_submitted = Counter(
            "genbus_dispatch_overdue_submitted_total",
            "Submitted jobs the dispatcher's sweep failed past their deadline and grace "
            "(nothing else ended them), by provider",
            ["provider"],
            registry=registry,
        )
        self.jobs_purged = Counter(
            "genbus_dispatch_jobs_purged_total",
            "Finished dispatch jobs deleted after their retention",
            registry=registry,
        )


DISPATCH_METRICS = DispatcherMetrics()

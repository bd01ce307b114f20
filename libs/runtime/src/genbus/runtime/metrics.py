"""Every genbus domain metric, in one place: what each service exports on `/metrics`.

Message counts and latencies per subscriber come from FastStream's Prometheus middleware
(`faststream_*`, see `service.make_broker`); the metrics below are genbus's own. Each service
only moves the ones it owns, so a series appears on the service that can see it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

#: From milliseconds to the longest deadline a generation may have (hours).
LATENCY_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
PROVIDER_CALL_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GenbusMetrics:
    """The metric objects, registered once on `registry` (the process-wide one by default)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        # -- api: the generation state machine
        self.generation_transitions = Counter(
            "genbus_generation_transitions_total",
            "Generations entering a status (api), by provider and new status",
            ["provider", "status"],
            registry=registry,
        )
        self.generations = Gauge(
            "genbus_generations",
            "Generations currently in each status (api, refreshed on scrape)",
            ["status"],
            registry=registry,
        )
        # -- dispatcher: queue, slots, time to submit
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
        # -- poller: provider job life and completion
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
        # -- provider calls (dispatcher: submit, cancel; poller: status, cancel)
        self.provider_calls = Counter(
            "genbus_provider_calls_total",
            "Provider API calls, by provider, operation and outcome code ('ok' or error code)",
            ["provider", "operation", "code"],
            registry=registry,
        )
        self.provider_call_seconds = Histogram(
            "genbus_provider_call_seconds",
            "Provider API call duration, by provider and operation",
            ["provider", "operation"],
            buckets=PROVIDER_CALL_BUCKETS_S,
            registry=registry,
        )
        # -- runtime: dead letters and the outbox
        self.dead_letters = Counter(
            "genbus_dead_letters_total",
            "Messages moved to the dead-letter stream, by consumer and reason class",
            ["consumer", "reason"],
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "genbus_outbox_backlog",
            "Outbox rows committed but not yet published, by service",
            ["service"],
            registry=registry,
        )
        self.jobs_purged = Counter(
            "genbus_dispatch_jobs_purged_total",
            "Finished dispatch jobs deleted after their retention",
            registry=registry,
        )
        self.dependency_up = Gauge(
            "genbus_dependency_up",
            "1 when the service's last readiness check reached the dependency, else 0",
            ["service", "dependency"],
            registry=registry,
        )
        # -- HTTP servers (api routes, worker admin routes)
        self.http_requests = Counter(
            "genbus_http_requests_total",
            "HTTP requests served, by method, route template and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_request_seconds = Histogram(
            "genbus_http_request_seconds",
            "HTTP request duration (to the end of the response body), by method and route",
            ["method", "route"],
            buckets=PROVIDER_CALL_BUCKETS_S,
            registry=registry,
        )
        self.outbox_published = Counter(
            "genbus_outbox_published_total",
            "Outbox rows published to JetStream, by service",
            ["service"],
            registry=registry,
        )
        # -- api: admission control (429 `overloaded`) and live-status stream caps
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


#: The process-wide metrics, on the default registry that `/metrics` serves.
METRICS = GenbusMetrics()


# -- helpers the services call where the facts are known


def record_generation_status(provider_id: str, status: str) -> None:
    """api: call once per generation entering `status` (after the commit that moved it)."""
    METRICS.generation_transitions.labels(provider_id, status).inc()


def set_generation_counts(counts: Mapping[str, int], statuses: tuple[str, ...] = ()) -> None:
    """api: current generations per status (e.g. from a `GROUP BY status` on scrape).

    Statuses listed in `statuses` but absent from `counts` are set to 0, so a drained status
    does not keep its last value.
    """
    for status in {*statuses, *counts}:
        METRICS.generations.labels(status).set(counts.get(status, 0))


def observe_since(histogram: Histogram, since: datetime, *labels: str) -> float:
    """Observe the seconds from `since` (an aware timestamp) to now; returns them."""
    elapsed = max(0.0, (datetime.now(UTC) - since).total_seconds())
    histogram.labels(*labels).observe(elapsed)
    return elapsed


@contextmanager
def provider_call(provider_id: str, operation: str) -> Iterator[None]:
    """Count and time one provider API call; the outcome is 'ok' or the error's `code`."""
    started = time.perf_counter()
    code = "ok"
    try:
        yield
    except BaseException as exc:
        code = str(getattr(exc, "code", None) or type(exc).__name__)
        raise
    finally:
        METRICS.provider_call_seconds.labels(provider_id, operation).observe(
            time.perf_counter() - started
        )
        METRICS.provider_calls.labels(provider_id, operation, code).inc()

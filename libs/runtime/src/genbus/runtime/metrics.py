"""The metrics every service shares: provider calls, dead letters, the outbox, HTTP, dependencies.

Each consumer counts its messages by outcome and times their handling
(`genbus_consumer_messages_total`, `genbus_consumer_message_seconds`, see `consumer`). Each
service declares its own domain metrics in its `service_layer/metrics.py`;
`docs/observability.md` lists them all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
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
MESSAGE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0)
PROVIDER_CALL_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GenbusMetrics:
    """The shared metrics, registered once on `registry` (the process-wide one by default)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
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
        self.dead_letters = Counter(
            "genbus_dead_letters_total",
            "Messages moved to the dead-letter stream, by consumer and reason class",
            ["consumer", "reason"],
            registry=registry,
        )
        self.consumer_messages = Counter(
            "genbus_consumer_messages_total",
            "Messages a durable consumer handled, by consumer and outcome "
            "(acked, nacked, dead_lettered)",
            ["consumer", "outcome"],
            registry=registry,
        )
        self.consumer_message_seconds = Histogram(
            "genbus_consumer_message_seconds",
            "Time from a message's arrival to its ack, nak or dead letter, by consumer",
            ["consumer"],
            buckets=MESSAGE_BUCKETS_S,
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "genbus_outbox_backlog",
            "Outbox rows committed but not yet published, by service",
            ["service"],
            registry=registry,
        )
        self.outbox_published = Counter(
            "genbus_outbox_published_total",
            "Outbox rows published to JetStream, by service",
            ["service"],
            registry=registry,
        )
        self.dependency_up = Gauge(
            "genbus_dependency_up",
            "1 when the service's last readiness check reached the dependency, else 0",
            ["service", "dependency"],
            registry=registry,
        )
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


#: The process-wide metrics, on the default registry that `/metrics` serves.
METRICS = GenbusMetrics()


# -- helpers the services call where the facts are known


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

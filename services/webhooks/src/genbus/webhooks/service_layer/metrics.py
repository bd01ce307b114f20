"""The webhooks service's metrics (`docs/observability.md`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from genbus.webhooks.service_layer.ports import Store


@dataclass(frozen=True)
class WebhookMetrics:
    attempts: Counter
    queue_depth: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry = REGISTRY) -> WebhookMetrics:
        return cls(
            attempts=Counter(
                "genbus_webhook_attempts",
                "Webhook delivery attempts by outcome: succeeded, retrying (failed, tried "
                "again later), exhausted (failed, the retry schedule spent)",
                ["outcome"],
                registry=registry,
            ),
            queue_depth=Gauge(
                "genbus_webhook_queue_depth",
                "Deliveries due now and not yet sent (pending, of enabled endpoints)",
                registry=registry,
            ),
        )


WEBHOOK_METRICS = WebhookMetrics.create()


def queue_depth_refresher(store: Store) -> Callable[[], Awaitable[None]]:
    async def refresh() -> None:
        WEBHOOK_METRICS.queue_depth.set(await store.queue_depth(datetime.now(UTC)))

    return refresh

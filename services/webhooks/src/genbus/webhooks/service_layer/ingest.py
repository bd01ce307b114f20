"""An event arrives: one delivery for each of its user's endpoints that subscribe to it.

Idempotent: a redelivered event meets the (endpoint, event) unique key and adds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from genbus.contracts import Event
from genbus.webhooks.domain.model import kind_of, webhook_id, webhook_payload
from genbus.webhooks.service_layer.ports import NewDelivery, Store


async def ingest_event(store: Store, event: Event) -> int:
    """Queue the deliveries of `event`; how many were new."""
    kind = kind_of(event)
    if kind is None:
        return 0
    endpoint_ids = await store.subscribed_endpoints(event.user_id, kind)
    if not endpoint_ids:
        return 0
    payload = webhook_payload(event, kind)
    now = datetime.now(UTC)
    return await store.add_deliveries(
        [
            NewDelivery(
                id=uuid4(),
                endpoint_id=endpoint_id,
                source_event_id=event.event_id,
                webhook_id=webhook_id(endpoint_id, event.event_id),
                event_type=kind.webhook_type,
                generation_id=event.generation_id,
                payload=payload,
                next_attempt_at=now,
            )
            for endpoint_id in endpoint_ids
        ]
    )

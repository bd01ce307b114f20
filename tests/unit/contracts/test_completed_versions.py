"""`GenerationCompleted` v2 (`asset.stored`, `sha256`, `size_bytes`) beside v1: producers send
v2, every consumer still reads v1 (an asset without `stored` is the provider's, expiring)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

from genbus.contracts import COMPLETED, GenerationCompleted, GenerationRequested
from genbus.contracts.schema import committed_schemas
from genbus.webhooks.domain.model import EventKind, webhook_payload


def _v1_payload() -> dict[str, object]:
    """A completed event as a v1 producer wrote it: only the fields the v1 schema has."""
    return {
        "event_id": str(uuid4()),
        "event_type": "generation.completed",
        "schema_version": 1,
        "occurred_at": "2026-12-01T12:00:00Z",
        "generation_id": str(uuid4()),
        "user_id": "alice",
        "provider_id": "sim",
        "operation_type": "text_to_video",
        "status": "completed",
        "asset": {"url": "https://cdn.example.com/out.mp4", "media_type": "video/mp4"},
        "attempt": 1,
    }


def test_the_v1_schema_has_no_stored_flag_and_v2_adds_it_optional() -> None:
    v1 = committed_schemas()["GenerationCompleted.v1"]["$defs"]["Asset"]
    v2 = committed_schemas()["GenerationCompleted.v2"]["$defs"]["Asset"]
    assert "stored" not in v1["properties"]
    assert "stored" in v2["properties"]
    assert "stored" not in v2.get("required", [])


def test_a_v1_event_is_read_as_a_provider_url_that_expires() -> None:
    event = COMPLETED.model.model_validate_json(json.dumps(_v1_payload()))
    assert isinstance(event, GenerationCompleted)
    assert event.schema_version == 1
    assert event.asset is not None
    assert (event.asset.stored, event.asset.sha256, event.asset.size_bytes) == (False, None, None)


def test_producers_send_v2_with_the_flag() -> None:
    requested = GenerationRequested.new(
        generation_id=uuid4(),
        user_id="alice",
        provider_id="sim",
        operation_type="text_to_video",
        params={},
        deadline_at=datetime.now(UTC),
        reproducible_hash="0" * 64,
    )
    event = GenerationCompleted.following(
        requested,
        status="completed",  # type: ignore[arg-type]
        attempt=1,
        asset={"url": "https://cdn.example.com/out.mp4", "media_type": "video/mp4"},  # type: ignore[arg-type]
    )
    body = json.loads(event.model_dump_json())
    assert body["schema_version"] == GenerationCompleted.SCHEMA_VERSION == 2
    assert body["asset"]["stored"] is False


def test_webhook_receivers_get_the_flag_from_either_version() -> None:
    event = COMPLETED.model.model_validate(_v1_payload())
    data = webhook_payload(event, EventKind.COMPLETED)["data"]
    assert data["asset"]["stored"] is False
    assert data["asset"]["url"] == "https://cdn.example.com/out.mp4"

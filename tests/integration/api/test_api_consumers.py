"""Events the api can never apply are dead-lettered with the reason, not retried forever."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from api_harness import Api, completed_event, eventually

from genbus.contracts import COMPLETED, DEAD_LETTER_STREAM, GENERATIONS_STREAM
from genbus.runtime.deadletter import list_dead_letters
from genbus.runtime.publisher import encode_event

pytestmark = pytest.mark.integration


async def test_an_event_for_an_unknown_generation_is_dead_lettered(api: Api) -> None:
    ghost = {"id": str(uuid4()), "provider_id": "sim", "operation_type": "text_to_video"}
    await api.publish(COMPLETED, completed_event(ghost))

    letters = await eventually(lambda: list_dead_letters(api.js), lambda found: len(found) == 1)
    assert letters[0].consumer == "api-completed"
    assert "unknown generation" in letters[0].reason
    assert letters[0].original_subject == COMPLETED.subject("sim")
    info = await api.js.stream_info(DEAD_LETTER_STREAM.name)
    assert info.state.messages == 1


async def test_a_v1_completed_event_is_projected_as_an_expiring_provider_url(api: Api) -> None:
    """A producer still on `GenerationCompleted` v1 (no `asset.stored`): the api reads it."""
    created = await api.create(
        operation_type="text_to_video", provider_id="sim", params={"prompt": "p"}
    )
    message = encode_event(COMPLETED, completed_event(created))
    v1 = json.loads(message.payload)
    v1["schema_version"] = 1
    for added_in_v2 in ("stored", "sha256", "size_bytes"):
        del v1["asset"][added_in_v2]
    ack = await api.js.publish(
        message.subject,
        json.dumps(v1).encode(),
        stream=GENERATIONS_STREAM.name,
        headers=message.headers,
    )
    assert not ack.duplicate
    done = await api.wait_status(created["id"], "completed")
    assert (done["asset"]["stored"], done["asset"]["expires"]) == (False, True)
    assert done["asset"]["url"] == done["asset"]["provider_url"] == str(v1["asset"]["url"])

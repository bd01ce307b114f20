"""Events the api can never apply are dead-lettered with the reason, not retried forever."""

from __future__ import annotations

from uuid import uuid4

import pytest
from api_harness import Api, completed_event, eventually

from genbus.contracts import COMPLETED, DEAD_LETTER_STREAM
from genbus.runtime.deadletter import list_dead_letters

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

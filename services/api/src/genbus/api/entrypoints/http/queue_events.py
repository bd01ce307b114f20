"""`queue` events of a pending generation's live-status stream: its queue standing each time
its position changes (`live.follow_queue`), merged into the stream of its changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from sse_starlette import ServerSentEvent

from genbus.api.adapters.queue_standing import QueueStanding

QUEUE_EVENT = "queue"
#: The JSON schema of a `queue` event's data.
QUEUE_EVENT_DATA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "queue_position", "estimated_start_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "queue_position": {"type": "integer", "minimum": 0},
        "estimated_start_at": {"type": ["string", "null"], "format": "date-time"},
    },
}


async def queue_events(
    generation_id: UUID, standings: AsyncIterator[QueueStanding]
) -> AsyncIterator[ServerSentEvent]:
    """Each standing as an SSE `queue` event. No id: the stream resumes from its changes."""
    async for standing in standings:
        start = standing.estimated_start_at
        data = {
            "id": str(generation_id),
            "queue_position": standing.position,
            "estimated_start_at": start.isoformat() if start is not None else None,
        }
        yield ServerSentEvent(json.dumps(data), event=QUEUE_EVENT)


_ENDED = object()


async def merged(
    main: AsyncIterator[ServerSentEvent], extra: AsyncIterator[ServerSentEvent]
) -> AsyncIterator[ServerSentEvent]:
    """The events of both as they come; ends when `main` ends (`extra` is then closed)."""
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

    async def pump(tag: int, source: AsyncIterator[ServerSentEvent]) -> None:
        try:
            async for item in source:
                await queue.put((tag, item))
        except Exception as exc:
            await queue.put((tag, exc))
        finally:
            await queue.put((tag, _ENDED))

    tasks = [asyncio.create_task(pump(0, main)), asyncio.create_task(pump(1, extra))]
    try:
        while True:
            tag, item = await queue.get()
            if isinstance(item, Exception):
                raise item
            if item is _ENDED:
                if tag == 0:
                    return
                continue
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

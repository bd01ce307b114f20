"""Live status as Server-Sent Events: one generation until it ends, or all of yours.

Each event is one row of the change log: `id:` is its sequence number (send it back as
`Last-Event-ID` to resume without loss or repeats), `event:` is `generation` (data: the
generation as `GET` returns it, as of that change) or `generation.deleted` (data: `{id,
deleted_at}`). Comment lines (`: ping`) keep idle connections open.
"""

from __future__ import annotations

import json
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from genbus.api.adapters.change_log import DELETED_EVENT, ChangeRecord
from genbus.api.adapters.repository import generation_from_snapshot
from genbus.api.bootstrap import ApiRuntime
from genbus.api.domain.api_keys import Principal
from genbus.api.domain.status import GenerationStatus
from genbus.api.entrypoints.http.auth import CurrentPrincipal
from genbus.api.entrypoints.http.deps import GenerationId, KnownQueryOnly, RuntimeDep
from genbus.api.entrypoints.http.problems import STREAM_CODES, problem_responses
from genbus.api.entrypoints.http.queue_events import (
    QUEUE_EVENT,
    QUEUE_EVENT_DATA,
    merged,
    queue_events,
)
from genbus.api.entrypoints.http.schemas import GenerationDeleted, GenerationPublic
from genbus.api.service_layer import generations, live
from genbus.api.service_layer.stream_slots import StreamSlot
from genbus.runtime.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

router = APIRouter(
    tags=["live status"],
    responses=problem_responses(401, 422, 429, 503),
    dependencies=[KnownQueryOnly],
)

MAX_EVENT_ID = 2**63 - 1

LastEventId = Annotated[
    int | None,
    Header(
        alias="Last-Event-ID",
        ge=0,
        le=MAX_EVENT_ID,
        description="The `id:` of the last event received: the stream resumes right after it "
        "(browsers' EventSource sends it by itself when it reconnects).",
    ),
]

_STREAM_EXAMPLE = (
    'id: 41\nevent: generation\ndata: {"id": "3f2b8c1e-...", "status": "pending", ...}\n\n'
    ": ping\n\n"
    'id: 57\nevent: generation\ndata: {"id": "3f2b8c1e-...", "status": "processing", ...}\n\n'
)


def _json_data(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}


#: One event of the stream (OpenAPI 3.1: the `schema` of `text/event-stream` is that of each
#: event, its `data` a JSON document).
EVENT_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["event", "data", "id"],
            "properties": {
                "event": {"const": "generation"},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": _json_data({"$ref": "#/components/schemas/GenerationPublic"}),
            },
        },
        {
            "type": "object",
            "required": ["event", "data", "id"],
            "properties": {
                "event": {"const": "generation.deleted"},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": _json_data(GenerationDeleted.model_json_schema()),
            },
        },
        {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": QUEUE_EVENT},
                "data": _json_data(QUEUE_EVENT_DATA),
            },
        },
    ]
}


def _stream_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"text/event-stream": {"schema": EVENT_SCHEMA, "example": _STREAM_EXAMPLE}},
    }


@router.get(
    "/api/v1/generations/{generation_id}/events",
    operation_id="stream_generation_events",
    response_class=EventSourceResponse,
    responses={
        200: _stream_doc(
            "Every status change of the generation in order (its whole history first, or what "
            "follows `Last-Event-ID`), ending after the terminal state. With `queue=true`, "
            "while it is pending, `queue` events (no id) also carry its `queue_position` and "
            "`estimated_start_at` whenever its position changes"
        ),
        204: {
            "description": "The generation has ended and there is nothing after "
            "`Last-Event-ID`: an EventSource stops reconnecting"
        },
        **problem_responses(404),
        **problem_responses(429, throttles=STREAM_CODES),
    },
)
async def stream_generation_events(
    generation_id: GenerationId,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    last_event_id: LastEventId = None,
    queue: Annotated[
        bool,
        Query(
            description="also send `queue` events (queue position and estimated start, no id) "
            "while the generation is pending"
        ),
    ] = False,
) -> Response:
    """Follow one generation (yours; admin keys: anyone's) until it is completed, failed,
    cancelled or deleted."""
    slot = runtime.streams.acquire(principal.key_id)
    try:
        response = await _generation_stream(
            runtime, principal, generation_id, last_event_id, slot, queue=queue
        )
    except BaseException:
        slot.release()
        raise
    if not isinstance(response, _StreamResponse):
        slot.release()
    return response


async def _generation_stream(
    runtime: ApiRuntime,
    principal: Principal,
    generation_id: UUID,
    last_event_id: int | None,
    slot: StreamSlot,
    *,
    queue: bool = False,
) -> Response:
    generation = await generations.get_generation(generation_id, principal.reads_as, runtime.uow())
    after = last_event_id or 0
    if generation.terminal:
        remaining = await live.changes_after(
            runtime.uow(), user_id=generation.user_id, generation_id=generation.id, after=after
        )
        if remaining:
            return _respond(runtime, _as_sse(_iterate(remaining)), slot)
        if last_event_id is not None:
            return Response(status_code=204)
        # Its history has expired: the state as it is now, once (id 0, so a reconnect is 204).
        snapshot = GenerationPublic.from_domain(generation, runtime.clock()).model_dump_json()
        return _respond(
            runtime, _iterate([ServerSentEvent(snapshot, event="generation", id="0")]), slot
        )
    records = live.follow_changes(
        runtime.feeds,
        user_id=generation.user_id,
        generation_id=generation.id,
        after=after,
        until=live.ends_generation_stream,
        max_duration_s=runtime.settings.sse_max_stream_s,
    )
    events = _as_sse(records)
    if queue and generation.status is GenerationStatus.PENDING:
        standings = live.follow_queue(
            runtime.feeds,
            user_id=generation.user_id,
            generation_id=generation.id,
            max_duration_s=runtime.settings.sse_max_stream_s,
        )
        events = merged(events, queue_events(generation.id, standings))
    return _respond(runtime, events, slot)


@router.get(
    "/api/v1/events",
    operation_id="stream_events",
    response_class=EventSourceResponse,
    responses={
        200: _stream_doc(
            "Every change of any of your generations from now on (or after `Last-Event-ID`), "
            "in commit order; the stream does not end by itself"
        ),
        **problem_responses(429, throttles=STREAM_CODES),
    },
)
async def stream_events(
    runtime: RuntimeDep, principal: CurrentPrincipal, last_event_id: LastEventId = None
) -> Response:
    """Follow all of your generations: creations, status changes and deletions."""
    slot = runtime.streams.acquire(principal.key_id)
    after = last_event_id
    if after is None:
        try:
            after = await live.latest_change(runtime.uow(), principal.user_id)
        except BaseException:
            slot.release()
            raise
    records = live.follow_changes(
        runtime.feeds,
        user_id=principal.user_id,
        after=after,
        max_duration_s=runtime.settings.sse_max_stream_s,
    )
    return _respond(runtime, _as_sse(records), slot)


class _StreamResponse(EventSourceResponse):
    """An SSE response holding a stream slot until it ends, however it ends (its last event,
    the client gone, an error)."""

    def __init__(
        self, events: AsyncIterator[ServerSentEvent], *, ping: float, slot: StreamSlot
    ) -> None:
        super().__init__(_releasing(events, slot), ping=ping)
        self.slot = slot
        # Should the response never be sent at all, the slot is released when it is dropped.
        weakref.finalize(self, slot.release)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


async def _releasing(
    events: AsyncIterator[ServerSentEvent], slot: StreamSlot
) -> AsyncIterator[ServerSentEvent]:
    try:
        async for event in events:
            yield event
    finally:
        slot.release()


def _respond(
    runtime: ApiRuntime, events: AsyncIterator[ServerSentEvent], slot: StreamSlot
) -> EventSourceResponse:
    return _StreamResponse(events, ping=runtime.settings.sse_ping_s, slot=slot)


async def _iterate(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


#: Rendered `data:` of recent rows, by row id and generation id: every stream of a user
#: following one change renders it once, not once per stream (a row never changes).
_RENDERED: OrderedDict[tuple[int, UUID], str] = OrderedDict()
_RENDERED_KEEP = 4096


async def _as_sse(records: AsyncIterator[ChangeRecord]) -> AsyncIterator[ServerSentEvent]:
    async for record in records:
        key = (record.seq, record.generation_id)
        data = _RENDERED.get(key)
        if data is None:
            try:
                data = _data_of(record)
            except Exception as exc:
                log.error("undecodable change-log row skipped", seq=record.seq, error=repr(exc))
                continue
            _RENDERED[key] = data
            if len(_RENDERED) > _RENDERED_KEEP:
                _RENDERED.popitem(last=False)
        yield ServerSentEvent(data, event=record.event_type, id=str(record.seq))


def _data_of(record: ChangeRecord) -> str:
    if record.event_type == DELETED_EVENT:
        return json.dumps(record.payload)
    generation = generation_from_snapshot(record.payload)
    # `wait_reason` as it was when the change happened.
    return GenerationPublic.from_domain(generation, record.created_at).model_dump_json()

"""`/api/v1/generations/{id}/asset`: a generation's stored output, streamed by genbus (with
single-range requests for video players), for as long as the generation exists."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse

from genbus.api.adapters.asset_queue import asset_records
from genbus.api.entrypoints.http import views
from genbus.api.entrypoints.http.auth import CurrentPrincipal
from genbus.api.entrypoints.http.deps import GenerationId, KnownQueryOnly, RuntimeDep
from genbus.api.entrypoints.http.problems import problem_responses
from genbus.runtime.problems import PROBLEM_MEDIA_TYPE, Problem, problem_body, problem_response
from genbus.storage import ByteRange, ObjectNotFound, ObjectStore, StorageError, StorageSettings

router = APIRouter(
    prefix="/api/v1/generations",
    tags=["generations"],
    responses=problem_responses(401, 422, 429, 503),
    dependencies=[KnownQueryOnly],
)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_STREAM: dict[str, Any] = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
}


def _problem(status: int, code: str, detail: str, description: str) -> dict[str, Any]:
    examples = {code: {"value": problem_body(status, code, detail)}}
    if status == 404:
        examples["generation_not_found"] = {
            "value": problem_body(404, "generation_not_found", "generation ... not found")
        }
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"examples": examples}},
    }


def parse_range(header: str | None, size: int) -> ByteRange | str | None:
    """A single `bytes=a-b` / `bytes=a-` / `bytes=-n` range within `size`; None for the whole
    object (no header, or one we do not serve, e.g. several ranges); "unsatisfiable" when it
    starts past the end."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(0) == "bytes=-":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last n bytes
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None
    return ByteRange(start, end)


@router.get(
    "/{generation_id}/asset",
    operation_id="get_generation_asset",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The stored output", **_STREAM},
        206: {"description": "The requested byte range of the stored output", **_STREAM},
        **problem_responses(404),
        404: _problem(
            404,
            "asset_not_stored",
            "the output is pending",
            "No such generation of "
            "yours (`generation_not_found`), or its output is not stored (yet)",
        ),
        416: _problem(
            416,
            "range_not_satisfiable",
            "the output has 20000 bytes",
            "`range_not_satisfiable`: the range starts past the output's end",
        ),
    },
)
async def get_generation_asset(
    generation_id: GenerationId,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    range_: str | None = Header(default=None, alias="Range"),
) -> Response:
    """The output of one of your generations, from genbus's own storage (another user's is
    404). `404 asset_not_stored` while it is being copied (or when the copy failed: see the
    generation's `asset`). Supports one `Range` (`206`), `ETag` is the sha256."""
    await views.get(runtime, principal, generation_id)
    records = await asset_records(runtime.engine, generation_id)
    record = records[0] if records else None
    if record is None or record.status != "stored" or record.object_key is None:
        state = "not archived" if record is None else record.status
        return problem_response(404, "asset_not_stored", f"the output is {state}")
    size = record.size or 0
    wanted = parse_range(range_, size)
    if wanted == "unsatisfiable":
        return problem_response(
            416,
            "range_not_satisfiable",
            f"the output has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    byte_range = wanted if isinstance(wanted, ByteRange) else None
    # The process's shared client when it has one; else one for this request (closed after).
    shared = runtime.object_store.configured
    store = await runtime.object_store.get() if shared else ObjectStore(StorageSettings())
    owned = None if shared else store
    if owned is not None:
        await owned.open()
    try:
        stream = await store.get(record.object_key, byte_range)
    except ObjectNotFound:
        if owned is not None:
            await owned.close()
        return problem_response(404, "asset_not_stored", "the stored output is missing")
    except StorageError:
        if owned is not None:
            await owned.close()
        return problem_response(
            503,
            "service_unavailable",
            "the object store is unavailable; retry later",
            headers={"Retry-After": "5"},
        )
    except BaseException:
        if owned is not None:
            await owned.close()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream.chunks():
                yield chunk
        finally:
            stream.close()
            if owned is not None:
                await owned.close()

    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(stream.size),
        "ETag": f'"{record.sha256}"',
        "Cache-Control": "private, max-age=3600",
    }
    if byte_range is not None and stream.content_range:
        headers["Content-Range"] = stream.content_range
    return StreamingResponse(
        body(),
        status_code=206 if byte_range is not None else 200,
        media_type=record.media_type or stream.content_type,
        headers=headers,
    )

"""`/api/v1/uploads`: files stored once and used as generation inputs (`inputs[].upload_id`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from genbus.api.adapters import upload_rows
from genbus.api.adapters.upload_rows import Upload
from genbus.api.domain.errors import InvalidRequest
from genbus.api.domain.json_values import string_problem
from genbus.api.entrypoints.http.auth import CurrentPrincipal
from genbus.api.entrypoints.http.deps import KnownQueryOnly, RuntimeDep
from genbus.api.entrypoints.http.problems import problem_responses
from genbus.api.service_layer.uploads import Incoming, UploadRefused, delete_upload, store_upload
from genbus.runtime.logging import get_logger
from genbus.runtime.problems import (
    PROBLEM_MEDIA_TYPE,
    FieldError,
    Problem,
    problem_body,
    problem_response,
)
from genbus.storage import StorageError

PATH = "/api/v1/uploads"
log = get_logger(__name__)

router = APIRouter(
    prefix=PATH,
    tags=["uploads"],
    responses=problem_responses(401, 422, 429, 503),
    dependencies=[KnownQueryOnly],
)


class UploadOut(BaseModel):
    """A stored file of yours, usable as `inputs[].upload_id`."""

    id: UUID
    media_type: str = Field(description="what the bytes are (their signature, not the header)")
    size_bytes: int
    sha256: str
    filename: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, u: Upload) -> UploadOut:
        return cls(
            id=u.id,
            media_type=u.media_type,
            size_bytes=u.size,
            sha256=u.sha256,
            filename=u.filename,
            created_at=u.created_at,
        )


class UploadList(BaseModel):
    items: list[UploadOut]


def _problem(status: int, description: str, **codes: str) -> dict[str, Any]:
    examples = {code: {"value": problem_body(status, code, d)} for code, d in codes.items()}
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"examples": examples}},
    }


_BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes as the body (not multipart), with its `Content-Type`.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _storage_down(exc: StorageError) -> Response:
    log.warning("object store unavailable", error=str(exc))
    return problem_response(
        503,
        "service_unavailable",
        "the object store is unavailable; retry later",
        headers={"Retry-After": "5"},
    )


def _disabled() -> Response:
    return problem_response(404, "uploads_disabled", "uploads are not enabled on this server")


@router.post(
    "",
    operation_id="create_upload",
    status_code=201,
    response_model=UploadOut,
    openapi_extra=_BINARY_BODY,
    responses={
        404: _problem(
            404,
            "`uploads_disabled`: this server stores no uploads",
            uploads_disabled="uploads are not enabled on this server",
        ),
        409: _problem(
            409,
            "`upload_quota_exceeded`: your uploads' count or bytes are at the quota",
            upload_quota_exceeded="uploads are limited to 500 files and 1073741824 bytes per user",
        ),
        413: _problem(
            413,
            "`upload_too_large`: over the size limit",
            upload_too_large="an upload is at most 52428800 bytes",
        ),
        415: _problem(
            415,
            "`media_type_unknown`, `media_type_mismatch` (the bytes are not what "
            "`Content-Type` says) or `media_type_not_allowed`",
            media_type_unknown="the bytes are not a known media format",
            media_type_mismatch="the bytes are image/png, but video/mp4 was declared",
            media_type_not_allowed="image/bmp: allowed are image/png, ...",
        ),
    },
)
async def create_upload(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    filename: Annotated[str | None, Query(max_length=255, description="yours, returned")] = None,
) -> Any:
    """Store a file (the raw body; its type is read from its bytes) to use as an input of
    your generations: `inputs: [{"role": "image", "upload_id": ...}]`. It stays until you
    delete it (or the retention period ends); providers get a presigned URL to it. A server
    without object storage answers `404 uploads_disabled`."""
    if not runtime.uploads.enabled or not runtime.object_store.configured:
        return _disabled()
    if filename is not None and (problem := string_problem(filename)):
        raise InvalidRequest([FieldError("filename", "invalid_character", problem)])
    length = request.headers.get("content-length")
    incoming = Incoming(
        user_id=principal.user_id,
        declared_type=request.headers.get("content-type", "").split(";")[0].strip(),
        declared_size=int(length) if length and length.isdigit() else None,
        filename=filename,
        body=request.stream(),
    )
    store = await runtime.object_store.get()
    try:
        upload = await store_upload(
            runtime.engine, store, incoming, runtime.uploads, now=runtime.clock()
        )
    except UploadRefused as exc:
        return problem_response(exc.status, exc.code, exc.message)
    except StorageError as exc:
        return _storage_down(exc)
    body = UploadOut.from_row(upload).model_dump(mode="json")
    return JSONResponse(body, status_code=201, headers={"Location": f"{PATH}/{upload.id}"})


@router.get("", operation_id="list_uploads", response_model=UploadList)
async def list_uploads(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> UploadList:
    """Your uploads, newest first."""
    rows = await upload_rows.list_newest(runtime.engine, principal.user_id, limit=limit)
    return UploadList(items=[UploadOut.from_row(u) for u in rows])


@router.get(
    "/{upload_id}",
    operation_id="get_upload",
    response_model=UploadOut,
    responses=problem_responses(404),
)
async def get_upload(upload_id: UUID, runtime: RuntimeDep, principal: CurrentPrincipal) -> Any:
    """One of your uploads (another user's is 404 `upload_not_found`)."""
    row = await upload_rows.get(runtime.engine, upload_id, principal.user_id)
    if row is None:
        return problem_response(404, "upload_not_found", f"upload {upload_id} not found")
    return UploadOut.from_row(row)


@router.delete(
    "/{upload_id}",
    operation_id="delete_upload",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Deleted, with its bytes"},
        404: _problem(
            404,
            "`upload_not_found`: no such upload of yours; `uploads_disabled`: no uploads here",
            upload_not_found="upload 3f2b8c1e-0d4a-4c55-9a77-1b2c3d4e5f60 not found",
            uploads_disabled="uploads are not enabled on this server",
        ),
    },
)
async def remove_upload(
    upload_id: UUID, runtime: RuntimeDep, principal: CurrentPrincipal
) -> Response:
    """Delete one of your uploads and its bytes. A generation created with it whose provider
    has not fetched it yet then fails to get it."""
    if not runtime.object_store.configured:
        return _disabled()
    store = await runtime.object_store.get()
    try:
        deleted = await delete_upload(runtime.engine, store, upload_id, principal.user_id)
    except StorageError as exc:
        return _storage_down(exc)
    if not deleted:
        return problem_response(404, "upload_not_found", f"upload {upload_id} not found")
    return Response(status_code=204)

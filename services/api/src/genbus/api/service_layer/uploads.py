"""Uploads for inputs: a caller's file streamed into the object store under
`uploads/<user>/<id>`, its media type taken from the bytes' signature (and checked against the
declared `Content-Type` and the allowed types), bounded in size, within the user's quota."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.adapters import upload_rows
from genbus.api.adapters.upload_rows import Upload
from genbus.api.asset_config import UploadSettings
from genbus.runtime.logging import get_logger
from genbus.storage import ObjectStore
from genbus.storage.archive import SNIFF_BYTES, ArchiveRefused, check_media_type, sniff

log = get_logger(__name__)


class UploadRefused(Exception):
    """Why an upload is not stored: an HTTP `status` and a stable `code`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class Incoming:
    user_id: str
    declared_type: str
    declared_size: int | None
    filename: str | None
    body: AsyncIterable[bytes]


def upload_key(user_id: str, upload_id: UUID) -> str:
    return f"uploads/{quote(user_id, safe='')}/{upload_id}"


async def _capped(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise _TooLarge
        yield chunk


async def _with_head(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


def _too_large(settings: UploadSettings) -> UploadRefused:
    return UploadRefused(
        413, "upload_too_large", f"an upload is at most {settings.max_bytes} bytes"
    )


def _quota_exceeded(settings: UploadSettings) -> UploadRefused:
    return UploadRefused(
        409,
        "upload_quota_exceeded",
        f"uploads are limited to {settings.quota_count} files and {settings.quota_bytes} bytes "
        "per user: delete some first",
    )


async def _precheck(engine: AsyncEngine, incoming: Incoming, settings: UploadSettings) -> None:
    """Refuse what is over the limits before reading a byte (the body may still lie)."""
    if incoming.declared_size is not None and incoming.declared_size > settings.max_bytes:
        raise _too_large(settings)
    used = await upload_rows.usage(engine, incoming.user_id)
    if used.count >= settings.quota_count or used.bytes + (incoming.declared_size or 0) > (
        settings.quota_bytes
    ):
        raise _quota_exceeded(settings)


async def _checked_type(head: bytes, declared: str, settings: UploadSettings) -> str:
    try:
        media_type = check_media_type(sniff(head), declared, "")
    except ArchiveRefused as exc:
        raise UploadRefused(415, exc.code, exc.message) from None
    if media_type not in settings.media_types:
        allowed = ", ".join(settings.media_types)
        raise UploadRefused(415, "media_type_not_allowed", f"{media_type}: allowed are {allowed}")
    return media_type


async def store_upload(
    engine: AsyncEngine,
    store: ObjectStore,
    incoming: Incoming,
    settings: UploadSettings,
    *,
    now: datetime,
) -> Upload:
    """Stream the body into the store and record it; raises `UploadRefused`."""
    await _precheck(engine, incoming, settings)
    upload_id = uuid4()
    key = upload_key(incoming.user_id, upload_id)
    try:
        async with asyncio.timeout(settings.timeout_s):
            chunks = _capped(incoming.body, settings.max_bytes)
            head = b""
            async for chunk in chunks:
                head += chunk
                if len(head) >= SNIFF_BYTES:
                    break
            if not head:
                raise UploadRefused(422, "upload_empty", "the body is empty")
            media_type = await _checked_type(head, incoming.declared_type, settings)
            stored = await store.put_stream(
                key,
                _with_head(head, chunks),
                content_type=media_type,
                metadata={"upload-id": str(upload_id)},
            )
    except _TooLarge:
        await store.delete(key)
        raise _too_large(settings) from None
    except TimeoutError:
        await store.delete(key)
        raise UploadRefused(408, "upload_timeout", "the upload took too long") from None
    upload = Upload(
        id=upload_id,
        user_id=incoming.user_id,
        object_key=key,
        size=stored.size,
        sha256=stored.sha256,
        media_type=media_type,
        filename=incoming.filename,
        created_at=now,
    )
    recorded = await upload_rows.add_within(
        engine, upload, max_count=settings.quota_count, max_bytes=settings.quota_bytes
    )
    if recorded is None:
        await store.delete(key)
        raise _quota_exceeded(settings)
    log.info("upload stored", upload_id=str(upload_id), size=stored.size, media_type=media_type)
    return upload


async def delete_upload(
    engine: AsyncEngine, store: ObjectStore, upload_id: UUID, user_id: str
) -> bool:
    """Delete the row, then the object (a failed object delete is left to the orphan sweep)."""
    removed = await upload_rows.remove(engine, upload_id, user_id)
    if removed is None:
        return False
    try:
        await store.delete(removed.object_key)
    except Exception as exc:
        log.warning("upload object not deleted; the orphan sweep will", error=repr(exc))
    return True

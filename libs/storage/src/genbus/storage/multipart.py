"""Streaming an async byte source into S3: one PUT when it fits in a part, else multipart."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING

from genbus.storage.objects import StoredObject

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef


async def _parts(chunks: AsyncIterable[bytes], part_size: int) -> AsyncIterator[bytes]:
    """Re-cut `chunks` into parts of exactly `part_size` bytes (the last one shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= part_size:
            yield bytes(buffer[:part_size])
            del buffer[:part_size]
    if buffer:
        yield bytes(buffer)


async def upload_stream(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    chunks: AsyncIterable[bytes],
    content_type: str,
    metadata: dict[str, str],
    part_size: int,
) -> StoredObject:
    digest = hashlib.sha256()
    size = 0
    parts = _parts(chunks, part_size)
    first = await anext(parts, b"")
    second = await anext(parts, None)
    if second is None:  # fits in one part: a plain PUT
        await client.put_object(
            Bucket=bucket, Key=key, Body=first, ContentType=content_type, Metadata=metadata
        )
        return StoredObject(key, len(first), hashlib.sha256(first).hexdigest(), content_type)

    created = await client.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata
    )
    upload_id = created["UploadId"]
    completed: list[CompletedPartTypeDef] = []
    try:

        async def send(number: int, data: bytes) -> None:
            nonlocal size
            digest.update(data)
            size += len(data)
            out = await client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            completed.append({"PartNumber": number, "ETag": out["ETag"]})

        await send(1, first)
        await send(2, second)
        number = 2
        async for data in parts:
            number += 1
            await send(number, data)
        await client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": completed}
        )
    except BaseException:
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return StoredObject(key, size, digest.hexdigest(), content_type)

"""`ObjectStore`: put (streamed, multipart past one part), ranged get, head, delete and presigned
GET on one bucket of any S3 endpoint."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from genbus.storage.client import s3_client
from genbus.storage.multipart import upload_stream
from genbus.storage.objects import (
    ByteRange,
    ListedObject,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    RangeNotSatisfiable,
    StorageError,
    StoredObject,
)
from genbus.storage.settings import StorageSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_OWNED_BUCKET = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _translated(key: str) -> Any:
    """botocore errors as our own: missing objects, bad ranges, everything else `StorageError`."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code in _NOT_FOUND:
            raise ObjectNotFound(key) from exc
        if code in {"InvalidRange", "416"}:
            raise RangeNotSatisfiable(key) from exc
        raise StorageError(f"{key}: {code or exc}") from exc
    except BotoCoreError as exc:  # connection refused, timeouts, endpoint errors
        raise StorageError(f"{key}: {exc}") from exc


class ObjectStore:
    """One bucket of one S3 endpoint. Open it once (`async with` or `open()`/`close()`)."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._stack = contextlib.AsyncExitStack()
        self._client: S3Client | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = await self._stack.enter_async_context(s3_client(self.settings))

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def __aenter__(self) -> ObjectStore:
        await self.open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise RuntimeError("ObjectStore is not open")
        return self._client

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (dev stacks and tests; production provisions it)."""
        with _translated(self.bucket):
            try:
                await self.client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _code(exc) not in _NOT_FOUND:
                    raise
            try:
                await self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) not in _OWNED_BUCKET:
                    raise

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Store `chunks` under `key`, counting size and sha256 on the way (multipart past one
        part; an abandoned multipart upload is aborted)."""
        with _translated(key):
            return await upload_stream(
                self.client,
                bucket=self.bucket,
                key=key,
                chunks=chunks,
                content_type=content_type,
                metadata=metadata or {},
                part_size=self.settings.part_size_bytes,
            )

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None
    ) -> StoredObject:
        with _translated(key):
            await self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata=metadata or {},
            )
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), content_type)

    async def head(self, key: str) -> ObjectInfo | None:
        """The object's metadata, or None when there is none under `key`."""
        try:
            with _translated(key):
                out = await self.client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=int(out.get("ContentLength", 0)),
            content_type=str(out.get("ContentType", "application/octet-stream")),
            etag=str(out.get("ETag", "")).strip('"'),
            metadata=dict(out.get("Metadata", {})),
        )

    async def get(self, key: str, byte_range: ByteRange | None = None) -> ObjectStream:
        """The object's bytes (or a range of them) to stream; close the result when done."""
        with _translated(key):
            if byte_range is None:
                out = await self.client.get_object(Bucket=self.bucket, Key=key)
            else:
                out = await self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=byte_range.header()
                )
        size = int(out.get("ContentLength", 0))
        content_range = out.get("ContentRange")
        total = int(content_range.rsplit("/", 1)[1]) if content_range else size
        return ObjectStream(
            key=key,
            size=size,
            total_size=total,
            content_type=str(out.get("ContentType", "application/octet-stream")),
            content_range=content_range if byte_range is not None else None,
            _body=out["Body"],
        )

    async def delete(self, key: str) -> None:
        """Delete the object (no error when there is none)."""
        with _translated(key):
            await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; returns how many."""
        deleted = 0
        with _translated(prefix):
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    await self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                    deleted += 1
        return deleted

    async def list_pages(
        self, prefix: str, *, page_size: int = 1000
    ) -> AsyncIterator[list[ListedObject]]:
        """The objects whose key starts with `prefix`, a page (at most `page_size`) at a time."""
        with _translated(prefix):
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
            )
            async for page in pages:
                yield [
                    ListedObject(
                        key=item["Key"], size=int(item["Size"]), last_modified=item["LastModified"]
                    )
                    for item in page.get("Contents", [])
                ]

    async def presign_get(self, key: str, *, ttl_s: int | None = None) -> str:
        """A URL that GETs the object without credentials until it expires."""
        with _translated(key):
            return await self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=ttl_s if ttl_s is not None else self.settings.presign_ttl_s,
            )

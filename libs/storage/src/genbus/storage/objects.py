"""What the object store hands back: descriptions of stored objects and readable bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class StorageError(Exception):
    """The object store failed or could not be reached (worth retrying later)."""


class ObjectNotFound(StorageError):
    """No object under that key."""


class RangeNotSatisfiable(StorageError):
    """The requested byte range starts past the object's end."""


@dataclass(frozen=True)
class StoredObject:
    """An object as written: its key, size, sha256 (hex) and media type."""

    key: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class ObjectInfo:
    """An object's metadata from HEAD."""

    key: str
    size: int
    content_type: str
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListedObject:
    """An object as a listing shows it."""

    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start`..`end` inclusive (`end` None: to the end), as in an HTTP Range header."""

    start: int
    end: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.end is not None and self.end < self.start):
            raise ValueError(f"invalid byte range {self.start}-{self.end}")

    def header(self) -> str:
        return f"bytes={self.start}-{'' if self.end is None else self.end}"


class _Body(Protocol):
    def iter_chunks(self, chunk_size: int = ...) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


@dataclass
class ObjectStream:
    """An object's bytes being read: iterate `chunks()` once, then `close()` (or use `async with`).

    `size` is the length of what is returned (the range's, for a ranged read); `total_size` the
    whole object's; `content_range` is the HTTP `Content-Range` value of a ranged read.
    """

    key: str
    size: int
    total_size: int
    content_type: str
    content_range: str | None
    _body: _Body
    chunk_size: int = 64 * 1024

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._body.iter_chunks(self.chunk_size):
            if chunk:
                yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        self._body.close()

    async def __aenter__(self) -> ObjectStream:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()

"""Archiving a provider's output: stream it from its URL into the object store, the media type
checked against the bytes' signature, with its size and sha256.

`ArchiveRefused` (never worth retrying: refused URL, too large, wrong type, 4xx) vs
`FetchFailed` / `StorageError` (worth retrying later).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import filetype

from genbus.storage.fetch import FetchRefused, SafeFetcher
from genbus.storage.objects import StoredObject
from genbus.storage.store import ObjectStore

#: Bytes the signature check looks at (filetype reads at most 261).
SNIFF_BYTES = 262


class ArchiveRefused(Exception):
    """The output cannot be archived as it is. `code`: a `FetchRefused` code, or
    `media_type_mismatch` / `media_type_unknown`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def sniff(head: bytes) -> str | None:
    """The media type the bytes' signature says, None when it is not one we know."""
    kind = filetype.guess(head)
    return None if kind is None else str(kind.mime)


def check_media_type(sniffed: str | None, declared: str, expected: str) -> str:
    """The media type to store: the sniffed one, when it agrees with what the provider declared
    (`Content-Type`) and what the generation expects (`image/png` or just `image`): same family
    (`image`, `video`, `audio`)."""
    if sniffed is None:
        raise ArchiveRefused("media_type_unknown", "the bytes are not a known media format")
    family = sniffed.split("/")[0]
    for claim in (declared, expected):
        if claim and claim != "application/octet-stream" and claim.split("/")[0] != family:
            raise ArchiveRefused(
                "media_type_mismatch", f"the bytes are {sniffed}, but {claim} was declared"
            )
    return sniffed


async def _with_head(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


async def archive_url(
    store: ObjectStore,
    fetcher: SafeFetcher,
    url: str,
    key: str,
    *,
    expected_media_type: str,
    metadata: dict[str, str] | None = None,
) -> StoredObject:
    """Stream `url` into `key`; the stored object's size, sha256 and checked media type."""
    try:
        async with fetcher.open(url) as download:
            chunks = download.chunks()
            head = b""
            async for chunk in chunks:
                head += chunk
                if len(head) >= SNIFF_BYTES:
                    break
            media_type = check_media_type(sniff(head), download.content_type, expected_media_type)
            return await store.put_stream(
                key, _with_head(head, chunks), content_type=media_type, metadata=metadata
            )
    except FetchRefused as exc:
        raise ArchiveRefused(exc.code, exc.message) from exc

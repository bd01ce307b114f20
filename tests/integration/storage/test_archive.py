"""Archiving an output URL into real S3: safe fetch (addresses, redirects, size cap) and the
media type checked against the bytes' signature."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from genbus.devstack.ports import free_port
from genbus.runtime.addresses import AddressPolicy
from genbus.storage import ObjectStore
from genbus.storage.archive import ArchiveRefused, archive_url
from genbus.storage.fetch import FetchFailed, FetchLimits, SafeFetcher

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(3000)
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(5000)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOCAL = AddressPolicy.from_strings(["127.0.0.1/32"])


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "image/png"})
    await response.prepare(request)
    for _ in range(20):  # 20 KiB, no Content-Length
        await response.write(b"\x89PNG\r\n\x1a\n" + bytes(1016))
    return response


_PNG_TYPE = {"content-type": "image/png"}
_MP4_TYPE = {"content-type": "video/mp4"}


def _redirect(location: str) -> Handler:
    return _reply(lambda: web.Response(status=302, headers={"location": location}))


def _reply(make: Callable[[], web.StreamResponse]) -> Handler:
    async def handle(_: web.Request) -> web.StreamResponse:
        return make()

    return handle


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    """A provider's file server on 127.0.0.1 (and a redirect to 127.0.0.2)."""
    port = free_port()
    app = web.Application()
    app.router.add_get("/out.png", _reply(lambda: web.Response(body=PNG, content_type="image/png")))
    app.router.add_get("/out.mp4", _reply(lambda: web.Response(body=MP4, content_type="video/mp4")))
    app.router.add_get(
        "/html", _reply(lambda: web.Response(text="<html>", content_type="image/png"))
    )
    app.router.add_get("/stream.png", _stream)
    app.router.add_get("/gone", _reply(lambda: web.Response(status=404)))
    app.router.add_get("/busy", _reply(lambda: web.Response(status=503)))
    app.router.add_get("/hop", _redirect("/out.png"))
    app.router.add_get("/private", _redirect(f"http://127.0.0.2:{port}/out.png"))
    app.router.add_get("/loop", _redirect("/loop"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    fetcher = SafeFetcher(LOCAL, FetchLimits(max_bytes=10_000))
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


async def test_output_is_stored_with_size_sha256_and_sniffed_type(
    object_store: ObjectStore, fetcher: SafeFetcher, origin: str
) -> None:
    stored = await archive_url(
        object_store, fetcher, f"{origin}/hop", "generations/g/0", expected_media_type="image"
    )
    assert (stored.size, stored.sha256) == (len(PNG), hashlib.sha256(PNG).hexdigest())
    assert stored.content_type == "image/png"
    async with await object_store.get("generations/g/0") as body:
        assert await body.read() == PNG

    video = await archive_url(
        object_store, fetcher, f"{origin}/out.mp4", "v/0", expected_media_type="video/mp4"
    )
    assert video.content_type == "video/mp4"


@pytest.mark.parametrize(
    ("path", "policy", "expected", "code"),
    [
        ("/out.png", AddressPolicy(), "image", "url_not_allowed"),  # loopback not configured
        ("/private", LOCAL, "image", "url_not_allowed"),  # redirect to a non-allowed address
        ("/loop", LOCAL, "image", "too_many_redirects"),
        ("/html", LOCAL, "image", "media_type_unknown"),  # declared image/png, bytes are html
        ("/out.png", LOCAL, "video/mp4", "media_type_mismatch"),  # the generation wants video
        ("/gone", LOCAL, "image", "http_404"),
    ],
)
async def test_refused_outputs_leave_nothing_stored(
    object_store: ObjectStore,
    origin: str,
    path: str,
    policy: AddressPolicy,
    expected: str,
    code: str,
) -> None:
    fetcher = SafeFetcher(policy, FetchLimits(max_bytes=10_000, max_redirects=3))
    try:
        with pytest.raises(ArchiveRefused) as refused:
            await archive_url(
                object_store, fetcher, origin + path, "k", expected_media_type=expected
            )
    finally:
        await fetcher.aclose()
    assert refused.value.code == code
    assert await object_store.head("k") is None


@pytest.mark.parametrize("path", ["/out.mp4", "/stream.png"])
async def test_outputs_over_the_cap_are_refused_declared_or_streamed(
    object_store: ObjectStore, origin: str, path: str
) -> None:
    fetcher = SafeFetcher(LOCAL, FetchLimits(max_bytes=4_000))  # the mp4 declares 5 kB
    try:
        with pytest.raises(ArchiveRefused) as refused:
            await archive_url(object_store, fetcher, origin + path, "big", expected_media_type="")
    finally:
        await fetcher.aclose()
    assert refused.value.code == "too_large"
    assert await object_store.head("big") is None


async def test_server_errors_are_worth_retrying(
    object_store: ObjectStore, fetcher: SafeFetcher, origin: str
) -> None:
    with pytest.raises(FetchFailed):
        await archive_url(object_store, fetcher, f"{origin}/busy", "k", expected_media_type="")
    closed = f"http://127.0.0.1:{free_port()}/out.png"
    with pytest.raises(FetchFailed):
        await archive_url(object_store, fetcher, closed, "k", expected_media_type="")

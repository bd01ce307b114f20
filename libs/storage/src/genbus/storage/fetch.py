"""Downloading an untrusted URL safely: http(s) only, every hop's address checked, bounded.

The host of the URL (and of every redirect) is resolved here and each address checked against an
`AddressPolicy`; the connection goes to the checked address (the URL's host stays in `Host` and,
for https, in SNI and the certificate check), so a DNS answer that changes between check and
connect cannot send it elsewhere. Redirects are followed by hand, at most `max_redirects`, each
checked the same way. The body is bounded by `max_bytes` (declared or read).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from genbus.runtime.addresses import AddressPolicy, Resolver, UrlRefused, checked_address, resolve

USER_AGENT = "genbus-archiver/1"
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchRefused(Exception):
    """A download that will never succeed as asked. `code` is stable: `url_not_allowed`,
    `invalid_url`, `url_unresolvable`, `too_many_redirects`, `http_<status>`, `too_large`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class FetchFailed(Exception):
    """A download that failed for now (connection, timeout, 5xx, 429): worth retrying."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    max_redirects: int = 5


@dataclass
class Download:
    """An open response: `content_type` as declared, `chunks()` bounded by the size cap."""

    url: str
    content_type: str
    declared_size: int | None
    _response: httpx.Response
    _max_bytes: int

    async def chunks(self) -> AsyncIterator[bytes]:
        read = 0
        async for chunk in self._response.aiter_bytes():
            read += len(chunk)
            if read > self._max_bytes:
                raise FetchRefused("too_large", f"more than {self._max_bytes} bytes")
            yield chunk


class SafeFetcher:
    """Opens downloads under an `AddressPolicy`; one per process, `aclose()` at the end."""

    def __init__(
        self,
        policy: AddressPolicy,
        limits: FetchLimits,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
        resolver: Resolver = resolve,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self._resolver = resolver
        # No kept-alive connections (they are keyed by the address connected to), no redirects
        # by httpx (we check each hop), no proxy settings from the environment.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[Download]:
        """The response to GET `url` after any redirects; raises `FetchRefused`/`FetchFailed`."""
        response = await self._follow(url)
        try:
            declared = response.headers.get("content-length")
            size = int(declared) if declared and declared.isdigit() else None
            if size is not None and size > self.limits.max_bytes:
                raise FetchRefused(
                    "too_large", f"{size} bytes declared, cap {self.limits.max_bytes}"
                )
            yield Download(
                url=str(response.request.url),
                content_type=response.headers.get("content-type", "").split(";")[0].strip(),
                declared_size=size,
                _response=response,
                _max_bytes=self.limits.max_bytes,
            )
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            await response.aclose()

    async def _follow(self, url: str) -> httpx.Response:
        for _ in range(self.limits.max_redirects + 1):
            response = await self._get(url)
            if response.status_code in _REDIRECTS and "location" in response.headers:
                await response.aclose()
                url = str(httpx.URL(url).join(response.headers["location"]))
                continue
            if response.status_code == 200:
                return response
            await response.aclose()
            if response.status_code == 429 or response.status_code >= 500:
                raise FetchFailed(f"HTTP {response.status_code} from {httpx.URL(url).host}")
            raise FetchRefused(
                f"http_{response.status_code}", f"HTTP {response.status_code} from the URL"
            )
        raise FetchRefused("too_many_redirects", f"more than {self.limits.max_redirects}")

    async def _get(self, url: str) -> httpx.Response:
        try:
            address = await checked_address(url, self.policy, self._resolver)
        except UrlRefused as exc:
            raise FetchRefused(exc.code, exc.message) from None
        original = httpx.URL(url)
        request = self._client.build_request(
            "GET",
            original.copy_with(host=str(address)),
            headers={"host": original.netloc.decode("ascii"), "user-agent": USER_AGENT},
            extensions={"sni_hostname": original.host},
        )
        try:
            return await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc

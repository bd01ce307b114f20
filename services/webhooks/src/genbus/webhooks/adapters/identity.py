"""Who a caller is, asked of the api (`GET /api/v1/me`) with the caller's own bearer key.

The api keeps the keys (in its schema; services never share tables), so this service never
sees a key's digest table: it forwards the `Authorization` header and caches the answer
briefly, keyed by the header's SHA-256 digest (never the key itself; the key is never logged).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import httpx

from genbus.runtime.logging import get_logger

log = get_logger(__name__)

#: Cached answers kept at most (the oldest go first past it).
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Caller:
    user_id: str
    key_prefix: str | None


class NotAuthenticated(Exception):
    """The api refused the key (401)."""


class IdentityRateLimited(Exception):
    """The api's rate limit for this key was reached: retry after `retry_after` seconds."""

    def __init__(self, retry_after: str) -> None:
        super().__init__("too many requests for this API key; retry after Retry-After")
        self.retry_after = retry_after


class IdentityUnavailable(Exception):
    """The api could not be asked (down, slow, an unexpected answer)."""


class ApiIdentity:
    def __init__(
        self,
        api_url: str,
        *,
        cache_s: float = 30.0,
        timeout_s: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_url, timeout=timeout_s, transport=transport, trust_env=False
        )
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, Caller]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def caller(self, authorization: str | None) -> Caller:
        """The caller of a request with this `Authorization` header (None: no header, which
        the api accepts only where anonymous calls are allowed)."""
        digest = hashlib.sha256((authorization or "").encode("utf-8")).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        headers = {"authorization": authorization} if authorization else {}
        try:
            response = await self._client.get("/api/v1/me", headers=headers)
        except httpx.HTTPError as exc:
            log.warning("api identity look-up failed", error=type(exc).__name__)
            raise IdentityUnavailable("the api could not be reached to check the key") from None
        if response.status_code == 401:
            raise NotAuthenticated("a valid API key is required: Authorization: Bearer gbk_...")
        if response.status_code == 429:
            raise IdentityRateLimited(response.headers.get("retry-after", "1"))
        if response.status_code != 200:
            log.warning("api identity look-up answered", status=response.status_code)
            raise IdentityUnavailable(f"the api answered {response.status_code} to the key check")
        body = response.json()
        caller = Caller(user_id=str(body["user_id"]), key_prefix=body.get("key_prefix"))
        if self._cache_s > 0:
            if len(self._cache) >= MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[digest] = (now + self._cache_s, caller)
        return caller

"""Plumbing shared by HTTP adapters: one pooled keep-alive client, network errors translated."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

from genbus.providers.credentials import Credentials
from genbus.providers.errors import InvalidRequest, ProviderUnavailable

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=200, max_keepalive_connections=100, keepalive_expiry=30.0
)


class HttpAdapter:
    """Base of adapters that speak HTTP. Subclasses set `provider_id` and `operations` and add
    the API calls."""

    provider_id: ClassVar[str]
    operations: ClassVar[frozenset[str]]

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self._default_base_url = base_url
        self._client = httpx.AsyncClient(
            timeout=timeout or DEFAULT_TIMEOUT,
            limits=limits or DEFAULT_LIMITS,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "genbus-providers"},
        )

    def supports(self, operation_type: str) -> bool:
        """Whether this provider runs `operation_type`."""
        return operation_type in self.operations

    @property
    def closed(self) -> bool:
        """True after `aclose`."""
        return self._client.is_closed

    async def aclose(self) -> None:
        """Close the pooled HTTP client."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _base_url(self, base_url: str | None) -> str:
        url = base_url or self._default_base_url
        if not url:
            raise InvalidRequest(f"no base URL configured for provider {self.provider_id!r}")
        return url.rstrip("/")

    async def _send(
        self,
        method: str,
        url: str,
        *,
        credentials: Credentials,
        headers: dict[str, str] | None = None,
        json: Any = None,
        files: Any = None,
    ) -> httpx.Response:
        """Send one request; network failures and timeouts become `ProviderUnavailable`.

        `files` sends a multipart/form-data body (httpx's `files` format).
        """
        try:
            return await self._client.request(method, url, headers=headers, json=json, files=files)
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(
                f"{self.provider_id}: {method} timed out ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            detail = credentials.redact(str(exc)) or type(exc).__name__
            raise ProviderUnavailable(f"{self.provider_id}: {method} failed: {detail}") from exc


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); None if absent/invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)

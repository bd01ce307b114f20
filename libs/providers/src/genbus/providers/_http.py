"""Plumbing shared by HTTP adapters: one pooled keep-alive client, network errors translated."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import httpx

from genbus.providers.credentials import Credentials
from genbus.providers.errors import (
    InvalidRequest,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
    UnsupportedOperation,
)
from genbus.providers.protocol import SubmitGuarantees, SubmitRequest, SubmitResult

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=200, max_keepalive_connections=100, keepalive_expiry=30.0
)

#: Failures after which the request may have reached the provider. Not listed, so known unsent:
#: `ConnectError`, `ConnectTimeout`, `PoolTimeout`, `ProxyError` (tunnel setup),
#: `UnsupportedProtocol`, `LocalProtocolError` (h11 refused our own request).
MAYBE_SENT_ERRORS: Final[tuple[type[httpx.RequestError], ...]] = (
    httpx.WriteTimeout,
    httpx.WriteError,
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
    httpx.DecodingError,  # an answer arrived, but its body could not be decoded
)
#: Gateway answers that mean "the upstream's answer was lost", not "the upstream refused".
LOST_ANSWER_STATUSES: Final = frozenset({502, 504})


class HttpAdapter:
    """Base of adapters that speak HTTP. Subclasses set `provider_id` and `operations` and add
    the API calls."""

    provider_id: ClassVar[str]
    operations: ClassVar[frozenset[str]]
    submit_guarantees: ClassVar[SubmitGuarantees]

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

    async def find_by_reference(self, request: SubmitRequest) -> SubmitResult | None:
        """Unsupported unless the adapter overrides it (see `submit_guarantees`)."""
        raise UnsupportedOperation(f"{self.provider_id} cannot find a job by reference")

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
        creates_job: bool = False,
    ) -> httpx.Response:
        """Send one request; network failures and timeouts become `ProviderUnavailable`.

        `files` sends a multipart/form-data body (httpx's `files` format). With `creates_job`
        (the request creates a billed job), a failure after which the request may have reached
        the provider, or a 502/504 answer, is `SubmitOutcomeUnknown` instead.
        """
        try:
            response = await self._client.request(
                method, url, headers=headers, json=json, files=files
            )
        except httpx.RequestError as exc:
            raise self._network_error(method, exc, credentials, creates_job) from exc
        if creates_job and response.status_code in LOST_ANSWER_STATUSES:
            raise SubmitOutcomeUnknown(
                f"{self.provider_id}: {method} answered HTTP {response.status_code} "
                "by a gateway; the job may have been created",
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _network_error(
        self, method: str, exc: httpx.RequestError, credentials: Credentials, creates_job: bool
    ) -> ProviderUnavailable:
        if isinstance(exc, httpx.TimeoutException):
            message = f"{self.provider_id}: {method} timed out ({type(exc).__name__})"
        else:
            detail = credentials.redact(str(exc)) or type(exc).__name__
            message = f"{self.provider_id}: {method} failed: {detail}"
        if creates_job and isinstance(exc, MAYBE_SENT_ERRORS):
            return SubmitOutcomeUnknown(f"{message}; the job may have been created")
        return ProviderUnavailable(message)


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


def non_negative_number(value: object) -> float | None:
    """A cost a provider reported: a non-negative number (not a bool); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 and value == value and value != float("inf") else None

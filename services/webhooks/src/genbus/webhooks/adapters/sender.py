"""One signed delivery attempt over HTTP, SSRF-safe.

The URL's host is resolved here and every address checked (`AddressPolicy`); the connection
goes to the checked address (the URL's host stays in `Host` and, for https, in SNI and the
certificate check), so a DNS answer that changes between check and connect cannot redirect it.
Redirects are never followed (a 3xx is a failed attempt); the response is read up to
`max_response_bytes`, and the whole attempt is bounded by `timeout_s`.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from genbus.runtime.addresses import AddressPolicy, IpAddress, Resolver, UrlRefused, resolve
from genbus.runtime.addresses import checked_address as _checked_address
from genbus.webhooks.domain.addresses import PURPOSE
from genbus.webhooks.domain.model import SendResult

USER_AGENT = "genbus-webhooks/1"


async def checked_address(
    url: str, policy: AddressPolicy, resolver: Resolver = resolve
) -> IpAddress:
    """The address a delivery to `url` connects to; `UrlRefused` if it may not."""
    return await _checked_address(url, policy, resolver, purpose=PURPOSE)


def signed_request(
    url: str, webhook_id: str, secret: str, payload: dict[str, Any], now: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a Standard Webhooks request."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    timestamp = now or datetime.now(UTC)
    signature = Webhook(secret).sign(webhook_id, timestamp, body)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode("utf-8"), headers


class HttpSender:
    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout_s: float = 15.0,
        max_response_bytes: int = 64 * 1024,
        resolver: Resolver = resolve,
    ) -> None:
        self._policy = policy
        self._timeout_s = timeout_s
        self._max_bytes = max_response_bytes
        self._resolver = resolver
        # No kept-alive connections: connections are keyed by the address connected to, and two
        # hosts on one address (a shared load balancer) must never share a TLS session made for
        # the other's name. No redirects, no proxy settings from the environment.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(
        self, url: str, webhook_id: str, secret: str, payload: dict[str, Any]
    ) -> SendResult:
        started = time.monotonic()

        def took() -> int:
            return round((time.monotonic() - started) * 1000)

        try:
            async with asyncio.timeout(self._timeout_s):
                address = await checked_address(url, self._policy, self._resolver)
                status = await self._post(url, address, webhook_id, secret, payload)
        except UrlRefused as exc:
            return SendResult(None, f"{exc.code}: {exc.message}"[:500], took())
        except TimeoutError:
            return SendResult(None, f"timeout: no answer within {self._timeout_s:g} s", took())
        except (httpx.HTTPError, OSError, ValueError) as exc:
            # Refused or reset connections, TLS failures, malformed answers: the receiver's.
            return SendResult(None, f"{type(exc).__name__}: {exc}"[:500], took())
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return SendResult(status, error, took())

    async def _post(
        self, url: str, address: IpAddress, webhook_id: str, secret: str, payload: dict[str, Any]
    ) -> int:
        body, headers = signed_request(url, webhook_id, secret, payload)
        original = httpx.URL(url)
        headers["host"] = original.netloc.decode("ascii")
        request = self._client.build_request(
            "POST",
            original.copy_with(host=str(address)),
            content=body,
            headers=headers,
            extensions={"sni_hostname": original.host},
        )
        response = await self._client.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= self._max_bytes:
                    break
        finally:
            await response.aclose()
        return response.status_code

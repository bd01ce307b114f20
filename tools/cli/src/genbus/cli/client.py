"""The admin API client: base URL and bearer token from the environment, errors as one type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from genbus.runtime.failures import one_line_failure

URL_ENV = "GENBUS_ADMIN_URL"
TOKEN_ENV = "GENBUS_ADMIN_TOKEN"
DEFAULT_URL = "http://localhost:8001"


class AdminError(Exception):
    """The admin API refused a request, or could not be reached. `code` is stable."""

    def __init__(self, code: str, detail: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status


class AdminClient:
    """Sends JSON to the dispatcher's `/admin` routes with the admin token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "genbus-cli"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        url: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> AdminClient:
        """A client for `url` (or $GENBUS_ADMIN_URL) with $GENBUS_ADMIN_TOKEN (never argv)."""
        token = env.get(TOKEN_ENV, "").strip()
        if not token:
            raise AdminError("no_token", f"set {TOKEN_ENV} to the dispatcher's admin token")
        return cls(url or env.get(URL_ENV) or DEFAULT_URL, token, transport=transport)

    def close(self) -> None:
        self._client.close()

    def get(self, path: str) -> Any:
        return self._send("GET", path)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._send("POST", path, body)

    def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._send("PATCH", path, body)

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            failure = one_line_failure(exc, "the admin API", str(self._client.base_url))
            raise AdminError("unreachable", failure) from None
        if response.is_success:
            return response.json()
        raise _error_from(response)


def _error_from(response: httpx.Response) -> AdminError:
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return AdminError("http_error", response.reason_phrase, status=response.status_code)
    detail = str(problem.get("detail") or response.reason_phrase)
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        detail += "; " + "; ".join(
            f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)
        )
    code = str(problem.get("code") or "http_error")
    return AdminError(code, detail, status=response.status_code)

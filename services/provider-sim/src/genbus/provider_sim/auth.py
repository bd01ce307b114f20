"""Who is calling: one place that turns request headers into a known API key."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from genbus.provider_sim.errors import ErrorCode, SimError


def authenticate(headers: Mapping[str, str], known_keys: Collection[str]) -> str:
    """Return the caller's key from `Authorization: Bearer <key>` or, failing that, `API-KEY`.

    `headers` must look up names case-insensitively (Starlette's `Headers` does).
    """
    key = None
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        key = credentials.strip()
    elif api_key := headers.get("api-key", "").strip():
        key = api_key
    if key is None or key not in known_keys:
        raise SimError(ErrorCode.UNAUTHORIZED, "missing or unknown API key")
    return key

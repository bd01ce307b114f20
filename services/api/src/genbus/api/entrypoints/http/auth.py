"""Who a request acts for: `Authorization: Bearer gbk_...`, checked against the stored digests,
then the key's rate limit. Anonymous requests exist only when the settings allow them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from genbus.api.domain.api_keys import Principal
from genbus.api.domain.errors import RateLimited, Unauthenticated
from genbus.api.entrypoints.http.deps import RuntimeDep
from genbus.api.service_layer.api_keys import authenticate

bearer = HTTPBearer(
    scheme_name="ApiKey",
    bearerFormat="gbk_<43 characters>",
    description="An API key created with `genbus-api keys create`: "
    "`Authorization: Bearer gbk_...`.",
    auto_error=False,
)


async def get_principal(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, rate-limited per key. Every failure is the same 401, so a caller cannot
    tell a revoked key from an unknown one."""
    if credentials is None:
        if "authorization" in request.headers or not runtime.settings.allow_anonymous:
            raise Unauthenticated("a valid API key is required: Authorization: Bearer gbk_...")
        # Local development only (GENBUS_API_ALLOW_ANONYMOUS): not rate limited.
        return Principal(user_id=runtime.settings.default_user_id)
    principal = await authenticate(runtime.reader(), credentials.credentials)
    if principal is None:
        raise Unauthenticated("the API key is not valid (malformed, unknown or revoked)")
    wait_s = runtime.rate_limits.take(principal.key_id)
    if wait_s is not None:
        raise RateLimited("too many requests for this API key; retry after Retry-After", wait_s)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]

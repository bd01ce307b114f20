"""Signing in to the console with the admin token: a signed session cookie, and a CSRF token
checked on every POST.

The session cookie is signed with a key derived from the admin token (so every replica with the
same token accepts it and a new token signs everyone out), HttpOnly, SameSite=Strict, and Secure
outside development. The CSRF token lives in the session; every form carries it in a hidden
field (htmx requests in the `X-CSRF-Token` header). A POST without the session's token is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from genbus.runtime.problems import problem_response

Endpoint = Callable[[Request], Awaitable[Response]]
COOKIE = "genbus_console"
SESSION_HOURS = 8
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def session_middleware(token: str, *, secure: bool) -> Middleware:
    key = hmac.new(token.encode(), b"genbus-console-session", hashlib.sha256).hexdigest()
    return Middleware(
        SessionMiddleware,
        secret_key=key,
        session_cookie=COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
        https_only=secure,
        path="/console",
    )


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def token_matches(presented: str, token: str) -> bool:
    """Constant time, whatever the lengths."""
    digest = hashlib.sha256(presented.strip().encode()).digest()
    return hmac.compare_digest(digest, hashlib.sha256(token.encode()).digest())


def signed_in(request: Request) -> bool:
    return request.session.get("signed_in") is True


def sign_in(request: Request, who: str) -> None:
    """A fresh session (no fixation): new CSRF token, signed in as `who`."""
    request.session.clear()
    request.session["signed_in"] = True
    request.session["who"] = who
    csrf_token(request)


async def csrf_ok(request: Request) -> bool:
    expected = request.session.get(CSRF_FIELD)
    if request.method != "POST":
        return True
    if not isinstance(expected, str) or not expected:
        return False
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        presented = field if isinstance(field, str) else ""
    return hmac.compare_digest(presented.encode(), expected.encode())


def guarded(endpoint: Endpoint, *, login: bool = True) -> Endpoint:
    """Sign-in (when `login`) and CSRF (every POST) before `endpoint`."""

    async def wrapper(request: Request) -> Response:
        if login and not signed_in(request):
            if request.method == "GET" and "text/event-stream" not in request.headers.get(
                "accept", ""
            ):
                return RedirectResponse("/console/login", status_code=303)
            return problem_response(401, "unauthorized", "sign in to the console first")
        if not await csrf_ok(request):
            return problem_response(403, "csrf_failed", "the form's CSRF token is missing or stale")
        return await endpoint(request)

    return wrapper

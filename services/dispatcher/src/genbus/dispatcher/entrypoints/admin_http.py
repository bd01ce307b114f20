"""The dispatcher's admin HTTP API under `/admin`, mounted on its probes-and-metrics server.

Every request needs `Authorization: Bearer <GENBUS_DISPATCHER_ADMIN_TOKEN>` (else 401); with no
token configured the routes do not exist (404). Credentials are accepted, never returned: an
account is shown with its `credential_names` only. Errors are `application/problem+json` in the
shape of every genbus HTTP surface (`genbus.runtime.problems`, `docs/problems.md`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from genbus.dispatcher.entrypoints.admin_models import AccountCreate, AccountUpdate, DisableRequest
from genbus.dispatcher.service_layer import accounts
from genbus.dispatcher.service_layer.unit_of_work import UowFactory
from genbus.providers import CredentialCipher
from genbus.runtime.logging import get_logger
from genbus.runtime.problems import (
    field_errors_from,
    http_problem_handler,
    malformed_json,
    problem_response,
    validation_problem,
)

Handler = Callable[[Request], Awaitable[Response]]
Model = TypeVar("Model", bound=BaseModel)
log = get_logger(__name__)

_STATUS = {
    accounts.AccountNotFound: 404,
    accounts.AccountConflict: 409,
    accounts.InvalidAccount: 422,
}


def admin_routes(
    uow: UowFactory,
    cipher: CredentialCipher,
    token: str,
    on_change: Callable[[], None] = lambda: None,
) -> list[BaseRoute]:
    """The `/admin` mount, or nothing when `token` is empty (the routes are then 404).

    `on_change` runs after an account changed, so the scheduler looks at the accounts again.
    """
    if not token:
        return []

    async def list_accounts(_: Request) -> Response:
        views = await accounts.list_accounts(uow())
        return JSONResponse({"accounts": [v.as_dict() for v in views]})

    async def create_account(request: Request) -> Response:
        body = await _parse(request, AccountCreate)
        view = await accounts.create_account(uow(), cipher, body.to_new_account())
        on_change()
        return JSONResponse(
            view.as_dict(), status_code=201, headers={"Location": f"/admin/accounts/{view.id}"}
        )

    async def get_account(request: Request) -> Response:
        view = await accounts.get_account(uow(), request.path_params["account_id"])
        return JSONResponse(view.as_dict())

    async def update_account(request: Request) -> Response:
        body = await _parse(request, AccountUpdate)
        if nulls := body.null_fields():
            raise accounts.InvalidAccount(f"cannot be null: {', '.join(nulls)}")
        view = await accounts.update_account(
            uow(), cipher, request.path_params["account_id"], body.to_changes()
        )
        on_change()
        return JSONResponse(view.as_dict())

    async def disable_account(request: Request) -> Response:
        body = await _parse(request, DisableRequest)
        view = await accounts.disable_account(uow(), request.path_params["account_id"], body.reason)
        return JSONResponse(view.as_dict())

    async def enable_account(request: Request) -> Response:
        view = await accounts.enable_account(uow(), request.path_params["account_id"])
        on_change()
        return JSONResponse(view.as_dict())

    async def status(_: Request) -> Response:
        return JSONResponse(await accounts.dispatch_status(uow()))

    async def rotate_credentials(_: Request) -> Response:
        report = await accounts.rotate_credentials(uow(), cipher)
        return JSONResponse(report.as_dict())

    routes = [
        Route("/accounts", _guarded(list_accounts), methods=["GET"]),
        Route("/accounts", _guarded(create_account), methods=["POST"]),
        Route("/accounts/{account_id}", _guarded(get_account), methods=["GET"]),
        Route("/accounts/{account_id}", _guarded(update_account), methods=["PATCH"]),
        Route("/accounts/{account_id}/disable", _guarded(disable_account), methods=["POST"]),
        Route("/accounts/{account_id}/enable", _guarded(enable_account), methods=["POST"]),
        Route("/status", _guarded(status), methods=["GET"]),
        Route("/credentials/rotate", _guarded(rotate_credentials), methods=["POST"]),
    ]
    # An app of its own, so that an unknown route or method under /admin is a problem too.
    admin = Starlette(
        routes=routes,
        middleware=[Middleware(_RequireToken, token=token)],
        exception_handlers={HTTPException: http_problem_handler},
    )
    return [Mount("/admin", app=admin)]


class _RequireToken:
    """401 for any `/admin` request (known route or not) without the right bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._digest = hashlib.sha256(token.encode()).digest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(Headers(scope=scope)):
            response = problem_response(
                401,
                "unauthorized",
                "a valid admin token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return False
        # Digests of equal length, compared in constant time: neither the token nor its length
        # can be learned from response timings.
        digest = hashlib.sha256(presented.strip().encode()).digest()
        return hmac.compare_digest(digest, self._digest)


class _BadRequest(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _guarded(handler: Handler) -> Handler:
    """Translate the service layer's errors (and bad bodies) into problem responses, once."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except _BadRequest as exc:
            return exc.response
        except accounts.AccountError as exc:
            return problem_response(_STATUS.get(type(exc), 400), exc.code, str(exc))
        except Exception as exc:
            log.error("admin request failed", path=request.url.path, error=repr(exc), exc_info=exc)
            return problem_response(500, "internal_error", "an unexpected error occurred")

    return endpoint


async def _parse(request: Request, model: type[Model]) -> Model:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise _BadRequest(malformed_json()) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _BadRequest(validation_problem(field_errors_from(exc))) from None

"""The dispatcher's admin HTTP API under `/admin`, served on the admin listener (`admin_app`).

Every change is recorded in the audit log (`GET /admin/audit`) with who made it: the token's
configured name (GENBUS_DISPATCHER_ADMIN_NAME) and the request's client address.

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
from dataclasses import dataclass
from typing import TypeVar

from nats.js.errors import NotFoundError
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
from genbus.dispatcher.service_layer import accounts, audit
from genbus.dispatcher.service_layer.base_urls import STRICT, BaseUrlPolicy
from genbus.dispatcher.service_layer.dead_letters import DeadLetters
from genbus.dispatcher.service_layer.dispatch_status import dispatch_status
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
    accounts.CredentialsRequired: 422,
}
_MAX_AUDIT_PAGE = 500


def actor_of(request: Request, name: str) -> str:
    """Who is asking, as the audit log names them."""
    return audit.admin_actor(name, request.client.host if request.client else None)


@dataclass(frozen=True)
class _AdminApi:
    """The `/admin` handlers: each parses, calls the audited service layer, answers."""

    uow: UowFactory
    cipher: CredentialCipher
    name: str
    policy: BaseUrlPolicy
    on_change: Callable[[], None]

    async def list_accounts(self, _: Request) -> Response:
        views = await accounts.list_accounts(self.uow())
        return JSONResponse({"accounts": [v.as_dict() for v in views]})

    async def create_account(self, request: Request) -> Response:
        body = await _parse(request, AccountCreate)
        view = await accounts.create_account(
            self.uow(),
            self.cipher,
            body.to_new_account(),
            actor=actor_of(request, self.name),
            policy=self.policy,
        )
        self.on_change()
        return JSONResponse(
            view.as_dict(), status_code=201, headers={"Location": f"/admin/accounts/{view.id}"}
        )

    async def get_account(self, request: Request) -> Response:
        view = await accounts.get_account(self.uow(), request.path_params["account_id"])
        return JSONResponse(view.as_dict())

    async def update_account(self, request: Request) -> Response:
        body = await _parse(request, AccountUpdate)
        if nulls := body.null_fields():
            raise accounts.InvalidAccount(f"cannot be null: {', '.join(nulls)}")
        view = await accounts.update_account(
            self.uow(),
            self.cipher,
            request.path_params["account_id"],
            body.to_changes(),
            actor=actor_of(request, self.name),
            policy=self.policy,
        )
        self.on_change()
        return JSONResponse(view.as_dict())

    async def disable_account(self, request: Request) -> Response:
        body = await _parse(request, DisableRequest)
        view = await accounts.disable_account(
            self.uow(),
            request.path_params["account_id"],
            body.reason,
            actor=actor_of(request, self.name),
        )
        return JSONResponse(view.as_dict())

    async def enable_account(self, request: Request) -> Response:
        view = await accounts.enable_account(
            self.uow(), request.path_params["account_id"], actor=actor_of(request, self.name)
        )
        self.on_change()
        return JSONResponse(view.as_dict())

    async def status(self, _: Request) -> Response:
        return JSONResponse(await dispatch_status(self.uow()))

    async def rotate_credentials(self, request: Request) -> Response:
        report = await accounts.rotate_credentials(
            self.uow(), self.cipher, actor=actor_of(request, self.name)
        )
        return JSONResponse(report.as_dict())

    async def audit_log(self, request: Request) -> Response:
        query = request.query_params
        entries = await audit.list_entries(
            self.uow(),
            limit=_int(query.get("limit"), 100, 1, _MAX_AUDIT_PAGE) or 100,
            target=query.get("target") or None,
            before_id=_int(query.get("before_id"), None, 1, None),
        )
        return JSONResponse({"entries": [e.as_dict() for e in entries]})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/accounts", _guarded(self.list_accounts), methods=["GET"]),
            Route("/accounts", _guarded(self.create_account), methods=["POST"]),
            Route("/accounts/{account_id}", _guarded(self.get_account), methods=["GET"]),
            Route("/accounts/{account_id}", _guarded(self.update_account), methods=["PATCH"]),
            Route(
                "/accounts/{account_id}/disable", _guarded(self.disable_account), methods=["POST"]
            ),
            Route("/accounts/{account_id}/enable", _guarded(self.enable_account), methods=["POST"]),
            Route("/status", _guarded(self.status), methods=["GET"]),
            Route("/credentials/rotate", _guarded(self.rotate_credentials), methods=["POST"]),
            Route("/audit", _guarded(self.audit_log), methods=["GET"]),
        ]


def admin_routes(
    uow: UowFactory,
    cipher: CredentialCipher,
    token: str,
    on_change: Callable[[], None] = lambda: None,
    *,
    policy: BaseUrlPolicy = STRICT,
    name: str = "admin",
    dead_letters: DeadLetters | None = None,
) -> list[BaseRoute]:
    """The `/admin` mount, or nothing when `token` is empty (the routes are then 404).

    `on_change` runs after an account changed, so the scheduler looks at the accounts again;
    `policy` says which base URLs accounts may have; `dead_letters` adds the dead-letter routes.
    """
    if not token:
        return []
    api = _AdminApi(uow, cipher, name, policy, on_change)
    routes = api.routes()
    if dead_letters is not None:
        routes += dead_letter_routes(dead_letters, name)
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


def dead_letter_routes(dead_letters: DeadLetters, name: str) -> list[BaseRoute]:
    """`GET /deadletters`, `POST /deadletters/{sequence}/replay`, `POST /deadletters/replay`."""

    async def list_letters(request: Request) -> Response:
        limit = _int(request.query_params.get("limit"), 200, 1, 1000) or 200
        return JSONResponse({"dead_letters": await dead_letters.letters(limit)})

    async def replay_one(request: Request) -> Response:
        sequence = _int(request.path_params["sequence"], None, 1, None)
        assert sequence is not None
        try:
            replayed = await dead_letters.replay(sequence, actor=actor_of(request, name))
        except NotFoundError:
            return problem_response(404, "dead_letter_not_found", f"no dead letter {sequence}")
        return JSONResponse(replayed)

    async def replay_all(request: Request) -> Response:
        replayed = await dead_letters.replay_all(actor=actor_of(request, name))
        return JSONResponse({"replayed": replayed})

    return [
        Route("/deadletters", _guarded(list_letters), methods=["GET"]),
        Route("/deadletters/replay", _guarded(replay_all), methods=["POST"]),
        Route("/deadletters/{sequence}/replay", _guarded(replay_one), methods=["POST"]),
    ]


def _int(raw: str | None, default: int | None, low: int, high: int | None) -> int | None:
    """A query or path integer within [low, high]; 422 `invalid_parameter` otherwise."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise _BadRequest(
            problem_response(422, "invalid_parameter", f"{raw!r} is not an integer {bound}")
        )
    return value


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

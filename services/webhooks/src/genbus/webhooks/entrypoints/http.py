"""The management API, `/api/v1/webhooks/...`, served on the service's own HTTP listener
beside `/healthz`, `/readyz` and `/metrics`.

Callers use their api key (`Authorization: Bearer gbk_...`); this service asks the api who
the key belongs to (`adapters.identity`) and scopes everything to that user: another user's
endpoint is 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.security import HTTPBearer

from genbus.runtime.problems import PROBLEM_MEDIA_TYPE, Problem, document_problems_as_problem_json
from genbus.webhooks.adapters.identity import ApiIdentity, Caller
from genbus.webhooks.domain.model import DeliveryStatus
from genbus.webhooks.entrypoints.problems import DeliveryNotFound, install_problem_handlers
from genbus.webhooks.entrypoints.schemas import (
    AttemptList,
    AttemptView,
    DeliveryList,
    DeliveryView,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointPatch,
    EndpointView,
)
from genbus.webhooks.service_layer.endpoints import EndpointNotFound, Endpoints
from genbus.webhooks.service_layer.ports import EndpointChanges, Store

PREFIX = "/api/v1/webhooks"

DESCRIPTION = """
Register endpoints that receive your generations' events as signed
[Standard Webhooks](https://www.standardwebhooks.com/) requests (`webhook-id`,
`webhook-timestamp`, `webhook-signature`; verify them with the secret returned once at
registration). Failed deliveries are retried with exponential backoff and jitter for more than
a day; an endpoint that keeps failing is disabled (`disabled_reason` says why) until you
enable it again. Every attempt is listed; any delivery can be replayed.

Authenticate with your api key: `Authorization: Bearer gbk_...`. Errors are
`application/problem+json` with a stable `code`.
"""

bearer = HTTPBearer(
    scheme_name="ApiKey",
    bearerFormat="gbk_<43 characters>",
    description="Your genbus api key: `Authorization: Bearer gbk_...`.",
    auto_error=False,
)


@dataclass
class HttpDeps:
    endpoints: Endpoints
    store: Store
    identity: ApiIdentity


async def _deps(request: Request) -> HttpDeps:
    deps: HttpDeps = request.app.state.deps
    return deps


async def _caller(
    request: Request,
    deps: Annotated[HttpDeps, Depends(_deps)],
    _: Annotated[object, Depends(bearer)],
) -> Caller:
    return await deps.identity.caller(request.headers.get("authorization"))


DepsDep = Annotated[HttpDeps, Depends(_deps)]
CallerDep = Annotated[Caller, Depends(_caller)]


def _uuid(value: str, what: type[Exception], name: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise what(f"{name} {value[:100]!r} not found") from None


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of these error statuses, as `application/problem+json`."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


router = APIRouter(
    prefix=PREFIX, tags=["webhooks"], responses=_problems(401, 404, 422, 429, 500, 503)
)


@router.post("/endpoints", status_code=201, operation_id="createWebhookEndpoint")
async def create_endpoint(
    body: EndpointCreate, caller: CallerDep, deps: DepsDep
) -> EndpointCreated:
    """Register an endpoint; the response holds its signing secret, shown only this once."""
    registered = await deps.endpoints.register(
        caller.user_id, body.url, body.events, body.description
    )
    view = EndpointView.of(registered.endpoint)
    return EndpointCreated(**view.model_dump(), secret=registered.secret)


@router.get("/endpoints", operation_id="listWebhookEndpoints")
async def list_endpoints(caller: CallerDep, deps: DepsDep) -> EndpointList:
    return EndpointList(
        items=[EndpointView.of(e) for e in await deps.endpoints.list(caller.user_id)]
    )


@router.get("/endpoints/{endpoint_id}", operation_id="getWebhookEndpoint")
async def get_endpoint(endpoint_id: str, caller: CallerDep, deps: DepsDep) -> EndpointView:
    """One endpoint; `enabled: false` with `disabled_reason` once it was disabled."""
    endpoint_uuid = _uuid(endpoint_id, EndpointNotFound, "endpoint")
    return EndpointView.of(await deps.endpoints.get(caller.user_id, endpoint_uuid))


@router.patch("/endpoints/{endpoint_id}", operation_id="updateWebhookEndpoint")
async def update_endpoint(
    endpoint_id: str, body: EndpointPatch, caller: CallerDep, deps: DepsDep
) -> EndpointView:
    changes = EndpointChanges(
        url=body.url,
        description=body.description,
        event_kinds=None if body.events is None else tuple(body.events),
        enabled=body.enabled,
    )
    endpoint_uuid = _uuid(endpoint_id, EndpointNotFound, "endpoint")
    return EndpointView.of(await deps.endpoints.change(caller.user_id, endpoint_uuid, changes))


@router.post("/endpoints/{endpoint_id}/enable", operation_id="enableWebhookEndpoint")
async def enable_endpoint(endpoint_id: str, caller: CallerDep, deps: DepsDep) -> EndpointView:
    """Enable it again: its failure count is reset and its pending deliveries are due now."""
    endpoint_uuid = _uuid(endpoint_id, EndpointNotFound, "endpoint")
    changes = EndpointChanges(enabled=True)
    return EndpointView.of(await deps.endpoints.change(caller.user_id, endpoint_uuid, changes))


@router.post("/endpoints/{endpoint_id}/disable", operation_id="disableWebhookEndpoint")
async def disable_endpoint(endpoint_id: str, caller: CallerDep, deps: DepsDep) -> EndpointView:
    endpoint_uuid = _uuid(endpoint_id, EndpointNotFound, "endpoint")
    changes = EndpointChanges(enabled=False)
    return EndpointView.of(await deps.endpoints.change(caller.user_id, endpoint_uuid, changes))


@router.delete("/endpoints/{endpoint_id}", status_code=204, operation_id="deleteWebhookEndpoint")
async def delete_endpoint(endpoint_id: str, caller: CallerDep, deps: DepsDep) -> Response:
    """Delete it with its deliveries and attempts."""
    await deps.endpoints.delete(caller.user_id, _uuid(endpoint_id, EndpointNotFound, "endpoint"))
    return Response(status_code=204)


@router.get("/endpoints/{endpoint_id}/deliveries", operation_id="listWebhookDeliveries")
async def list_deliveries(
    endpoint_id: str,
    caller: CallerDep,
    deps: DepsDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryList:
    """The endpoint's deliveries, newest first."""
    endpoint_uuid = _uuid(endpoint_id, EndpointNotFound, "endpoint")
    found = await deps.store.list_deliveries(caller.user_id, endpoint_uuid, status, limit)
    if found is None:
        raise EndpointNotFound(f"endpoint {endpoint_id} not found")
    return DeliveryList(items=[DeliveryView.of(d) for d in found])


@router.get(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}/attempts",
    operation_id="listWebhookAttempts",
)
async def list_attempts(
    endpoint_id: str, delivery_id: str, caller: CallerDep, deps: DepsDep
) -> AttemptList:
    """Every attempt of a delivery, oldest first: status code, error, duration."""
    endpoint_uuid = _uuid(endpoint_id, EndpointNotFound, "endpoint")
    delivery_uuid = _uuid(delivery_id, DeliveryNotFound, "delivery")
    found = await deps.store.list_attempts(caller.user_id, endpoint_uuid, delivery_uuid)
    if found is None:
        raise DeliveryNotFound(f"delivery {delivery_id} not found")
    return AttemptList(items=[AttemptView.of(a) for a in found])


@router.post(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    operation_id="replayWebhookDelivery",
)
async def replay_delivery(
    endpoint_id: str, delivery_id: str, caller: CallerDep, deps: DepsDep
) -> DeliveryView:
    """Send the delivery again (same `webhook-id` and body), its retry schedule restarted."""
    endpoint_uuid = _uuid(endpoint_id, EndpointNotFound, "endpoint")
    delivery_uuid = _uuid(delivery_id, DeliveryNotFound, "delivery")
    replayed = await deps.store.replay(
        caller.user_id, endpoint_uuid, delivery_uuid, datetime.now(UTC)
    )
    if replayed is None:
        raise DeliveryNotFound(f"delivery {delivery_id} not found")
    return DeliveryView.of(replayed)


def management_app(deps: HttpDeps | None) -> FastAPI:
    """The management API; `deps` None only to render its OpenAPI document."""
    app = FastAPI(title="genbus webhooks", version="0.1.0", description=DESCRIPTION)
    app.state.deps = deps
    app.include_router(router)
    install_problem_handlers(app)

    document_problems_as_problem_json(app)
    return app

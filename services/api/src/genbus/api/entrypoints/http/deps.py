"""Dependencies of the HTTP routes: the runtime, a generation id, an idempotency key."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, FastAPI, Header, Request
from fastapi.routing import APIRoute

from genbus.api.bootstrap import ApiRuntime
from genbus.api.domain.errors import GenerationNotFound, InvalidRequest
from genbus.api.domain.idempotency import KEY_PATTERN
from genbus.runtime.problems import FieldError


# Dependencies are `async def` although they never await: FastAPI runs a plain `def` one in
# its thread pool, a thread hand-off per request for a few attribute reads.
async def get_runtime(request: Request) -> ApiRuntime:
    runtime: ApiRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ApiRuntime, Depends(get_runtime)]


async def parse_generation_id(generation_id: str) -> UUID:
    """A path id that is not a UUID names no generation: 404, like a missing one."""
    try:
        return UUID(generation_id)
    except ValueError:
        raise GenerationNotFound(f"generation {generation_id[:100]!r} not found") from None


GenerationId = Annotated[UUID, Depends(parse_generation_id)]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="Makes the request safe to send again: the same key with the same body "
        "returns the generation the first request created (200, header "
        "`Idempotent-Replayed: true`) instead of creating another; the same key with another "
        "body is 409 `idempotency_key_reused`. Keys are scoped to your user and kept 24 h.",
        examples=["b7e4a0c2-5d1f-4e8a-9c3b-2f6d8e1a4b7c"],
    ),
]


async def reject_unknown_query_parameters(request: Request) -> None:
    """A query parameter the route does not document is a 422 naming it: a misspelt filter
    (`?stauts=failed`) must not silently list everything."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _documented_query_parameters(request.app).get((route.path, request.method.lower()))
    unknown = sorted(set(request.query_params) - (known or frozenset()))
    if unknown:
        raise InvalidRequest(
            [FieldError(name[:100], "unknown_field", "no such query parameter") for name in unknown]
        )


def _documented_query_parameters(app: FastAPI) -> dict[tuple[str, str], frozenset[str]]:
    """(path, method) → the query parameters the OpenAPI document lists for it."""
    known: dict[tuple[str, str], frozenset[str]] | None = getattr(app.state, "known_query", None)
    if known is None:
        known = {
            (path, method): frozenset(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
            )
            for path, item in app.openapi()["paths"].items()
            for method, operation in item.items()
        }
        app.state.known_query = known
    return known


KnownQueryOnly = Depends(reject_unknown_query_parameters)

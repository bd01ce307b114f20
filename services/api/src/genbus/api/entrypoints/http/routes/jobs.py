"""`/api/v1/jobs`: the legacy job routes, thin aliases of the generation routes (same code,
same resource); `DELETE` cancels, as it did in the old system."""

from __future__ import annotations

from fastapi import APIRouter, Response

from genbus.api.entrypoints.http import views
from genbus.api.entrypoints.http.auth import CurrentPrincipal
from genbus.api.entrypoints.http.deps import (
    GenerationId,
    IdempotencyKeyHeader,
    KnownQueryOnly,
    RuntimeDep,
)
from genbus.api.entrypoints.http.problems import OVERLOAD_CODES, problem_responses
from genbus.api.entrypoints.http.queries import ListQueryDep
from genbus.api.entrypoints.http.request_bodies import JobCreate
from genbus.api.entrypoints.http.schemas import GenerationPage, GenerationPublic

PREFIX = "/api/v1/jobs"

router = APIRouter(
    prefix=PREFIX,
    tags=["jobs (legacy)"],
    responses=problem_responses(401, 422, 429, 503),
    dependencies=[KnownQueryOnly],
)


@router.post(
    "",
    status_code=201,
    operation_id="create_job",
    responses={
        200: {
            "model": GenerationPublic,
            "description": "An idempotent replay (see `create_generation`)",
            "headers": {
                "Idempotent-Replayed": {"description": "`true`", "schema": {"type": "string"}}
            },
        },
        **problem_responses(
            409,
            413,
            conflicts={
                "idempotency_key_reused": "this Idempotency-Key was used for another request"
            },
        ),
        **problem_responses(403, 429, throttles=OVERLOAD_CODES),
    },
)
async def create_job(
    body: JobCreate,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> GenerationPublic:
    """Legacy: create a generation from `{operation_type, provider_id, params[, priority]}`."""
    claim = views.idempotency_claim(idempotency_key, "create_job", body.model_dump(mode="json"))
    return await views.create(runtime, principal, body.to_draft(), claim, response, PREFIX)


@router.get("", operation_id="list_jobs")
async def list_jobs(
    runtime: RuntimeDep, principal: CurrentPrincipal, query: ListQueryDep
) -> GenerationPage:
    """Legacy: the same list as `GET /api/v1/generations`."""
    return await views.list_page(runtime, principal, query)


@router.get("/{generation_id}", operation_id="get_job", responses=problem_responses(404))
async def get_job(
    generation_id: GenerationId, runtime: RuntimeDep, principal: CurrentPrincipal
) -> GenerationPublic:
    """Legacy: a generation, by the id `POST /api/v1/jobs` returned."""
    return await views.get(runtime, principal, generation_id)


@router.delete(
    "/{generation_id}",
    operation_id="cancel_job",
    responses={
        200: {"description": "Cancelled at once (it was still pending)"},
        202: {"model": GenerationPublic, "description": "Cancel requested from the provider"},
        **problem_responses(
            404, 409, conflicts={"generation_terminal": "the generation already ended"}
        ),
    },
)
async def cancel_job(
    generation_id: GenerationId,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    response: Response,
) -> GenerationPublic:
    """Legacy: cancel, exactly as `POST /api/v1/generations/{id}/cancel`."""
    return await views.cancel(runtime, principal, generation_id, response)

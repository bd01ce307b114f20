"""`/api/v1/generations`: create, read and cancel generations."""

from __future__ import annotations

from fastapi import APIRouter, Response

from genbus.api.entrypoints.http.deps import CurrentUser, GenerationId, RuntimeDep
from genbus.api.entrypoints.http.problems import PROBLEM_MEDIA_TYPE, PROBLEM_RESPONSES, Problem
from genbus.api.entrypoints.http.schemas import GenerationCreate, GenerationPublic
from genbus.api.service_layer import handlers

PREFIX = "/api/v1/generations"

router = APIRouter(prefix=PREFIX, tags=["generations"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, operation_id="create_generation")
async def create_generation(
    body: GenerationCreate, runtime: RuntimeDep, user: CurrentUser, response: Response
) -> GenerationPublic:
    """Create a generation; it is dispatched as soon as a provider slot is free."""
    generation = await handlers.create_generation(
        body.to_draft(),
        user,
        runtime.uow(),
        catalog=runtime.catalog,
        limits=runtime.limits,
        now=runtime.clock(),
    )
    response.headers["Location"] = f"{PREFIX}/{generation.id}"
    return GenerationPublic.from_domain(generation)


@router.get("/{generation_id}", operation_id="get_generation")
async def get_generation(
    generation_id: GenerationId, runtime: RuntimeDep, user: CurrentUser
) -> GenerationPublic:
    """One of your generations (another user's, or a malformed id, is 404)."""
    generation = await handlers.get_generation(generation_id, user, runtime.uow())
    return GenerationPublic.from_domain(generation)


@router.post(
    "/{generation_id}/cancel",
    operation_id="cancel_generation",
    responses={
        200: {"description": "Cancelled (it was still pending)"},
        202: {"model": GenerationPublic, "description": "Cancel requested from the provider"},
        409: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}},
    },
)
async def cancel_generation(
    generation_id: GenerationId, runtime: RuntimeDep, user: CurrentUser, response: Response
) -> GenerationPublic:
    """Pending: cancelled now (200). Processing: the provider is asked to stop; the final
    status arrives later (202). Already terminal: 409 `generation_terminal`."""
    result = await handlers.cancel_generation(
        generation_id, user, runtime.uow(), now=runtime.clock()
    )
    response.status_code = 200 if result.cancelled_at_once else 202
    return GenerationPublic.from_domain(result.generation)

"""`/api/v1/jobs`: the legacy job routes, thin aliases of the generation routes."""

from __future__ import annotations

from fastapi import APIRouter, Response

from genbus.api.entrypoints.http.deps import CurrentUser, GenerationId, RuntimeDep
from genbus.api.entrypoints.http.problems import PROBLEM_RESPONSES
from genbus.api.entrypoints.http.schemas import GenerationPublic, JobCreate
from genbus.api.service_layer import handlers

PREFIX = "/api/v1/jobs"

router = APIRouter(prefix=PREFIX, tags=["jobs (legacy)"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, operation_id="create_job")
async def create_job(
    body: JobCreate, runtime: RuntimeDep, user: CurrentUser, response: Response
) -> GenerationPublic:
    """Legacy: create a generation from `{operation_type, provider_id, params[, priority]}`."""
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


@router.get("/{generation_id}", operation_id="get_job")
async def get_job(
    generation_id: GenerationId, runtime: RuntimeDep, user: CurrentUser
) -> GenerationPublic:
    """Legacy: a generation, by the id `POST /api/v1/jobs` returned."""
    generation = await handlers.get_generation(generation_id, user, runtime.uow())
    return GenerationPublic.from_domain(generation)

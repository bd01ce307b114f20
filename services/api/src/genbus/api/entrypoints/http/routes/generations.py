"""`/api/v1/generations`: create, list, read, cancel, retry and delete generations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from genbus.api.entrypoints.http import views
from genbus.api.entrypoints.http.auth import CurrentPrincipal
from genbus.api.entrypoints.http.deps import (
    GenerationId,
    IdempotencyKeyHeader,
    KnownQueryOnly,
    RuntimeDep,
)
from genbus.api.entrypoints.http.prefer import (
    PREFERENCE_APPLIED,
    PREFERENCE_APPLIED_DOC,
    WaitPreference,
    when_done,
)
from genbus.api.entrypoints.http.problems import OVERLOAD_CODES, problem_responses
from genbus.api.entrypoints.http.queries import ListQueryDep
from genbus.api.entrypoints.http.request_bodies import GenerationCreate
from genbus.api.entrypoints.http.schemas import GenerationPage, GenerationPublic
from genbus.api.service_layer import generations

PREFIX = "/api/v1/generations"

router = APIRouter(
    prefix=PREFIX,
    tags=["generations"],
    responses=problem_responses(401, 422, 429, 503),
    dependencies=[KnownQueryOnly],
)

_CREATED: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Created; `Location` names it",
        "headers": {
            "Location": {"description": "the generation's URL", "schema": {"type": "string"}},
            PREFERENCE_APPLIED: PREFERENCE_APPLIED_DOC,
        },
    },
    200: {
        "model": GenerationPublic,
        "description": "An idempotent replay: the generation an earlier request with this "
        "`Idempotency-Key` created, as it is now (header `Idempotent-Replayed: true`)",
        "headers": {
            "Idempotent-Replayed": {"description": "`true`", "schema": {"type": "string"}},
            "Location": {"description": "the generation's URL", "schema": {"type": "string"}},
            PREFERENCE_APPLIED: PREFERENCE_APPLIED_DOC,
        },
    },
}
_KEY_REUSED = {"idempotency_key_reused": "this Idempotency-Key was used for a different request"}


@router.post(
    "",
    status_code=201,
    operation_id="create_generation",
    responses={
        **_CREATED,
        **problem_responses(409, 413, conflicts=_KEY_REUSED),
        **problem_responses(403, 429, throttles=OVERLOAD_CODES),
    },
)
async def create_generation(
    body: GenerationCreate,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    response: Response,
    wait_s: WaitPreference,
    idempotency_key: IdempotencyKeyHeader = None,
) -> GenerationPublic:
    """Create a generation. It is dispatched when due (`scheduled_at`), by priority (higher
    first), as soon as a provider account has a free slot. With `Prefer: wait=N` the answer
    (still `201`, or `200` for a replay) comes once the generation is terminal or after N
    seconds, with its state then: check `status`."""
    claim = views.idempotency_claim(
        idempotency_key, "create_generation", body.model_dump(mode="json")
    )
    created = await views.create(runtime, principal, body.to_draft(), claim, response, PREFIX)
    return await when_done(runtime, principal, created, wait_s, response)


@router.get("", operation_id="list_generations")
async def list_generations(
    runtime: RuntimeDep, principal: CurrentPrincipal, query: ListQueryDep
) -> GenerationPage:
    """Your generations, newest first, a page at a time (keyset pagination: stable while new
    generations are created). Filters combine with AND; repeated values of one filter with OR."""
    return await views.list_page(runtime, principal, query)


@router.get(
    "/{generation_id}",
    operation_id="get_generation",
    responses={
        200: {
            "description": "The generation (with `Prefer: wait`: once terminal, or as it is "
            "after the wait)",
            "headers": {PREFERENCE_APPLIED: PREFERENCE_APPLIED_DOC},
        },
        **problem_responses(404),
    },
)
async def get_generation(
    generation_id: GenerationId,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    response: Response,
    wait_s: WaitPreference,
) -> GenerationPublic:
    """One of your generations (another user's, or a malformed id, is 404). Admin keys may read
    any user's generation. With `Prefer: wait=N` the answer (always `200`) comes once it is
    terminal or after N seconds, with its state then: check `status`."""
    generation = await views.get(runtime, principal, generation_id)
    return await when_done(runtime, principal, generation, wait_s, response)


@router.post(
    "/{generation_id}/cancel",
    operation_id="cancel_generation",
    responses={
        200: {"description": "Cancelled at once (it was still pending)"},
        202: {
            "model": GenerationPublic,
            "description": "Cancel requested from the provider; the final status arrives by "
            "event (watch `/events`)",
        },
        **problem_responses(
            404, 409, conflicts={"generation_terminal": "the generation already ended"}
        ),
    },
)
async def cancel_generation(
    generation_id: GenerationId,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    response: Response,
) -> GenerationPublic:
    """Pending: cancelled now (200). Processing: the provider is asked to stop; the final
    status arrives later (202). Already terminal: 409 `generation_terminal`."""
    return await views.cancel(runtime, principal, generation_id, response)


@router.post(
    "/{generation_id}/retry",
    status_code=201,
    operation_id="retry_generation",
    responses={
        **_CREATED,
        **problem_responses(
            404,
            409,
            conflicts={
                "generation_not_retryable": "only failed or cancelled generations can be retried",
                **_KEY_REUSED,
            },
        ),
        **problem_responses(403, 429, throttles=OVERLOAD_CODES),
    },
)
async def retry_generation(
    generation_id: GenerationId,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> GenerationPublic:
    """Run a failed or cancelled generation's request again, as a new generation whose
    `parent_generation_id` names this one. Its schedule and deadline are not carried over: the
    retry is due now, with the default deadline. Other statuses: 409 `generation_not_retryable`."""
    claim = views.idempotency_claim(idempotency_key, "retry_generation", str(generation_id))
    return await views.retry(runtime, principal, generation_id, claim, response, PREFIX)


@router.delete(
    "/{generation_id}",
    status_code=204,
    operation_id="delete_generation",
    response_class=Response,
    responses={
        204: {"description": "Deleted, with its idempotency keys and its change history"},
        **problem_responses(
            404,
            409,
            conflicts={"generation_not_terminal": "the generation has not ended; cancel it first"},
        ),
    },
)
async def delete_generation(
    generation_id: GenerationId, runtime: RuntimeDep, principal: CurrentPrincipal
) -> Response:
    """Delete a terminal (completed, failed or cancelled) generation of yours. Live-status
    streams of your generations receive a `generation.deleted` event."""
    await generations.delete_generation(
        generation_id, principal.user_id, runtime.uow(), now=runtime.clock()
    )
    return Response(status_code=204)

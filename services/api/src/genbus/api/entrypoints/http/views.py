"""What the generation routes do, shared by `/api/v1/generations` and the legacy `/api/v1/jobs`
aliases: parse, call the handler, shape the response."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Response

from genbus.api.bootstrap import ApiRuntime
from genbus.api.domain.api_keys import Principal
from genbus.api.domain.idempotency import IdempotencyClaim, request_fingerprint
from genbus.api.domain.requests import GenerationDraft
from genbus.api.entrypoints.http.queries import ListQuery
from genbus.api.entrypoints.http.schemas import GenerationPage, GenerationPublic
from genbus.api.service_layer import generations, intake
from genbus.api.service_layer.intake import Created

REPLAYED_HEADER = "Idempotent-Replayed"


def idempotency_claim(key: str | None, operation: str, body: Any) -> IdempotencyClaim | None:
    if key is None:
        return None
    return IdempotencyClaim(key, request_fingerprint(operation, body))


async def admit(runtime: ApiRuntime, principal: Principal, claim: IdempotencyClaim | None) -> None:
    """Raise 429 if admission control refuses a new generation now. The check is in memory; a
    request with an `Idempotency-Key` is refused only once a read shows the key unused: the
    replay of an accepted request always answers as the original did."""
    refusal = runtime.admission.check(principal.user_id)
    if refusal is None:
        return
    if claim is not None and await intake.idempotency_key_used(
        claim, principal.user_id, runtime.reader(), limits=runtime.limits, now=runtime.clock()
    ):
        return
    runtime.admission.count_refusal(refusal)
    raise refusal.error


async def create(
    runtime: ApiRuntime,
    principal: Principal,
    draft: GenerationDraft,
    claim: IdempotencyClaim | None,
    response: Response,
    location_prefix: str,
) -> GenerationPublic:
    await admit(runtime, principal, claim)
    created = await intake.create_generation(
        draft,
        principal.user_id,
        # Without an idempotency key, the only write is the generation's own statement.
        runtime.uow(single_statement=claim is None),
        catalog=runtime.catalog,
        limits=runtime.limits,
        now=runtime.clock(),
        idempotency=claim,
        policy=runtime.policy(principal),
        stored=runtime.stored_inputs,
    )
    return _created(runtime, created, response, location_prefix)


async def retry(
    runtime: ApiRuntime,
    principal: Principal,
    generation_id: UUID,
    claim: IdempotencyClaim | None,
    response: Response,
    location_prefix: str,
) -> GenerationPublic:
    await admit(runtime, principal, claim)
    created = await intake.retry_generation(
        generation_id,
        principal.user_id,
        runtime.uow(single_statement=claim is None),
        catalog=runtime.catalog,
        limits=runtime.limits,
        now=runtime.clock(),
        idempotency=claim,
        policy=runtime.policy(principal),
        stored=runtime.stored_inputs,
    )
    return _created(runtime, created, response, location_prefix)


def _created(
    runtime: ApiRuntime, created: Created, response: Response, location_prefix: str
) -> GenerationPublic:
    response.status_code = 200 if created.replayed else 201
    if created.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    elif created.transaction_id is not None:
        runtime.admission.admitted(created.generation.user_id, created.transaction_id)
    response.headers["Location"] = f"{location_prefix}/{created.generation.id}"
    return GenerationPublic.from_domain(created.generation, runtime.clock())


async def get(runtime: ApiRuntime, principal: Principal, generation_id: UUID) -> GenerationPublic:
    now = runtime.clock()
    generation, standing = await generations.get_generation_standing(
        generation_id, principal.reads_as, runtime.reader(), now=now
    )
    public = GenerationPublic.from_domain(generation, now)
    if standing is None:
        return public
    return public.model_copy(
        update={
            "queue_position": standing.position,
            "estimated_start_at": standing.estimated_start_at,
        }
    )


async def list_page(runtime: ApiRuntime, principal: Principal, query: ListQuery) -> GenerationPage:
    page = await generations.list_generations(
        principal.user_id, runtime.reader(), query.where, after=query.after, limit=query.limit
    )
    return GenerationPage.from_domain(page, runtime.clock())


async def cancel(
    runtime: ApiRuntime, principal: Principal, generation_id: UUID, response: Response
) -> GenerationPublic:
    result = await generations.cancel_generation(
        generation_id, principal.user_id, runtime.uow(), now=runtime.clock()
    )
    response.status_code = 200 if result.cancelled_at_once else 202
    return GenerationPublic.from_domain(result.generation, runtime.clock())

"""Creating generations: a new request, an idempotent replay of one, or a retry of an ended one.

Each is one transaction that writes the generation, its `GenerationRequested` (outbox) and its
first change-log row (what live-status streams read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID, uuid4

from genbus.api.domain.errors import (
    GenerationNotFound,
    GenerationNotRetryable,
    IdempotencyKeyReused,
    QuotaExceeded,
)
from genbus.api.domain.events import generation_requested
from genbus.api.domain.hashing import reproducible_hash
from genbus.api.domain.idempotency import IdempotencyClaim
from genbus.api.domain.limits import (
    UNLIMITED,
    Limits,
    check_entitled,
    quota_day,
    quota_resets_at,
)
from genbus.api.domain.model import Generation, JsonObject
from genbus.api.domain.pricing import NO_PRICES, PriceTable
from genbus.api.domain.requests import (
    GenerationDraft,
    InputSpec,
    ProviderCatalog,
    RequestLimits,
    ValidRequest,
    canonical_inputs,
    stored_input_keys,
    validate_request,
)
from genbus.api.domain.status import RETRYABLE, GenerationStatus
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


class StoredInputs(Protocol):
    """Inputs kept in genbus's object store: a user's uploads, and presigned GETs of them."""

    async def upload_keys(self, user_id: str, ids: Sequence[UUID]) -> dict[UUID, str]:
        """The object keys of the user's uploads among `ids` (others are absent)."""
        ...

    async def sign(self, keys: Sequence[str], *, valid_until: datetime) -> dict[str, str]:
        """A presigned GET of each key, working until `valid_until` (or as near as S3 allows)."""
        ...


@dataclass(frozen=True)
class Policy:
    """What applies to the caller: its key's limits, and the price table."""

    limits: Limits = UNLIMITED
    prices: PriceTable = field(default_factory=lambda: NO_PRICES)


@dataclass(frozen=True)
class Created:
    generation: Generation
    #: True when an idempotency key named an earlier request: nothing new was created.
    replayed: bool = False
    #: The id of the transaction that wrote it (None for a replay).
    transaction_id: int | None = None


async def create_generation(
    draft: GenerationDraft,
    user_id: str,
    uow: UnitOfWork,
    *,
    catalog: ProviderCatalog,
    limits: RequestLimits,
    now: datetime,
    idempotency: IdempotencyClaim | None = None,
    policy: Policy = Policy(),
    stored: StoredInputs | None = None,
) -> Created:
    """Validate, then commit the generation and its `GenerationRequested` together.

    With an idempotency key, a request the key already names returns that generation instead.
    """
    # Without a key, an invalid request is refused before touching the database.
    request = None if idempotency else validate_request(draft, catalog, limits, now)
    async with uow:
        generation_id = uuid4()
        if idempotency is not None:
            earlier = await _claim(uow, idempotency, user_id, generation_id, limits, now)
            if earlier is not None:
                return earlier
            request = validate_request(draft, catalog, limits, now)
        assert request is not None
        generation, transaction_id = await _add_generation(
            uow, request, user_id, generation_id, now, policy=policy, stored=stored
        )
        await uow.commit()
    log.info("generation created", generation_id=str(generation.id), user_id=user_id)
    return Created(generation, transaction_id=transaction_id)


async def retry_generation(
    generation_id: UUID,
    user_id: str,
    uow: UnitOfWork,
    *,
    catalog: ProviderCatalog,
    limits: RequestLimits,
    now: datetime,
    idempotency: IdempotencyClaim | None = None,
    policy: Policy = Policy(),
    stored: StoredInputs | None = None,
) -> Created:
    """A new generation with the request of a failed or cancelled one, linked to it.

    The schedule and deadline are not carried over: the retry is due now, with the default
    deadline.
    """
    async with uow:
        new_id = uuid4()
        if idempotency is not None:
            earlier = await _claim(uow, idempotency, user_id, new_id, limits, now)
            if earlier is not None:
                return earlier
        parent = await uow.generations.get(generation_id, user_id=user_id)
        if parent is None:
            raise GenerationNotFound(f"generation {generation_id} not found")
        if parent.status not in RETRYABLE:
            raise GenerationNotRetryable(
                f"generation {generation_id} is {parent.status}; only failed or cancelled "
                "generations can be retried"
            )
        request = validate_request(_draft_of(parent), catalog, limits, now)
        generation, transaction_id = await _add_generation(
            uow, request, user_id, new_id, now, parent=parent.id, policy=policy, stored=stored
        )
        await uow.commit()
    log.info(
        "generation retried",
        generation_id=str(generation.id),
        parent_generation_id=str(generation_id),
        user_id=user_id,
    )
    return Created(generation, transaction_id=transaction_id)


async def idempotency_key_used(
    claim: IdempotencyClaim, user_id: str, uow: UnitOfWork, *, limits: RequestLimits, now: datetime
) -> bool:
    """Whether `user_id` already used `claim`'s key (within its lifetime): the request is then
    a replay (or a reuse with another body), which creates nothing."""
    async with uow:
        stored = await uow.idempotency.find(
            user_id=user_id, key=claim.key, not_before=now - limits.idempotency_ttl
        )
    return stored is not None


async def _claim(
    uow: UnitOfWork,
    claim: IdempotencyClaim,
    user_id: str,
    generation_id: UUID,
    limits: RequestLimits,
    now: datetime,
) -> Created | None:
    """None when the key is new (now claimed for `generation_id`), else the earlier result."""
    stored = await uow.idempotency.claim(
        user_id=user_id,
        key=claim.key,
        request_hash=claim.fingerprint,
        generation_id=generation_id,
        at=now,
        expired_before=now - limits.idempotency_ttl,
    )
    if stored is None:
        return None
    if stored.request_hash != claim.fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was already used for a different request")
    earlier = await uow.generations.get(stored.generation_id, user_id=user_id)
    if earlier is None:  # pragma: no cover - keys are deleted with their generation
        raise IdempotencyKeyReused("this Idempotency-Key names a generation that is gone")
    return Created(earlier, replayed=True)


async def _add_generation(
    uow: UnitOfWork,
    request: ValidRequest,
    user_id: str,
    generation_id: UUID,
    now: datetime,
    *,
    parent: UUID | None = None,
    policy: Policy,
    stored: StoredInputs | None = None,
) -> tuple[Generation, int]:
    """The new generation and the id of the transaction writing it.

    Counted against the caller's daily quota in the same statement: refused, nothing is
    written; rolled back later (an idempotency claim that fails), it is uncounted."""
    draft = request.draft
    check_entitled(
        policy.limits,
        provider_id=draft.provider_id,
        operation_type=request.operation_type,
        priority=draft.priority,
        params=request.canonical_params,
    )
    references = [i.generation_id for i in request.inputs if i.generation_id is not None]
    sources = await uow.generations.get_many(references, user_id=user_id)
    inputs = await _resolved_inputs(request, user_id, sources, stored)
    generation = Generation(
        id=generation_id,
        user_id=user_id,
        operation_type=request.operation_type,
        provider_id=draft.provider_id,
        status=GenerationStatus.PENDING,
        params=dict(draft.params),
        canonical_params=request.canonical_params,
        inputs=[i.as_json() for i in draft.inputs],
        canonical_inputs=inputs,
        priority=draft.priority,
        scheduled_at=request.scheduled_at,
        deadline_at=request.deadline_at,
        reproducible_hash=reproducible_hash(
            request.operation_type, draft.provider_id, request.canonical_params, inputs
        ),
        name=draft.name,
        metadata=dict(draft.metadata),
        attempt=0,
        account_id=None,
        provider_job_id=None,
        asset=None,
        error=None,
        created_at=now,
        updated_at=now,
        submitted_at=None,
        completed_at=None,
        parent_generation_id=parent,
        prompt_version_id=draft.prompt_version_id,
        estimated_cost=policy.prices.estimate(
            draft.provider_id, request.operation_type, request.canonical_params
        ),
    )
    requested = generation_requested(generation, now, max_in_flight=policy.limits.max_in_flight)
    quota = policy.limits.daily_quota
    transaction_id = await uow.add_generation(
        generation, requested, day=quota_day(now), quota=quota
    )
    if transaction_id is None:
        resets_at = quota_resets_at(now)
        raise QuotaExceeded(
            f"your API key's quota of {quota} generations a day is used up; "
            f"it resets at {resets_at.isoformat()}",
            (resets_at - now).total_seconds(),
            resets_at,
        )
    return generation, transaction_id


async def _resolved_inputs(
    request: ValidRequest,
    user_id: str,
    sources: dict[UUID, Generation],
    stored: StoredInputs | None,
) -> list[JsonObject]:
    """The canonical inputs; stored ones as presigned GETs that outlive the deadline (the
    dispatcher may submit late, after retries, but never past the deadline)."""
    upload_ids = [i.upload_id for i in request.inputs if i.upload_id is not None]
    if stored is None:
        return canonical_inputs(request.inputs, sources, upload_keys=None if upload_ids else {})
    upload_keys = await stored.upload_keys(user_id, upload_ids) if upload_ids else {}
    keys = stored_input_keys(request.inputs, sources, upload_keys)
    signed = await stored.sign(keys, valid_until=request.deadline_at) if keys else {}
    return canonical_inputs(request.inputs, sources, upload_keys=upload_keys, signed=signed)


def _draft_of(g: Generation) -> GenerationDraft:
    """The request a generation was created from, as its owner sent it."""
    inputs = [
        InputSpec(
            role=str(item["role"]),
            url=item.get("url"),
            generation_id=UUID(item["generation_id"]) if item.get("generation_id") else None,
            upload_id=UUID(item["upload_id"]) if item.get("upload_id") else None,
        )
        for item in g.inputs
    ]
    return GenerationDraft(
        operation_type=g.operation_type,
        provider_id=g.provider_id,
        params=g.params,
        inputs=inputs,
        priority=g.priority,
        name=g.name,
        metadata=g.metadata,
        prompt_version_id=g.prompt_version_id,
    )

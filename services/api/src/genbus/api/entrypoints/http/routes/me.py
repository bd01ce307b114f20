"""`GET /api/v1/me`: who the caller's key belongs to. Other services (the webhooks service)
authenticate their callers by asking this with the caller's own key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from genbus.api.domain.api_keys import display_prefix
from genbus.api.domain.limits import Limits
from genbus.api.entrypoints.http.auth import CurrentPrincipal, bearer
from genbus.api.entrypoints.http.deps import RuntimeDep
from genbus.api.entrypoints.http.problems import problem_responses
from genbus.api.service_layer import usage

router = APIRouter(
    prefix="/api/v1", tags=["identity"], responses=problem_responses(401, 422, 429, 503)
)


class LimitsOut(BaseModel):
    """Your key's effective limits (its tier's, with the key's overrides); null: unlimited."""

    max_in_flight: int | None = Field(description="your generations running at once")
    daily_quota: int | None = Field(description="generations you may create per UTC day")
    max_priority: int | None = Field(description="the highest `priority` you may ask for")
    providers: list[str] | None = Field(description="the providers you may use")
    operations: list[str] | None = Field(description="the operations you may use")
    models: list[str] | None = Field(description="the `params.model` values you may use")
    provider_options: list[str] | None = Field(
        description="the `params.provider_options` keys you may use"
    )

    @classmethod
    def of(cls, limits: Limits) -> LimitsOut:
        def names(value: frozenset[str] | None) -> list[str] | None:
            return None if value is None else sorted(value)

        return cls(
            max_in_flight=limits.max_in_flight,
            daily_quota=limits.daily_quota,
            max_priority=limits.max_priority,
            providers=names(limits.providers),
            operations=names(limits.operations),
            models=names(limits.models),
            provider_options=names(limits.provider_options),
        )


class TodayOut(BaseModel):
    created: int = Field(description="generations you created today (UTC), all keys")
    remaining: int | None = Field(description="left of your daily quota; null: no quota")
    resets_at: datetime = Field(description="when the day's quota starts afresh")


class Me(BaseModel):
    user_id: str
    key_id: UUID | None = Field(description="null for an anonymous call (local development)")
    key_prefix: str | None = Field(description="the key's first characters, as listed by keys list")
    admin: bool
    tier: str = Field(description="your key's tier")
    limits: LimitsOut
    today: TodayOut


@router.get("/me", operation_id="getMe")
async def me(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Me:
    """The caller: the user its API key belongs to, the key's tier and limits, and today's
    usage against its daily quota."""
    limits = runtime.policy(principal).limits
    now = runtime.clock()
    used = await usage.today(runtime.reader(), principal.user_id, limits, now)
    tier = principal.tier if principal.tier and runtime.tiers.knows(principal.tier) else None
    return Me(
        user_id=principal.user_id,
        key_id=principal.key_id,
        key_prefix=None if credentials is None else display_prefix(credentials.credentials),
        admin=principal.admin,
        tier=tier or runtime.tiers.default,
        limits=LimitsOut.of(limits),
        today=TodayOut(created=used.created, remaining=used.remaining, resets_at=used.resets_at),
    )

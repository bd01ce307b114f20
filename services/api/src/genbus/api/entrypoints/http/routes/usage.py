"""`/api/v1/usage` (the caller's own) and `/api/v1/admin/usage` (admin keys: every user's, by
user, account or provider): generations created over a time range and what they cost."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from genbus.api.domain.errors import AdminOnly
from genbus.api.domain.usage import UsageRow
from genbus.api.entrypoints.http.auth import CurrentPrincipal
from genbus.api.entrypoints.http.deps import KnownQueryOnly, RuntimeDep
from genbus.api.entrypoints.http.problems import problem_responses
from genbus.api.entrypoints.http.queries import Timestamp
from genbus.api.service_layer import usage as usage_service

router = APIRouter(
    prefix="/api/v1",
    tags=["usage"],
    responses=problem_responses(401, 422, 429, 503),
    dependencies=[KnownQueryOnly],
)

FromQuery = Annotated[
    Timestamp | None,
    Query(alias="from", description="created at or after this time (default: today 00:00 UTC)"),
]
ToQuery = Annotated[
    Timestamp | None, Query(alias="to", description="created before this time (default: now)")
]


class UsageGroup(BaseModel):
    key: str | None = Field(
        description="the user, account or provider id (account: null for generations never "
        "submitted); null in `total`"
    )
    generations: int = Field(description="generations created in the range")
    completed: int
    estimated_cost: float = Field(description="the sum of their estimated costs")
    actual_cost: float = Field(description="the sum of the costs providers reported")
    with_actual_cost: int = Field(description="how many have a reported cost")

    @classmethod
    def of(cls, row: UsageRow) -> UsageGroup:
        return cls(
            key=row.key,
            generations=row.generations,
            completed=row.completed,
            estimated_cost=row.estimated_cost,
            actual_cost=row.actual_cost,
            with_actual_cost=row.with_actual_cost,
        )


class Usage(BaseModel):
    """Generations created in [`from`, `to`) and their costs, per group, and in total (costs
    in each provider's unit: credits; Replicate: seconds of compute)."""

    from_: datetime = Field(alias="from")
    to: datetime
    group_by: Literal["user", "account", "provider"]
    groups: list[UsageGroup]
    total: UsageGroup


def _public(report: usage_service.UsageReport) -> Usage:
    return Usage.model_validate(
        {
            "from": report.start,
            "to": report.end,
            "group_by": report.group_by,
            "groups": [UsageGroup.of(r) for r in report.rows],
            "total": UsageGroup.of(report.total),
        }
    )


@router.get("/usage", operation_id="get_usage", response_model_by_alias=True)
async def get_usage(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> Usage:
    """Your generations created in [`from`, `to`) and their costs, per provider."""
    report = await usage_service.usage(
        runtime.uow(),
        start=from_,
        end=to,
        group_by="provider",
        now=runtime.clock(),
        user_id=principal.user_id,
    )
    return _public(report)


@router.get(
    "/admin/usage",
    operation_id="get_admin_usage",
    response_model_by_alias=True,
    responses=problem_responses(403, forbids={"admin_only": "this route needs an admin API key"}),
)
async def get_admin_usage(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    from_: FromQuery = None,
    to: ToQuery = None,
    by: Annotated[
        Literal["user", "account", "provider"], Query(description="how to group")
    ] = "user",
    user: Annotated[str | None, Query(max_length=128, description="only this user's")] = None,
) -> Usage:
    """Admin keys only: every user's generations created in [`from`, `to`) and their costs,
    per user, provider account or provider (403 `admin_only` for other keys)."""
    if not principal.admin:
        raise AdminOnly("this route needs an admin API key")
    report = await usage_service.usage(
        runtime.uow(), start=from_, end=to, group_by=by, now=runtime.clock(), user_id=user
    )
    return _public(report)

"""What a caller may still do today, and usage over a time range (the caller's, or everyone's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from genbus.api.adapters.usage import GroupBy
from genbus.api.domain.errors import InvalidRequest
from genbus.api.domain.limits import Limits, quota_day, quota_resets_at
from genbus.api.domain.usage import UsageRow, total
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.runtime.problems import FieldError

#: The longest range one usage query sums over.
MAX_RANGE = timedelta(days=366)


@dataclass(frozen=True)
class Today:
    """The caller's generations today (UTC) against its quota, and when the day ends."""

    created: int
    remaining: int | None
    resets_at: datetime


@dataclass(frozen=True)
class UsageReport:
    start: datetime
    end: datetime
    group_by: GroupBy
    rows: list[UsageRow]
    total: UsageRow


async def today(uow: UnitOfWork, user_id: str, limits: Limits, now: datetime) -> Today:
    async with uow:
        created = await uow.usage.created_on(user_id, quota_day(now))
    quota = limits.daily_quota
    remaining = None if quota is None else max(0, quota - created)
    return Today(created=created, remaining=remaining, resets_at=quota_resets_at(now))


async def usage(
    uow: UnitOfWork,
    *,
    start: datetime | None,
    end: datetime | None,
    group_by: GroupBy,
    now: datetime,
    user_id: str | None = None,
) -> UsageReport:
    """Generations created in [start, end) and their costs, per group (only `user_id`'s when
    given). Defaults: from the start of today (UTC) until now."""
    end = end or now
    start = start or quota_resets_at(now) - timedelta(days=1)
    if start >= end:
        raise InvalidRequest([FieldError("from", "out_of_range", "must be before `to`")])
    if end - start > MAX_RANGE:
        raise InvalidRequest(
            [FieldError("to", "out_of_range", f"the range is at most {MAX_RANGE.days} days")]
        )
    async with uow:
        rows = await uow.usage.summarise(start=start, end=end, group_by=group_by, user_id=user_id)
    return UsageReport(start=start, end=end, group_by=group_by, rows=rows, total=total(rows))

"""SQL for usage: the daily quota counter, and generations and costs summed over a time range."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

from genbus.api.adapters.tables import daily_usage, generations
from genbus.api.domain.usage import UsageRow

_d = daily_usage


def counting(user_id: Any, day: Any, *, quota: Any | None) -> ReturningInsert[int]:
    """Counts one more generation of `user_id` on `day` unless the count is at `quota` (> 0,
    or None: no quota), returning the new count (no row when refused). Each is a value or a
    bound parameter."""
    insert_row = insert(_d).values(user_id=user_id, day=day, generations=1)
    return insert_row.on_conflict_do_update(
        index_elements=[_d.c.user_id, _d.c.day],
        set_={"generations": _d.c.generations + 1},
        where=(_d.c.generations < quota) if quota is not None else None,
    ).returning(_d.c.generations)


_g = generations
GroupBy = Literal["user", "account", "provider"]
_GROUP_COLUMNS = {"user": _g.c.user_id, "account": _g.c.account_id, "provider": _g.c.provider_id}


class UsageRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def count_creation(self, user_id: str, day: date, *, quota: int | None) -> int | None:
        """Add one generation to the user's count for `day` unless that count is at `quota`
        (None: no quota). Returns the new count; None when refused. The row stays locked until
        the transaction ends, so concurrent creations of one user are counted one at a time."""
        if quota is not None and quota <= 0:
            return None
        statement = counting(user_id, day, quota=quota)
        count: int | None = (await self._conn.execute(statement)).scalar_one_or_none()
        return count

    async def purge(self, *, before: date, limit: int) -> int:
        """Delete at most `limit` daily counters of days before `before`; how many went."""
        batch = select(_d.c.user_id, _d.c.day).where(_d.c.day < before).limit(limit)
        result = await self._conn.execute(
            delete(_d).where(tuple_(_d.c.user_id, _d.c.day).in_(batch))
        )
        return result.rowcount or 0

    async def created_on(self, user_id: str, day: date) -> int:
        """How many generations the user created on `day` (UTC), by the quota's counter."""
        query = select(_d.c.generations).where(_d.c.user_id == user_id, _d.c.day == day)
        return (await self._conn.execute(query)).scalar_one_or_none() or 0

    async def summarise(
        self,
        *,
        start: datetime,
        end: datetime,
        group_by: GroupBy,
        user_id: str | None = None,
    ) -> list[UsageRow]:
        """Generations created in [start, end) (only `user_id`'s when given), per group."""
        key = _GROUP_COLUMNS[group_by]
        where: list[ColumnElement[bool]] = [_g.c.created_at >= start, _g.c.created_at < end]
        if user_id is not None:
            where.append(_g.c.user_id == user_id)
        query = (
            select(
                key.label("key"),
                func.count().label("generations"),
                func.count().filter(_g.c.status == "completed").label("completed"),
                func.coalesce(func.sum(_g.c.estimated_cost), 0).label("estimated_cost"),
                func.coalesce(func.sum(_g.c.actual_cost), 0).label("actual_cost"),
                func.count(_g.c.actual_cost).label("with_actual_cost"),
            )
            .where(*where)
            .group_by(key)
            .order_by(case((key.is_(None), 1), else_=0), key)
        )
        rows = (await self._conn.execute(query)).mappings().all()
        return [
            UsageRow(
                key=row["key"],
                generations=row["generations"],
                completed=row["completed"],
                estimated_cost=float(row["estimated_cost"]),
                actual_cost=float(row["actual_cost"]),
                with_actual_cost=row["with_actual_cost"],
            )
            for row in rows
        ]

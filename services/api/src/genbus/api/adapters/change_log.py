"""SQL for `generation_events`, the change log live-status streams read.

Rows are appended in the transaction that changed the generation, after the change itself
(so the generation's row lock already orders changes of one generation) and under a per-user
transaction lock: a user's rows therefore get ids in commit order, and a reader that has seen
id N can never later find a committed row of that user below N.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.tables import generation_events
from genbus.runtime.rows import dataclass_from_row

_t = generation_events
#: The event types of the log (also the SSE `event:` names).
CHANGED_EVENT = "generation"
DELETED_EVENT = "generation.deleted"
#: The first key of the two-key advisory locks that serialise one user's change-log writes.
_LOCK_CLASS = 0x6765_6E62  # "genb"


def user_lock(user_id: Any) -> ColumnElement[Any]:
    """Takes `user_id`'s change-log lock until the transaction ends (select it before
    appending that user's rows)."""
    return func.pg_advisory_xact_lock(_LOCK_CLASS, func.hashtext(user_id))


def change_values(change: NewChange) -> dict[str, Any]:
    """The columns of `change`'s row (its id is drawn from the table's sequence)."""
    return {
        "generation_id": change.generation_id,
        "user_id": change.user_id,
        "event_type": change.event_type,
        "status": change.status,
        "payload": change.payload,
        "created_at": change.at,
    }


@dataclass(frozen=True)
class ChangeRecord:
    """One row of the change log."""

    seq: int
    generation_id: UUID
    user_id: str
    event_type: str
    status: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class NewChange:
    """A row to append to the change log."""

    generation_id: UUID
    user_id: str
    event_type: str
    status: str
    payload: dict[str, Any]
    at: datetime


class ChangeLogRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._locked: set[str] = set()

    async def lock_users(self, user_ids: Iterable[str]) -> None:
        """Take the change-log lock of each user, in a fixed order (no deadlock between two
        transactions that write for several users)."""
        for user_id in sorted(set(user_ids) - self._locked):
            await self._conn.execute(select(user_lock(user_id)))
            self._locked.add(user_id)

    async def append(
        self,
        *,
        generation_id: UUID,
        user_id: str,
        event_type: str,
        status: str,
        payload: dict[str, Any],
        at: datetime,
    ) -> int:
        """Add a row; returns its id (the SSE event id)."""
        await self.lock_users([user_id])
        seq = await self._conn.scalar(
            _t.insert()
            .values(
                generation_id=generation_id,
                user_id=user_id,
                event_type=event_type,
                status=status,
                payload=payload,
                created_at=at,
            )
            .returning(_t.c.id)
        )
        assert seq is not None
        return int(seq)

    async def append_many(self, changes: Sequence[NewChange]) -> list[int]:
        """Add the rows in one statement; returns their ids in the order of `changes`."""
        if not changes:
            return []
        await self.lock_users(c.user_id for c in changes)
        # SQLAlchemy's "insertmanyvalues": one cached statement, sent as one multi-row INSERT,
        # its RETURNING rows in the order of the parameters.
        rows = await self._conn.execute(
            _t.insert().returning(_t.c.id, sort_by_parameter_order=True),
            [change_values(c) for c in changes],
        )
        return [int(row[0]) for row in rows]

    async def read_after(
        self,
        after: int,
        *,
        user_id: str,
        generation_id: UUID | None = None,
        limit: int = 100,
    ) -> list[ChangeRecord]:
        """`user_id`'s rows (of one generation, if given) with id > `after`, oldest first."""
        query = select(_t).where(_t.c.user_id == user_id, _t.c.id > after)
        if generation_id is not None:
            query = query.where(_t.c.generation_id == generation_id)
        rows = (await self._conn.execute(query.order_by(_t.c.id).limit(limit))).mappings()
        return [dataclass_from_row(ChangeRecord, row, seq=row["id"]) for row in rows]

    async def last_seq(self, user_id: str) -> int:
        """The id of `user_id`'s latest row, 0 if none."""
        seq = await self._conn.scalar(select(func.max(_t.c.id)).where(_t.c.user_id == user_id))
        return int(seq or 0)

    async def was_deleted(self, generation_id: UUID) -> bool:
        """Whether the log (within its retention) says this generation was deleted."""
        query = select(_t.c.id).where(
            _t.c.generation_id == generation_id, _t.c.event_type == DELETED_EVENT
        )
        return (await self._conn.scalar(query.limit(1))) is not None

    async def forget_generation(self, generation_id: UUID) -> None:
        """Drop every row of a generation (it is being deleted: so is its history)."""
        await self._conn.execute(delete(_t).where(_t.c.generation_id == generation_id))

    async def purge(self, *, before: datetime, limit: int) -> int:
        """Delete at most `limit` rows created before `before`; how many went."""
        batch = select(_t.c.id).where(_t.c.created_at < before).limit(limit)
        result = await self._conn.execute(delete(_t).where(_t.c.id.in_(batch)))
        return result.rowcount or 0

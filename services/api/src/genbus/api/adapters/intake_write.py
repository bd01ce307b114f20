"""A new generation's writes as one statement: one round trip instead of five.

The statement counts the creation against the user's daily quota, inserts the generation,
stages its `GenerationRequested` in the outbox and appends its first change-log row under the
user's change-log lock: data-modifying CTEs, each insert selecting from the quota's count, so a
refused count writes nothing at all. The lock is taken after the generation's insert and
before the change-log row draws its id (the row selects from the lock), as when the steps were
separate statements (see `change_log` for why the lock orders ids by commit).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Date, Integer, Select, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.change_log import NewChange, change_values, user_lock
from genbus.api.adapters.repository import generation_row, writing_transaction_id
from genbus.api.adapters.tables import generation_events, generations
from genbus.api.adapters.usage import counting
from genbus.api.domain.model import Generation
from genbus.runtime.outbox import (
    StagedRow,
    outbox_params,
    outbox_values,
    staged_row,
    staging_after,
)
from genbus.runtime.publisher import OutgoingMessage
from genbus.runtime.rows import insert_selecting, prefixed


@dataclass(frozen=True)
class IntakeWritten:
    """What the statement wrote."""

    #: The writing transaction (see `GenerationRepository.add`).
    transaction_id: int
    staged: StagedRow
    #: The change-log row's id.
    change_seq: int


async def write_new_generation(
    conn: AsyncConnection,
    outbox: Table,
    generation: Generation,
    requested: OutgoingMessage,
    change: NewChange,
    *,
    day: date,
    quota: int | None,
) -> IntakeWritten | None:
    """Write it all in the caller's transaction (or as a statement of its own); None, with
    nothing written, when the user's quota for `day` is used up."""
    if quota is not None and quota <= 0:
        return None
    message = outbox_values(requested)
    params = {
        **prefixed(_GENERATION, generation_row(generation)),
        **outbox_params(message),
        **prefixed(_CHANGE, change_values(change)),
        "user_id": change.user_id,
        "day": day,
        "quota": quota,
    }
    row = (await conn.execute(_statement(outbox, quota is not None), params)).one()
    if row.count is None:
        return None
    return IntakeWritten(
        transaction_id=int(row.transaction_id),
        staged=staged_row(int(row.outbox_id), message),
        change_seq=int(row.change_seq),
    )


_GENERATION, _CHANGE = "generation_", "change_"


@functools.cache
def _statement(outbox: Table, with_quota: bool) -> Select[Any]:
    """Built once per shape, with a parameter per value: executing it again needs neither a
    new statement nor its cache key (both cost more than the execution itself)."""
    user_id = bindparam("user_id", type_=generation_events.c.user_id.type)
    quota = bindparam("quota", type_=Integer) if with_quota else None
    counted = counting(user_id, bindparam("day", type_=Date), quota=quota).cte("counted")
    inserted = (
        insert_selecting(generations, counted, _GENERATION)
        .returning(writing_transaction_id().label("xid"))
        .cte("inserted")
    )
    staged = staging_after(outbox, counted)
    locked = select(user_lock(user_id).label("locked")).select_from(inserted).cte("locked")
    logged = (
        insert_selecting(generation_events, locked, _CHANGE, _CHANGE_COLUMNS)
        .returning(generation_events.c.id)
        .cte("logged")
    )
    return select(
        select(counted.c.generations).scalar_subquery().label("count"),
        select(inserted.c.xid).scalar_subquery().label("transaction_id"),
        select(staged.c.id).scalar_subquery().label("outbox_id"),
        select(logged.c.id).scalar_subquery().label("change_seq"),
    )


#: The columns `change_values` fills (a generation's are all of its table's).
_CHANGE_COLUMNS = ("generation_id", "user_id", "event_type", "status", "payload", "created_at")

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

from sqlalchemy import CTE, Date, Integer, Select, Table, bindparam, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.change_log import NewChange, change_values, user_lock
from genbus.api.adapters.repository import generation_row, writing_transaction_id
from genbus.api.adapters.tables import generation_events, generations
from genbus.api.adapters.usage import counting
from genbus.api.domain.model import Generation
from genbus.runtime.outbox import StagedRow, outbox_values, staged_row
from genbus.runtime.publisher import OutgoingMessage


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
        **_prefixed(_GENERATION, generation_row(generation)),
        **_prefixed(_OUTBOX, message),
        **_prefixed(_CHANGE, change_values(change)),
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


_GENERATION, _OUTBOX, _CHANGE = "g_", "o_", "c_"


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {prefix + name: value for name, value in values.items()}


@functools.cache
def _statement(outbox: Table, with_quota: bool) -> Select[Any]:
    """Built once per shape, with a parameter per value: executing it again needs neither a
    new statement nor its cache key (both cost more than the execution itself)."""
    user_id = bindparam("user_id", type_=generation_events.c.user_id.type)
    quota = bindparam("quota", type_=Integer) if with_quota else None
    counted = counting(user_id, bindparam("day", type_=Date), quota=quota).cte("counted")
    inserted = (
        _insert_from(generations, _GENERATION, counted)
        .returning(writing_transaction_id().label("xid"))
        .cte("inserted")
    )
    staged = (
        _insert_from(outbox, _OUTBOX, counted, names=_OUTBOX_COLUMNS)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(outbox.c.id)
        .cte("staged")
    )
    locked = select(user_lock(user_id).label("locked")).select_from(inserted).cte("locked")
    logged = (
        _insert_from(generation_events, _CHANGE, locked, names=_CHANGE_COLUMNS)
        .returning(generation_events.c.id)
        .cte("logged")
    )
    return select(
        select(counted.c.generations).scalar_subquery().label("count"),
        select(inserted.c.xid).scalar_subquery().label("transaction_id"),
        select(staged.c.id).scalar_subquery().label("outbox_id"),
        select(logged.c.id).scalar_subquery().label("change_seq"),
    )


#: The columns each insert writes (those of `outbox_values`, `change_values`; a generation's
#: are all of its table's).
_OUTBOX_COLUMNS = ("event_id", "subject", "payload", "headers")
_CHANGE_COLUMNS = ("generation_id", "user_id", "event_type", "status", "payload", "created_at")


def _insert_from(
    table: Table, prefix: str, source: CTE, *, names: tuple[str, ...] | None = None
) -> Insert:
    """INSERT of one row, its values the parameters `prefix` + column name, for each row of
    `source` (one, or none)."""
    columns = names or tuple(c.name for c in table.columns)
    row = select(*(bindparam(prefix + n, type_=table.c[n].type).label(n) for n in columns))
    return insert(table).from_select(list(columns), row.select_from(source))

"""A new generation's writes as one statement: one round trip instead of five.

The statement counts the creation against the user's daily quota, inserts the generation,
stages its `GenerationRequested` in the outbox and appends its first change-log row under the
user's change-log lock: data-modifying CTEs, each insert selecting from the quota's count, so a
refused count writes nothing at all. The lock is taken after the generation's insert and
before the change-log row draws its id (the row selects from the lock), as when the steps were
separate statements (see `change_log` for why the lock orders ids by commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import CTE, Select, Table, literal, select
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
    statement = _statement(outbox, generation_row(generation), message, change, day, quota)
    row = (await conn.execute(statement)).one()
    if row.count is None:
        return None
    return IntakeWritten(
        transaction_id=int(row.transaction_id),
        staged=staged_row(int(row.outbox_id), message),
        change_seq=int(row.change_seq),
    )


def _statement(
    outbox: Table,
    generation: dict[str, Any],
    message: dict[str, Any],
    change: NewChange,
    day: date,
    quota: int | None,
) -> Select[Any]:
    counted = counting(change.user_id, day, quota=quota).cte("counted")
    inserted = (
        _insert_from(generations, generation, counted)
        .returning(writing_transaction_id().label("xid"))
        .cte("inserted")
    )
    staged = (
        _insert_from(outbox, message, counted)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(outbox.c.id)
        .cte("staged")
    )
    locked = select(user_lock(change.user_id).label("locked")).select_from(inserted).cte("locked")
    logged = (
        _insert_from(generation_events, change_values(change), locked)
        .returning(generation_events.c.id)
        .cte("logged")
    )
    return select(
        select(counted.c.generations).scalar_subquery().label("count"),
        select(inserted.c.xid).scalar_subquery().label("transaction_id"),
        select(staged.c.id).scalar_subquery().label("outbox_id"),
        select(logged.c.id).scalar_subquery().label("change_seq"),
    )


def _insert_from(table: Table, values: dict[str, Any], source: CTE) -> Insert:
    """INSERT of one row of `values` for each row of `source` (one, or none)."""
    names = list(values)
    row = select(*(literal(values[n], table.c[n].type).label(n) for n in names))
    return insert(table).from_select(names, row.select_from(source))

"""SQL for admission control: how many generations wait to be submitted, and how many outbox
rows wait to be published. Read in the background, never per request, in one REPEATABLE READ
transaction whose snapshot comes with the counts: a replica tells from it exactly which of its
own creations the counts include."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, Text, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.tables import generations, outbox
from genbus.api.domain.status import GenerationStatus

_g = generations


@dataclass(frozen=True)
class Snapshot:
    """A Postgres snapshot (`pg_current_snapshot()`): which transactions' writes it sees."""

    xmin: int
    xmax: int
    in_progress: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """From its text form, `xmin:xmax:xip,xip,...`."""
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def sees(self, transaction_id: int) -> bool:
        """Whether a committed transaction's writes are visible in this snapshot."""
        if transaction_id < self.xmin:
            return True
        return transaction_id < self.xmax and transaction_id not in self.in_progress


@dataclass(frozen=True)
class Backlog:
    #: Generations pending and due (accepted, not yet submitted, not scheduled for later).
    pending: int
    #: Outbox rows not yet published.
    outbox: int
    #: The snapshot the counts were taken in.
    snapshot: Snapshot
    #: `pending` per user (only when asked for: it costs a full count).
    pending_by_user: dict[str, int] = field(default_factory=dict)


async def read_backlog(
    conn: AsyncConnection, *, pending_cap: int | None, outbox_cap: int | None, by_user: bool
) -> Backlog:
    """Count the backlog; a count with a cap stops at it (its cost is bounded by the cap).

    `conn` must be in a REPEATABLE READ transaction (one snapshot for every count). The pending
    rows are found through the partial index of non-terminal generations.
    """
    # The first statement fixes the transaction's snapshot; the counts below share it.
    snapshot = Snapshot.parse(str(await conn.scalar(select(func.pg_current_snapshot().cast(Text)))))
    due = (
        _g.c.status == str(GenerationStatus.PENDING),
        or_(_g.c.scheduled_at.is_(None), _g.c.scheduled_at <= func.now()),
    )
    by_user_counts: dict[str, int] = {}
    if by_user:
        rows = await conn.execute(
            select(_g.c.user_id, func.count()).where(*due).group_by(_g.c.user_id)
        )
        by_user_counts = {row[0]: int(row[1]) for row in rows}
        pending = sum(by_user_counts.values())
    else:
        pending = await _count(conn, select(_g.c.id).where(*due), pending_cap)
    backlog = await _count(
        conn, select(outbox.c.id).where(outbox.c.published_at.is_(None)), outbox_cap
    )
    return Backlog(
        pending=pending, outbox=backlog, pending_by_user=by_user_counts, snapshot=snapshot
    )


async def _count(conn: AsyncConnection, rows: Select[Any], cap: int | None) -> int:
    if cap is not None:
        rows = rows.limit(cap)
    return int(await conn.scalar(select(func.count()).select_from(rows.subquery())) or 0)

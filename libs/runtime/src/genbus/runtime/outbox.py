"""Transactional outbox: an event is written in the same transaction as the state it announces,
then a relay publishes it to JetStream with `Nats-Msg-Id` = event id and marks it published.

The writer hands the rows it committed to its process's relay (`hand_over`), which publishes
them at once from memory and then marks them, in one statement without a transaction of its
own: no read of the outbox stands between a commit and its events. A sweep is the safety net
for rows nobody handed over (the writer crashed after its commit, the publish failed, a process
without a relay wrote them): it claims unpublished rows older than a grace period with SKIP
LOCKED, so any number of relays (one per replica) may run, and rows another replica is
publishing from memory are left to it. A row published twice (a crash, a sweep overtaking a
slow publish) is de-duplicated by JetStream and by idempotent consumers.
A row keeps the trace context of the transaction that wrote it (`traceparent` in its headers),
so the event continues that trace however late it is relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS
from genbus.runtime.publisher import MSG_ID_HEADER, EventPublisher, OutgoingMessage
from genbus.runtime.rows import insert_selecting, prefixed
from genbus.runtime.tracing import with_trace_headers

log = get_logger(__name__)


def outbox_table(metadata: MetaData, schema: str) -> Table:
    """The outbox table of one service, in that service's schema."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
        ),
        schema=schema,
    )


@dataclass(frozen=True)
class StagedRow:
    """An outbox row written in a transaction: what its relay publishes once it commits."""

    id: int
    message: OutgoingMessage


async def add_to_outbox(
    conn: AsyncConnection, table: Table, message: OutgoingMessage
) -> StagedRow | None:
    """Stage `message` in the caller's transaction. A replay of the same event id is a no-op
    (None: the row written earlier is published, or will be, by whoever wrote it)."""
    from sqlalchemy.dialects.postgresql import insert

    values = outbox_values(message)
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(table.c.id)
    )
    row_id = (await conn.execute(stmt)).scalar_one_or_none()
    return None if row_id is None else staged_row(int(row_id), values)


def staging_after(table: Table, source: CTE) -> CTE:
    """A step of a larger statement: stage one outbox row for each row of `source` (the change
    the event announces: one row, or none when it was not made), its values the parameters of
    `outbox_params`; returns the row's `id` (none for an event id staged already)."""
    return (
        insert_selecting(table, source, _PARAMS_PREFIX, OUTBOX_COLUMNS)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(table.c.id)
        .cte("staged")
    )


def outbox_params(values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a `staging_after` step, from `outbox_values`."""
    return prefixed(_PARAMS_PREFIX, values)


_PARAMS_PREFIX = "outbox_"
#: The columns `outbox_values` fills (the others have defaults).
OUTBOX_COLUMNS = ("event_id", "subject", "payload", "headers")


def outbox_values(message: OutgoingMessage) -> dict[str, Any]:
    """The columns of `message`'s outbox row (its headers carry the current trace context)."""
    return {
        "event_id": message.headers[MSG_ID_HEADER],
        "subject": message.subject,
        "payload": message.payload,
        "headers": with_trace_headers(message.headers),
    }


def staged_row(row_id: int, values: dict[str, Any]) -> StagedRow:
    """The row written with `values` (from `outbox_values`), for its relay."""
    return StagedRow(
        row_id, OutgoingMessage(values["subject"], values["payload"], values["headers"])
    )


class OutboxRelay:
    """Publishes committed outbox rows handed over by writers at once; sweeps for the rest."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        publisher: EventPublisher,
        *,
        batch_size: int = 200,
        poll_interval_s: float = 0.5,
        sweep_grace: timedelta = timedelta(seconds=2),
        max_handed_over: int = 10_000,
        retention: timedelta = timedelta(days=2),
        backlog_interval_s: float = 5.0,
    ) -> None:
        self._engine = engine
        self._table = table
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        #: The sweep leaves younger rows to the relay their writer handed them to.
        self._sweep_grace = sweep_grace
        self._max_handed_over = max_handed_over
        self._retention = retention
        self._backlog_interval_s = backlog_interval_s
        self._handed_over: list[StagedRow] = []
        self._wake = asyncio.Event()
        self._stopping = False

    def hand_over(self, rows: Sequence[StagedRow]) -> None:
        """Rows just committed: publish them now. Call on the relay's own event loop. Past
        `max_handed_over` waiting (publishing is failing) they are left to the sweep."""
        if self._stopping:
            return
        room = self._max_handed_over - len(self._handed_over)
        self._handed_over.extend(rows[: max(room, 0)])
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Relay until `stop()`; errors are logged and retried, never fatal."""
        last_purge = datetime.now(UTC)
        last_backlog = 0.0
        loop = asyncio.get_running_loop()
        last_sweep = 0.0
        while not self._stopping:
            self._wake.clear()
            try:
                published = await self.publish_handed_over()
                if loop.time() - last_sweep >= self._poll_interval_s or not published:
                    last_sweep = loop.time()
                    published += await self.relay_once(older_than=self._sweep_grace)
            except Exception as exc:
                log.warning("outbox relay failed, retrying", error=repr(exc))
                published = 0
                await asyncio.sleep(self._poll_interval_s)
            if loop.time() - last_backlog >= self._backlog_interval_s:
                # Measured here, not only on scrape: a backlog grows exactly while publishing
                # fails, and this loop keeps running then.
                with contextlib.suppress(Exception):
                    await self.refresh_backlog()
                last_backlog = loop.time()
            if published >= self._batch_size or self._handed_over:
                continue
            if datetime.now(UTC) - last_purge > timedelta(minutes=10):
                with contextlib.suppress(Exception):
                    await self.purge_published()
                last_purge = datetime.now(UTC)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def publish_handed_over(self) -> int:
        """Publish the rows handed over so far (up to a batch) and mark them; returns how many
        were published. Rows whose publish fails are left to the sweep."""
        rows, self._handed_over = (
            self._handed_over[: self._batch_size],
            self._handed_over[self._batch_size :],
        )
        if not rows:
            return 0
        published, failed = await self._publish([(r.id, r.message) for r in rows])
        if published:
            async with self._engine.connect() as conn:
                # One statement, no transaction around it: it commits on its own.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await self._mark_published(conn, published)
        self._count(published, failed)
        return len(published)

    async def flush(self) -> int:
        """Publish everything handed over, then every unpublished row (at shutdown)."""
        published = 0
        while self._handed_over:
            published += await self.publish_handed_over()
        return published + await self.relay_once()

    async def relay_once(self, *, older_than: timedelta = timedelta(0)) -> int:
        """The sweep: publish one batch of unpublished rows written more than `older_than`
        ago; returns how many were published."""
        t = self._table
        async with self._engine.begin() as conn:
            query = select(t.c.id, t.c.subject, t.c.payload, t.c.headers).where(
                t.c.published_at.is_(None)
            )
            if older_than > timedelta(0):
                query = query.where(t.c.created_at < func.now() - older_than)
            rows = (
                await conn.execute(
                    query.order_by(t.c.id).limit(self._batch_size).with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            published, failed = await self._publish(
                [(r.id, OutgoingMessage(r.subject, r.payload, dict(r.headers))) for r in rows]
            )
            if published:
                await self._mark_published(conn, published)
        self._count(published, failed)
        return len(published)

    async def _publish(
        self, rows: Sequence[tuple[int, OutgoingMessage]]
    ) -> tuple[list[int], list[BaseException]]:
        """Every row's publish in flight at once, their acks awaited together: the ids of the
        rows acked, and the errors of the others."""
        outcomes = await asyncio.gather(
            *(self._publisher.send(message) for _, message in rows), return_exceptions=True
        )
        published = [
            row_id for (row_id, _), outcome in zip(rows, outcomes, strict=True) if outcome is None
        ]
        return published, [o for o in outcomes if isinstance(o, BaseException)]

    async def _mark_published(self, conn: AsyncConnection, ids: list[int]) -> None:
        # One array parameter: one cached statement whatever the batch's size.
        t = self._table
        await conn.execute(
            update(t)
            .where(t.c.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger))))
            .values(published_at=func.now())
        )

    def _count(self, published: list[int], failed: list[BaseException]) -> None:
        if published:
            METRICS.outbox_published.labels(self._publisher.service).inc(len(published))
        if failed:
            # The rows that were not acked stay unpublished: a sweep sends them again (the
            # same `Nats-Msg-Id`, so one that was stored after all is not stored twice).
            raise failed[0]

    async def pending(self) -> int:
        t = self._table
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(t).where(t.c.published_at.is_(None))
            )
        return int(count or 0)

    async def refresh_backlog(self) -> int:
        """Count unpublished rows into the `genbus_outbox_backlog` gauge; returns the count."""
        backlog = await self.pending()
        METRICS.outbox_backlog.labels(self._publisher.service).set(backlog)
        return backlog

    async def purge_published(self) -> None:
        t = self._table
        cutoff = datetime.now(UTC) - self._retention
        async with self._engine.begin() as conn:
            await conn.execute(
                t.delete().where(t.c.published_at.is_not(None), t.c.published_at < cutoff)
            )

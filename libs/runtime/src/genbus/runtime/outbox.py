"""Transactional outbox: an event is written in the same transaction as the state it announces,
then a relay publishes it to JetStream with `Nats-Msg-Id` = event id and marks it published.

Any number of relays (one per replica) may run: rows are claimed with SKIP LOCKED, and a row
published twice after a crash is de-duplicated by JetStream and by idempotent consumers.
A row keeps the trace context of the transaction that wrote it (`traceparent` in its headers),
so the event continues that trace however late it is relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
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


async def add_to_outbox(conn: AsyncConnection, table: Table, message: OutgoingMessage) -> None:
    """Stage `message` in the caller's transaction. A replay of the same event id is a no-op."""
    from sqlalchemy.dialects.postgresql import insert

    stmt = (
        insert(table)
        .values(
            event_id=message.headers[MSG_ID_HEADER],
            subject=message.subject,
            payload=message.payload,
            headers=with_trace_headers(message.headers),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    await conn.execute(stmt)


class OutboxRelay:
    """Publishes unpublished outbox rows; woken at once by writers, and polls as a safety net."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        publisher: EventPublisher,
        *,
        batch_size: int = 200,
        poll_interval_s: float = 0.5,
        retention: timedelta = timedelta(days=2),
        backlog_interval_s: float = 5.0,
    ) -> None:
        self._engine = engine
        self._table = table
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retention = retention
        self._backlog_interval_s = backlog_interval_s
        self._wake = asyncio.Event()
        self._stopping = False

    def notify(self) -> None:
        """Tell the relay a row was just committed, so it publishes without waiting for a poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Relay until `stop()`; errors are logged and retried, never fatal."""
        last_purge = datetime.now(UTC)
        last_backlog = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            try:
                published = await self.relay_once()
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
            if published >= self._batch_size:
                continue
            if datetime.now(UTC) - last_purge > timedelta(minutes=10):
                with contextlib.suppress(Exception):
                    await self.purge_published()
                last_purge = datetime.now(UTC)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def relay_once(self) -> int:
        """Publish one batch of unpublished rows; returns how many were published."""
        t = self._table
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(t.c.id, t.c.subject, t.c.payload, t.c.headers)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            # Every row's publish is in flight at once; their acks are awaited together.
            outcomes = await asyncio.gather(
                *(
                    self._publisher.send(OutgoingMessage(r.subject, r.payload, dict(r.headers)))
                    for r in rows
                ),
                return_exceptions=True,
            )
            published = [r.id for r, outcome in zip(rows, outcomes, strict=True) if outcome is None]
            if published:
                # One array parameter: one cached statement whatever the batch's size.
                ids = bindparam("ids", published, type_=ARRAY(BigInteger))
                await conn.execute(
                    update(t).where(t.c.id == any_(ids)).values(published_at=func.now())
                )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if published:
            METRICS.outbox_published.labels(self._publisher.service).inc(len(published))
        if failed:
            # The rows that were not acked stay unpublished: the next round sends them again
            # (the same `Nats-Msg-Id`, so one that was stored after all is not stored twice).
            raise failed[0]
        return len(published)

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

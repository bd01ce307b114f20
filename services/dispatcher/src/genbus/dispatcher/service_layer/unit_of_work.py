"""A transaction that stages outgoing events in the outbox and wakes the relay after commit."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genbus.contracts import Event, EventBinding
from genbus.dispatcher.adapters.tables import OUTBOX
from genbus.runtime.outbox import OutboxRelay, add_to_outbox
from genbus.runtime.publisher import EventPublisher


class UnitOfWork:
    """`async with uow as conn:` commits on success, rolls back on error, then wakes the relay."""

    def __init__(self, engine: AsyncEngine, publisher: EventPublisher, relay: OutboxRelay) -> None:
        self._engine = engine
        self._publisher = publisher
        self._relay = relay
        self._conn: AsyncConnection | None = None
        self._staged = 0

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        self._staged = 0
        return self

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "use inside `async with`"
        return self._conn

    async def stage(self, binding: EventBinding[Event], event: Event) -> None:
        """Write `event` to the outbox in this transaction."""
        await add_to_outbox(self.conn, OUTBOX, self._publisher.encode(binding, event))
        self._staged += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if exc_type is None:
                await self._conn.commit()
            else:
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None
        if exc_type is None and self._staged:
            self._relay.notify()

"""One transaction: the repositories it reaches, the events it stages, and its commit.

`async with uow:` rolls back unless `await uow.commit()` was called inside it. Events staged
with `stage` go to the outbox in the same transaction; they are handed to the relay after the
commit.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genbus.contracts import Event, EventBinding
from genbus.dispatcher.adapters.accounts_store import AccountRepository
from genbus.dispatcher.adapters.audit_store import AuditRepository
from genbus.dispatcher.adapters.repository import JobRepository
from genbus.dispatcher.adapters.tables import OUTBOX
from genbus.runtime.outbox import OutboxRelay, StagedRow, add_to_outbox
from genbus.runtime.publisher import EventPublisher


class AbstractUnitOfWork(abc.ABC):
    """What the service layer sees of a transaction."""

    jobs: JobRepository
    accounts: AccountRepository
    audit: AuditRepository

    async def __aenter__(self) -> Self:
        await self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._end()

    @abc.abstractmethod
    async def _begin(self) -> None: ...

    @abc.abstractmethod
    async def _end(self) -> None:
        """Roll back whatever was not committed and release the connection."""

    @abc.abstractmethod
    async def stage(self, binding: EventBinding[Event], event: Event) -> None:
        """Publish `event` once this transaction commits (the outbox)."""

    @abc.abstractmethod
    async def commit(self) -> None: ...


class SqlUnitOfWork(AbstractUnitOfWork):
    """A Postgres transaction on one pooled connection."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: EventPublisher | None = None,
        relay: OutboxRelay | None = None,
    ) -> None:
        """Without a publisher and relay (operators' tools) it cannot stage events."""
        self._engine = engine
        self._publisher = publisher
        self._relay = relay
        self._conn: AsyncConnection | None = None
        self._staged: list[StagedRow] = []
        self._committed = False

    async def _begin(self) -> None:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        self._staged = []
        self._committed = False
        self.jobs = JobRepository(self._conn)
        self.accounts = AccountRepository(self._conn)
        self.audit = AuditRepository(self._conn)

    async def _end(self) -> None:
        assert self._conn is not None
        try:
            if not self._committed:
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None
        if self._committed and self._staged and self._relay is not None:
            self._relay.hand_over(self._staged)

    async def stage(self, binding: EventBinding[Event], event: Event) -> None:
        assert self._conn is not None, "use inside `async with`"
        assert self._publisher is not None, "this unit of work cannot publish"
        row = await add_to_outbox(self._conn, OUTBOX, self._publisher.encode(binding, event))
        if row is not None:
            self._staged.append(row)

    async def commit(self) -> None:
        assert self._conn is not None, "use inside `async with`"
        await self._conn.commit()
        self._committed = True


#: A new unit of work per call: what the service layer is given instead of an engine.
UowFactory = Callable[[], AbstractUnitOfWork]

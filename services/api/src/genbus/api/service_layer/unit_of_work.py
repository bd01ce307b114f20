"""The unit of work: one transaction, rolled back unless `commit()` is called.

Events are staged in the outbox inside that same transaction, so a generation and the events
announcing it are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from genbus.api.adapters.repository import GenerationRepository
from genbus.contracts import Event, EventBinding, ServiceTopology
from genbus.runtime.outbox import add_to_outbox
from genbus.runtime.publisher import encode_event


class UnitOfWork(Protocol):
    generations: GenerationRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def publish(self, binding: EventBinding[Event], event: Event) -> None:
        """Stage `event` in this transaction's outbox; it is sent only if the commit succeeds."""
        ...


class SqlUnitOfWork:
    """A `UnitOfWork` on one Postgres connection. Use each instance for one `async with`."""

    generations: GenerationRepository

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        topology: ServiceTopology,
        on_events_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._publishes = {b.name for b in topology.publishes}
        self._service = topology.name
        self._on_events_committed = on_events_committed
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._staged = 0

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("a unit of work is used for one transaction only")
        self._conn = await self._engine.connect()
        self._tx = await self._conn.begin()
        self.generations = GenerationRepository(self._conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        assert self._tx is not None
        try:
            if self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._conn.close()

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()
        if self._staged:
            self._on_events_committed()

    async def publish(self, binding: EventBinding[Event], event: Event) -> None:
        assert self._conn is not None
        if binding.name not in self._publishes:
            raise PermissionError(f"{self._service} does not publish {binding.subject_prefix}")
        await add_to_outbox(self._conn, self._outbox, encode_event(binding, event))
        self._staged += 1

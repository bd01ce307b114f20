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

from genbus.contracts import SUBMITTED, Event, EventBinding, GenerationSubmitted
from genbus.dispatcher.adapters.accounts_store import AccountRepository
from genbus.dispatcher.adapters.audit_store import AuditRepository
from genbus.dispatcher.adapters.repository import JobRepository
from genbus.dispatcher.adapters.tables import OUTBOX
from genbus.dispatcher.domain.model import ClaimedJob
from genbus.runtime.outbox import (
    OutboxRelay,
    StagedRow,
    add_to_outbox,
    outbox_values,
    staged_row,
)
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

    async def mark_submitted(
        self, claim: ClaimedJob, provider_job_id: str, announce: GenerationSubmitted
    ) -> bool:
        """claimed → submitted, with `announce` staged; whether a cancel was requested
        meanwhile (`LeaseLost` when the claim is no longer held)."""
        cancel_requested = await self.jobs.mark_submitted(claim, provider_job_id)
        await self.stage(SUBMITTED, announce)
        return cancel_requested

    @abc.abstractmethod
    async def commit(self) -> None: ...


class SqlUnitOfWork(AbstractUnitOfWork):
    """A Postgres transaction on one pooled connection."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: EventPublisher | None = None,
        relay: OutboxRelay | None = None,
        *,
        single_statement: bool = False,
    ) -> None:
        """Without a publisher and relay (operators' tools) it cannot stage events.

        `single_statement`: no transaction around its statements, each commits on its own
        (sparing BEGIN and COMMIT): for work of one write, such as `mark_submitted`."""
        self._engine = engine
        self._publisher = publisher
        self._relay = relay
        self._single_statement = single_statement
        self._conn: AsyncConnection | None = None
        self._staged: list[StagedRow] = []
        self._committed = False

    async def _begin(self) -> None:
        self._conn = await self._engine.connect()
        if self._single_statement:
            await self._conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            await self._conn.begin()
        self._staged = []
        self._committed = False
        self.jobs = JobRepository(self._conn)
        self.accounts = AccountRepository(self._conn)
        self.audit = AuditRepository(self._conn)

    async def _end(self) -> None:
        assert self._conn is not None
        try:
            if not self._committed and not self._single_statement:
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None
        if self._committed and self._staged and self._relay is not None:
            self._relay.hand_over(self._staged)

    async def stage(self, binding: EventBinding[Event], event: Event) -> None:
        assert self._conn is not None, "use inside `async with`"
        assert self._publisher is not None, "this unit of work cannot publish"
        if self._single_statement:
            raise RuntimeError("an event staged on its own would be published without its change")
        row = await add_to_outbox(self._conn, OUTBOX, self._publisher.encode(binding, event))
        if row is not None:
            self._staged.append(row)

    async def mark_submitted(
        self, claim: ClaimedJob, provider_job_id: str, announce: GenerationSubmitted
    ) -> bool:
        # One statement for the job's row and its event's outbox row.
        assert self._conn is not None, "use inside `async with`"
        assert self._publisher is not None, "this unit of work cannot publish"
        values = outbox_values(self._publisher.encode(SUBMITTED, announce))
        cancel_requested, row_id = await self.jobs.mark_submitted_staging(
            claim, provider_job_id, values
        )
        if row_id is not None:
            self._staged.append(staged_row(row_id, values))
        return cancel_requested

    async def commit(self) -> None:
        assert self._conn is not None, "use inside `async with`"
        if not self._single_statement:
            await self._conn.commit()
        self._committed = True


#: A new unit of work per call: what the service layer is given instead of an engine.
UowFactory = Callable[[], AbstractUnitOfWork]

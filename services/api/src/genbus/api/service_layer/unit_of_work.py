"""The unit of work: one transaction, rolled back unless `commit()` is called.

Events are staged in the outbox inside that same transaction, so a generation and the events
announcing it are committed together or not at all. So is every change of a generation and its
row in the change log (`generation_events`); once committed, `after_commit` is told about those
rows so that live-status streams on every replica wake up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from genbus.api.adapters.api_keys import ApiKeyRepository
from genbus.api.adapters.change_log import (
    CHANGED_EVENT,
    DELETED_EVENT,
    ChangeLogRepository,
    NewChange,
)
from genbus.api.adapters.idempotency import IdempotencyRepository
from genbus.api.adapters.intake_write import write_new_generation
from genbus.api.adapters.repository import GenerationRepository, generation_snapshot
from genbus.api.adapters.usage import UsageRepository
from genbus.api.domain.model import Generation
from genbus.api.service_layer.metrics import record_generation_status
from genbus.contracts import (
    REQUESTED,
    Event,
    EventBinding,
    GenerationChanged,
    GenerationRequested,
    ServiceTopology,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.outbox import StagedRow, add_to_outbox
from genbus.runtime.publisher import OutgoingMessage, encode_event

log = get_logger(__name__)


ChangesCommitted = Callable[[Sequence[GenerationChanged]], Awaitable[None]]


async def _nobody(_: Sequence[GenerationChanged]) -> None:
    return None


class UnitOfWork(Protocol):
    generations: GenerationRepository
    change_log: ChangeLogRepository
    idempotency: IdempotencyRepository
    api_keys: ApiKeyRepository
    usage: UsageRepository

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

    async def record_changes(self, changed: Sequence[Generation]) -> None:
        """Log each generation's new state in this transaction (call after changing them)."""
        ...

    async def add_generation(
        self,
        generation: Generation,
        requested: GenerationRequested,
        *,
        day: date,
        quota: int | None,
    ) -> int | None:
        """Add a new generation with its `requested` event and its first change-log row,
        counted against its user's `quota` for `day` (None: no quota); returns the writing
        transaction's id, or None (nothing written) when the quota is used up."""
        ...

    async def record_deletion(self, deleted: Generation, at: datetime) -> None:
        """Log that the generation was deleted, dropping its earlier history."""
        ...


class SqlUnitOfWork:
    """A `UnitOfWork` on one Postgres connection. Use each instance for one `async with`."""

    generations: GenerationRepository
    change_log: ChangeLogRepository
    idempotency: IdempotencyRepository
    api_keys: ApiKeyRepository
    usage: UsageRepository

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        topology: ServiceTopology,
        on_events_committed: Callable[[Sequence[StagedRow]], None] = lambda _: None,
        after_commit: ChangesCommitted = _nobody,
        *,
        read_only: bool = False,
        single_statement: bool = False,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._publishes = {b.name for b in topology.publishes}
        self._service = topology.name
        self._on_events_committed = on_events_committed
        self._after_commit = after_commit
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        #: No transaction: each statement runs on its own (autocommit), which spares a read of
        #: one statement the BEGIN and ROLLBACK round trips; nothing may be written or committed.
        self._read_only = read_only
        #: No transaction either: its one write is `add_generation`, one statement that commits
        #: on its own (sparing BEGIN and COMMIT); reads before it see what is committed.
        self._single_statement = single_statement
        self._written = False
        self._staged: list[StagedRow] = []
        self._changes: list[GenerationChanged] = []
        #: (provider_id, status) of each generation this transaction moved, for the metrics.
        self._transitions: list[tuple[str, str]] = []

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("a unit of work is used for one transaction only")
        self._conn = await self._engine.connect()
        try:
            if self._read_only or self._single_statement:
                await self._conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                self._tx = await self._conn.begin()
        except BaseException:
            await self._conn.close()
            raise
        self.generations = GenerationRepository(self._conn)
        self.change_log = ChangeLogRepository(self._conn)
        self.idempotency = IdempotencyRepository(self._conn)
        self.api_keys = ApiKeyRepository(self._conn)
        self.usage = UsageRepository(self._conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if self._tx is not None and self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._conn.close()

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        if self._tx is not None:
            await self._tx.commit()
        transitions, self._transitions = self._transitions, []
        for provider_id, status in transitions:
            record_generation_status(provider_id, status)
        if self._staged:
            staged, self._staged = self._staged, []
            self._on_events_committed(staged)
        if self._changes:
            changes, self._changes = self._changes, []
            try:
                await self._after_commit(changes)
            except Exception as exc:
                # Committed is committed: streams catch up by their periodic read instead.
                log.warning("change notification failed", error=repr(exc))

    async def publish(self, binding: EventBinding[Event], event: Event) -> None:
        assert self._conn is not None
        self._check_writable()
        row = await add_to_outbox(self._conn, self._outbox, self._encode(binding, event))
        if row is not None:
            self._staged.append(row)

    def _encode(self, binding: EventBinding[Event], event: Event) -> OutgoingMessage:
        if binding.name not in self._publishes:
            raise PermissionError(f"{self._service} does not publish {binding.subject_prefix}")
        return encode_event(binding, event)

    def _check_writable(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work writes nothing")
        if self._single_statement:
            raise RuntimeError("a single-statement unit of work writes only `add_generation`")

    async def record_changes(self, changed: Sequence[Generation]) -> None:
        self._check_writable()
        await self.change_log.lock_users(g.user_id for g in changed)
        # One INSERT for them all (a group commit of consumed events brings many).
        seqs = await self.change_log.append_many([_change_of(g) for g in changed])
        for generation, seq in zip(changed, seqs, strict=True):
            self._changed(generation, seq)

    async def add_generation(
        self,
        generation: Generation,
        requested: GenerationRequested,
        *,
        day: date,
        quota: int | None,
    ) -> int | None:
        assert self._conn is not None
        if self._read_only or self._written:
            raise RuntimeError("this unit of work cannot add a generation")
        self._written = self._single_statement
        written = await write_new_generation(
            self._conn,
            self._outbox,
            generation,
            self._encode(REQUESTED, requested),
            _change_of(generation),
            day=day,
            quota=quota,
        )
        if written is None:
            return None
        self._staged.append(written.staged)
        self._changed(generation, written.change_seq)
        return written.transaction_id

    def _changed(self, generation: Generation, seq: int) -> None:
        self._transitions.append((generation.provider_id, str(generation.status)))
        self._changes.append(
            GenerationChanged(
                user_id=generation.user_id, generation_id=generation.id, event_seq=seq
            )
        )

    async def record_deletion(self, deleted: Generation, at: datetime) -> None:
        self._check_writable()
        await self.change_log.forget_generation(deleted.id)
        payload = {"id": str(deleted.id), "deleted_at": at.isoformat()}
        await self._append(deleted, DELETED_EVENT, payload, at)

    async def _append(
        self, generation: Generation, event_type: str, payload: dict[str, Any], at: datetime
    ) -> None:
        seq = await self.change_log.append(
            generation_id=generation.id,
            user_id=generation.user_id,
            event_type=event_type,
            status=str(generation.status),
            payload=payload,
            at=at,
        )
        self._changes.append(
            GenerationChanged(
                user_id=generation.user_id, generation_id=generation.id, event_seq=seq
            )
        )


def _change_of(generation: Generation) -> NewChange:
    """The change-log row of `generation`'s new state."""
    return NewChange(
        generation_id=generation.id,
        user_id=generation.user_id,
        event_type=CHANGED_EVENT,
        status=str(generation.status),
        payload=generation_snapshot(generation),
        at=generation.updated_at,
    )

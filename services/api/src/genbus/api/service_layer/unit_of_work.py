"""The unit of work: one transaction, rolled back unless `commit()` is called.

Events are staged in the outbox inside that same transaction, so a generation and the events
announcing it are committed together or not at all. So is every change of a generation and its
row in the change log (`generation_events`); once committed, `after_commit` is told about those
rows so that live-status streams on every replica wake up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
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
from genbus.api.adapters.repository import GenerationRepository, generation_snapshot
from genbus.api.adapters.usage import UsageRepository
from genbus.api.domain.model import Generation
from genbus.api.service_layer.metrics import record_generation_status
from genbus.contracts import Event, EventBinding, GenerationChanged, ServiceTopology
from genbus.runtime.logging import get_logger
from genbus.runtime.outbox import add_to_outbox
from genbus.runtime.publisher import encode_event

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
        on_events_committed: Callable[[], None] = lambda: None,
        after_commit: ChangesCommitted = _nobody,
        *,
        read_only: bool = False,
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
        self._staged = 0
        self._changes: list[GenerationChanged] = []
        #: (provider_id, status) of each generation this transaction moved, for the metrics.
        self._transitions: list[tuple[str, str]] = []

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("a unit of work is used for one transaction only")
        self._conn = await self._engine.connect()
        try:
            if self._read_only:
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
        if self._tx is None:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        await self._tx.commit()
        transitions, self._transitions = self._transitions, []
        for provider_id, status in transitions:
            record_generation_status(provider_id, status)
        if self._staged:
            self._on_events_committed()
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
        if binding.name not in self._publishes:
            raise PermissionError(f"{self._service} does not publish {binding.subject_prefix}")
        await add_to_outbox(self._conn, self._outbox, encode_event(binding, event))
        self._staged += 1

    def _check_writable(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work writes nothing")

    async def record_changes(self, changed: Sequence[Generation]) -> None:
        self._check_writable()
        await self.change_log.lock_users(g.user_id for g in changed)
        self._transitions.extend((g.provider_id, str(g.status)) for g in changed)
        # One INSERT for them all (a group commit of consumed events brings many).
        seqs = await self.change_log.append_many(
            [
                NewChange(
                    generation_id=g.id,
                    user_id=g.user_id,
                    event_type=CHANGED_EVENT,
                    status=str(g.status),
                    payload=generation_snapshot(g),
                    at=g.updated_at,
                )
                for g in changed
            ]
        )
        self._changes.extend(
            GenerationChanged(user_id=g.user_id, generation_id=g.id, event_seq=seq)
            for g, seq in zip(changed, seqs, strict=True)
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

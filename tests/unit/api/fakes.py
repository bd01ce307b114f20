"""An in-memory stand-in for the api's unit of work, plus what its service-layer tests share.

`FakeDatabase` is "the database": committed tables, the outbox (events staged by committed
units of work) and the change notifications `after_commit` was given. A `FakeUnitOfWork` works
on a copy of the tables taken on `async with` and writes it back only on `commit()`; leaving
without it discards everything, as the SQL unit of work's rollback does. Its `publish`,
`record_changes` and `record_deletion` follow `SqlUnitOfWork` step by step.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID, uuid4

from genbus.api.adapters.api_keys import ApiKeyRepository
from genbus.api.adapters.change_log import (
    CHANGED_EVENT,
    DELETED_EVENT,
    ChangeLogRepository,
    ChangeRecord,
    NewChange,
)
from genbus.api.adapters.idempotency import IdempotencyRepository
from genbus.api.adapters.repository import GenerationRepository, generation_snapshot
from genbus.api.adapters.usage import UsageRepository
from genbus.api.domain.model import Generation
from genbus.api.domain.requests import RequestLimits
from genbus.api.domain.status import GenerationStatus
from genbus.contracts import (
    REQUESTED,
    SERVICES,
    Event,
    EventBinding,
    GenerationChanged,
    GenerationRequested,
)
from genbus.runtime.problems import FieldError

from .fake_generations import FakeGenerationRepository
from .fake_repositories import (
    FakeApiKeyRepository,
    FakeChangeLogRepository,
    FakeIdempotencyRepository,
)
from .fake_tables import Tables
from .fake_usage import FakeUsageRepository

E = TypeVar("E", bound=Event)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
USER = "user-1"
OTHER_USER = "user-2"
LIMITS = RequestLimits(default_deadline=timedelta(hours=1))


class FakeDatabase:
    """The committed state every `FakeUnitOfWork` reads and writes back to."""

    def __init__(self) -> None:
        self.tables = Tables()
        #: The outbox: (binding, event) staged by committed units of work, in commit order.
        self.outbox: list[tuple[EventBinding[Event], Event]] = []
        #: What `after_commit` was told, one list per commit that logged changes.
        self.notified: list[list[GenerationChanged]] = []
        self.commits = 0
        self.rollbacks = 0
        #: Bumped by each commit: a transaction that began before another's commit may not commit.
        self.version = 0
        self._seq = itertools.count(1)

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def next_seq(self) -> int:
        return next(self._seq)

    @property
    def generations(self) -> dict[UUID, Generation]:
        return self.tables.generations

    @property
    def change_log(self) -> list[ChangeRecord]:
        return self.tables.change_log

    def add(self, *generations: Generation) -> None:
        """Committed generations, as if created earlier (no events, no change-log rows)."""
        for g in generations:
            self.tables.generations[g.id] = g

    def events_of(self, binding: EventBinding[E]) -> list[E]:
        """The committed events of one binding (checked to be of its model)."""
        found = [event for b, event in self.outbox if b.name == binding.name]
        return [event for event in found if isinstance(event, binding.model)]

    def changes_of(self, generation_id: UUID) -> list[tuple[str, str]]:
        """(event type, status) of each committed change-log row of one generation."""
        return [
            (r.event_type, r.status) for r in self.change_log if r.generation_id == generation_id
        ]


class FakeUnitOfWork:
    """One transaction on a `FakeDatabase`; satisfies the api's `UnitOfWork` protocol."""

    generations: GenerationRepository
    change_log: ChangeLogRepository
    idempotency: IdempotencyRepository
    api_keys: ApiKeyRepository
    usage: UsageRepository

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self._publishes = {b.name for b in SERVICES["api"].publishes}
        self._open = False
        self._used = False

    async def __aenter__(self) -> Self:
        if self._used:
            raise RuntimeError("a unit of work is used for one transaction only")
        self._used = self._open = True
        self._committed = False
        self._version = self._db.version
        self._work = self._db.tables.copy()
        self._staged: list[tuple[EventBinding[Event], Event]] = []
        self._changes: list[GenerationChanged] = []
        self.generations = FakeGenerationRepository(self._work)
        self.change_log = FakeChangeLogRepository(self._work, self._db.next_seq)
        self.idempotency = FakeIdempotencyRepository(self._work)
        self.api_keys = FakeApiKeyRepository(self._work)
        self.usage = FakeUsageRepository(self._work)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self._db.rollbacks += 1
        self._open = False

    async def commit(self) -> None:
        assert self._open, "commit inside `async with`"
        assert not self._committed, "committed twice"
        if self._db.version != self._version:
            raise AssertionError(
                "another transaction committed meanwhile (tests run them serially)"
            )
        self._db.tables = self._work
        self._db.outbox.extend(self._staged)
        self._db.version += 1
        self._db.commits += 1
        self._committed = True
        if self._changes:
            self._db.notified.append(self._changes)

    async def publish(self, binding: EventBinding[Event], event: Event) -> None:
        assert self._open, "publish inside `async with`"
        assert not self._committed, "published after commit: it would never be sent"
        if binding.name not in self._publishes:
            raise PermissionError(f"api does not publish {binding.subject_prefix}")
        self._staged.append((binding, event))

    async def record_changes(self, changed: Sequence[Generation]) -> None:
        await self.change_log.lock_users(g.user_id for g in changed)
        seqs = await self.change_log.append_many(
            [
                NewChange(
                    g.id,
                    g.user_id,
                    CHANGED_EVENT,
                    str(g.status),
                    generation_snapshot(g),
                    g.updated_at,
                )
                for g in changed
            ]
        )
        self._changes.extend(
            GenerationChanged(user_id=g.user_id, generation_id=g.id, event_seq=seq)
            for g, seq in zip(changed, seqs, strict=True)
        )

    async def add_generation(
        self,
        generation: Generation,
        requested: GenerationRequested,
        *,
        day: date,
        quota: int | None,
    ) -> int | None:
        # What the real one does in one statement, step by step.
        if await self.usage.count_creation(generation.user_id, day, quota=quota) is None:
            return None
        transaction_id = await self.generations.add(generation)
        await self.publish(REQUESTED, requested)
        await self.record_changes([generation])
        return transaction_id

    async def record_deletion(self, deleted: Generation, at: datetime) -> None:
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


# -- what the service-layer tests share ---------------------------------------------------------


class Catalog:
    """Providers `sim` (every operation) and `images_only` (the image ones)."""

    def is_known(self, provider_id: str) -> bool:
        return provider_id in {"sim", "images_only"}

    def supports(self, provider_id: str, operation_type: str) -> bool:
        if provider_id == "images_only":
            return operation_type.endswith("_image")
        return provider_id == "sim"

    def provider_options_problems(
        self, provider_id: str, operation_type: str, options: Mapping[str, Any]
    ) -> list[FieldError]:
        return [FieldError(k, "unknown_field", "no such option") for k in options]


def generation(status: GenerationStatus = GenerationStatus.PENDING, **changes: Any) -> Generation:
    """A generation as a row would hold it (USER's, text_to_video on `sim`, due in an hour)."""
    base = Generation(
        id=uuid4(),
        user_id=USER,
        operation_type="text_to_video",
        provider_id="sim",
        status=status,
        params={"prompt": "a cat"},
        canonical_params={"prompt": "a cat"},
        inputs=[],
        canonical_inputs=[],
        priority=5,
        scheduled_at=None,
        deadline_at=NOW + timedelta(hours=1),
        reproducible_hash="0" * 64,
        name=None,
        metadata={},
        attempt=0,
        account_id=None,
        provider_job_id=None,
        asset=None,
        error=None,
        created_at=NOW - timedelta(minutes=5),
        updated_at=NOW - timedelta(minutes=5),
        submitted_at=None,
        completed_at=NOW - timedelta(minutes=1) if status.terminal else None,
    )
    return dataclasses.replace(base, **changes)

"""In-memory stand-ins for the api's repositories, statement by statement like their SQL.

Each works on one transaction's copy of the tables (`Tables`); `FakeUnitOfWork` (in `fakes`)
writes that copy back on commit only. Every status change is the same compare-and-set as the
SQL's `UPDATE ... WHERE status IN (...)`, with the allowed statuses taken from the domain.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.api_keys import ApiKeyRepository
from genbus.api.adapters.change_log import DELETED_EVENT, ChangeLogRepository, ChangeRecord
from genbus.api.adapters.idempotency import IdempotencyRepository, StoredKey
from genbus.api.adapters.repository import GenerationRepository
from genbus.api.domain.api_keys import ApiKey
from genbus.api.domain.listing import Cursor, GenerationFilter, Page
from genbus.api.domain.model import Generation
from genbus.api.domain.status import (
    CANCELLABLE_AT_ONCE,
    NON_TERMINAL,
    RESUBMITTABLE,
    TERMINAL,
    GenerationStatus,
    sources_of,
)
from genbus.contracts import Asset, ErrorInfo

_NO_CONNECTION = cast(AsyncConnection, None)


@dataclass
class Tables:
    """The api's tables. Rows are immutable values: a write replaces the row, so a shallow copy
    of each table is a snapshot."""

    generations: dict[UUID, Generation] = field(default_factory=dict)
    idempotency_keys: dict[tuple[str, str], StoredKey] = field(default_factory=dict)
    change_log: list[ChangeRecord] = field(default_factory=list)
    #: id -> (key, digest of the secret).
    api_keys: dict[UUID, tuple[ApiKey, str]] = field(default_factory=dict)

    def copy(self) -> Tables:
        return Tables(
            dict(self.generations),
            dict(self.idempotency_keys),
            list(self.change_log),
            dict(self.api_keys),
        )


class FakeGenerationRepository(GenerationRepository):
    def __init__(self, tables: Tables) -> None:
        super().__init__(_NO_CONNECTION)
        self._t = tables

    async def add(self, generation: Generation) -> None:
        if generation.id in self._t.generations:
            raise AssertionError(f"duplicate key: generation {generation.id}")
        self._t.generations[generation.id] = generation

    async def get(self, generation_id: UUID, *, user_id: str | None = None) -> Generation | None:
        g = self._t.generations.get(generation_id)
        return g if g is not None and user_id in (None, g.user_id) else None

    async def list_page(
        self, user_id: str, where: GenerationFilter, *, after: Cursor | None, limit: int
    ) -> Page:
        def matches(g: Generation) -> bool:
            return (
                g.user_id == user_id
                and (not where.statuses or g.status in where.statuses)
                and (not where.operation_types or g.operation_type in where.operation_types)
                and (not where.provider_ids or g.provider_id in where.provider_ids)
                and (where.created_after is None or g.created_at >= where.created_after)
                and (where.created_before is None or g.created_at < where.created_before)
                and (after is None or (g.created_at, g.id) < (after.created_at, after.id))
            )

        found = sorted(
            filter(matches, self._t.generations.values()),
            key=lambda g: (g.created_at, g.id),
            reverse=True,
        )
        items = found[:limit]
        more = len(found) > limit
        cursor = Cursor(items[-1].created_at, items[-1].id) if more and items else None
        return Page(items=items, next_cursor=cursor)

    async def delete_terminal(self, generation_id: UUID, *, user_id: str) -> Generation | None:
        g = await self.get(generation_id, user_id=user_id)
        if g is None or g.status not in TERMINAL:
            return None
        return self._t.generations.pop(generation_id)

    async def get_many(self, ids: Iterable[UUID], *, user_id: str) -> dict[UUID, Generation]:
        found = {i: await self.get(i, user_id=user_id) for i in set(ids)}
        return {i: g for i, g in found.items() if g is not None}

    async def record_submission(
        self,
        generation_id: UUID,
        *,
        attempt: int,
        account_id: str,
        provider_job_id: str,
        submitted_at: datetime,
        now: datetime,
    ) -> Generation | None:
        return self._cas(
            generation_id,
            lambda g: (
                g.status in sources_of(GenerationStatus.PROCESSING)
                or (g.status in RESUBMITTABLE and g.attempt < attempt)
            ),
            status=GenerationStatus.PROCESSING,
            attempt=attempt,
            account_id=account_id,
            provider_job_id=provider_job_id,
            submitted_at=submitted_at,
            updated_at=now,
        )

    async def record_late_submission(
        self,
        generation_id: UUID,
        *,
        attempt: int,
        account_id: str,
        provider_job_id: str,
        submitted_at: datetime,
        now: datetime,
    ) -> Generation | None:
        current = self._t.generations.get(generation_id)
        if current is None:
            return None
        return self._cas(
            generation_id,
            lambda g: g.status in TERMINAL and g.attempt == attempt and g.submitted_at is None,
            submitted_at=submitted_at,
            account_id=current.account_id if current.account_id is not None else account_id,
            provider_job_id=(
                current.provider_job_id if current.provider_job_id is not None else provider_job_id
            ),
            updated_at=now,
        )

    async def record_outcome(
        self,
        generation_id: UUID,
        status: GenerationStatus,
        *,
        asset: Asset | None,
        error: ErrorInfo | None,
        completed_at: datetime,
        now: datetime,
        attempt: int | None = None,
        account_id: str | None = None,
        provider_job_id: str | None = None,
    ) -> Generation | None:
        values: dict[str, Any] = {
            "status": status,
            "asset": asset,
            "error": error,
            "completed_at": completed_at,
            "updated_at": now,
        }
        if attempt:
            values["attempt"] = attempt
        if account_id is not None:
            values["account_id"] = account_id
        if provider_job_id is not None:
            values["provider_job_id"] = provider_job_id
        return self._cas(generation_id, lambda g: g.status in sources_of(status), **values)

    async def cancel_at_once(self, generation_id: UUID, *, at: datetime) -> Generation | None:
        return self._cas(
            generation_id,
            lambda g: g.status in CANCELLABLE_AT_ONCE,
            status=GenerationStatus.CANCELLED,
            completed_at=at,
            updated_at=at,
        )

    async def fail_overdue(
        self, *, due_before: datetime, error: ErrorInfo, at: datetime, limit: int
    ) -> list[Generation]:
        overdue = sorted(
            (
                g
                for g in self._t.generations.values()
                if g.status in NON_TERMINAL and g.deadline_at < due_before
            ),
            key=lambda g: g.deadline_at,
        )[:limit]
        failed = [
            dataclasses.replace(
                g, status=GenerationStatus.FAILED, error=error, completed_at=at, updated_at=at
            )
            for g in overdue
        ]
        self._t.generations.update((g.id, g) for g in failed)
        return failed

    def _cas(self, generation_id: UUID, allowed: Any, **values: Any) -> Generation | None:
        current = self._t.generations.get(generation_id)
        if current is None or not allowed(current):
            return None
        updated = dataclasses.replace(current, **values)
        self._t.generations[generation_id] = updated
        return updated


class FakeIdempotencyRepository(IdempotencyRepository):
    def __init__(self, tables: Tables) -> None:
        super().__init__(_NO_CONNECTION)
        self._t = tables

    async def claim(
        self,
        *,
        user_id: str,
        key: str,
        request_hash: str,
        generation_id: UUID,
        at: datetime,
        expired_before: datetime,
    ) -> StoredKey | None:
        keys = self._t.idempotency_keys
        stored = keys.get((user_id, key))
        if stored is not None and stored.created_at < expired_before:
            del keys[(user_id, key)]
            stored = None
        if stored is not None:
            return stored
        keys[(user_id, key)] = StoredKey(request_hash, generation_id, at)
        return None

    async def find(self, *, user_id: str, key: str, not_before: datetime) -> StoredKey | None:
        stored = self._t.idempotency_keys.get((user_id, key))
        return stored if stored is not None and stored.created_at >= not_before else None

    async def forget_generation(self, generation_id: UUID) -> None:
        keys = self._t.idempotency_keys
        for name in [k for k, v in keys.items() if v.generation_id == generation_id]:
            del keys[name]

    async def purge(self, *, before: datetime, limit: int) -> int:
        keys = self._t.idempotency_keys
        batch = [k for k, v in keys.items() if v.created_at < before][:limit]
        for name in batch:
            del keys[name]
        return len(batch)


class FakeChangeLogRepository(ChangeLogRepository):
    """`append` takes its id from `next_seq` (a sequence: ids are not reused after a rollback)."""

    def __init__(self, tables: Tables, next_seq: Any) -> None:
        super().__init__(_NO_CONNECTION)
        self._t = tables
        self._next_seq = next_seq
        #: Users whose change-log lock this transaction took, in the order taken.
        self.locks_taken: list[str] = []

    async def lock_users(self, user_ids: Iterable[str]) -> None:
        for user_id in sorted(set(user_ids) - self._locked):
            self._locked.add(user_id)
            self.locks_taken.append(user_id)

    async def append(
        self,
        *,
        generation_id: UUID,
        user_id: str,
        event_type: str,
        status: str,
        payload: dict[str, Any],
        at: datetime,
    ) -> int:
        await self.lock_users([user_id])
        seq = int(self._next_seq())
        record = ChangeRecord(
            seq, generation_id, user_id, event_type, status, copy.deepcopy(payload), at
        )
        self._t.change_log.append(record)
        return seq

    async def read_after(
        self,
        after: int,
        *,
        user_id: str,
        generation_id: UUID | None = None,
        limit: int = 100,
    ) -> list[ChangeRecord]:
        rows = [
            r
            for r in sorted(self._t.change_log, key=lambda r: r.seq)
            if r.user_id == user_id and r.seq > after and generation_id in (None, r.generation_id)
        ]
        return rows[:limit]

    async def last_seq(self, user_id: str) -> int:
        return max((r.seq for r in self._t.change_log if r.user_id == user_id), default=0)

    async def was_deleted(self, generation_id: UUID) -> bool:
        return any(
            r.generation_id == generation_id and r.event_type == DELETED_EVENT
            for r in self._t.change_log
        )

    async def forget_generation(self, generation_id: UUID) -> None:
        self._t.change_log[:] = [r for r in self._t.change_log if r.generation_id != generation_id]

    async def purge(self, *, before: datetime, limit: int) -> int:
        batch = {r.seq for r in self._t.change_log if r.created_at < before}
        batch = set(sorted(batch)[:limit])
        self._t.change_log[:] = [r for r in self._t.change_log if r.seq not in batch]
        return len(batch)


class FakeApiKeyRepository(ApiKeyRepository):
    def __init__(self, tables: Tables) -> None:
        super().__init__(_NO_CONNECTION)
        self._t = tables

    async def add(self, key: ApiKey, *, digest: str) -> None:
        if key.id in self._t.api_keys or any(d == digest for _, d in self._t.api_keys.values()):
            raise AssertionError(f"duplicate key: api key {key.id}")
        self._t.api_keys[key.id] = (key, digest)

    async def active_by_digest(self, digest: str) -> ApiKey | None:
        for key, stored in self._t.api_keys.values():
            if stored == digest and key.revoked_at is None:
                return key
        return None

    async def revoke(self, key_id: UUID, *, at: datetime) -> ApiKey | None:
        if key_id not in self._t.api_keys:
            return None
        key, digest = self._t.api_keys[key_id]
        if key.revoked_at is None:
            key = dataclasses.replace(key, revoked_at=at)
            self._t.api_keys[key_id] = (key, digest)
        return key

    # Last: below it, `list` names this method, not the builtin.
    async def list(self, *, user_id: str | None = None) -> list[ApiKey]:
        keys = [k for k, _ in self._t.api_keys.values() if user_id in (None, k.user_id)]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

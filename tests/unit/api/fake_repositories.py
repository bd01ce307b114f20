"""In-memory idempotency-key, change-log and API-key repositories, like their SQL, on one
transaction's copy of the tables."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from genbus.api.adapters.api_keys import ApiKeyRepository
from genbus.api.adapters.change_log import (
    DELETED_EVENT,
    ChangeLogRepository,
    ChangeRecord,
    NewChange,
)
from genbus.api.adapters.idempotency import IdempotencyRepository, StoredKey
from genbus.api.domain.api_keys import ApiKey
from genbus.api.domain.limits import Limits

from .fake_tables import NO_CONNECTION, Tables


class FakeIdempotencyRepository(IdempotencyRepository):
    def __init__(self, tables: Tables) -> None:
        super().__init__(NO_CONNECTION)
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

    def __init__(self, tables: Tables, next_seq: Callable[[], int]) -> None:
        super().__init__(NO_CONNECTION)
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
        seq = self._next_seq()
        record = ChangeRecord(
            seq, generation_id, user_id, event_type, status, copy.deepcopy(payload), at
        )
        self._t.change_log.append(record)
        return seq

    async def append_many(self, changes: Sequence[NewChange]) -> list[int]:
        await self.lock_users(c.user_id for c in changes)
        return [
            await self.append(
                generation_id=c.generation_id,
                user_id=c.user_id,
                event_type=c.event_type,
                status=c.status,
                payload=c.payload,
                at=c.at,
            )
            for c in changes
        ]

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
        super().__init__(NO_CONNECTION)
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

    async def get(self, key_id: UUID) -> ApiKey | None:
        found = self._t.api_keys.get(key_id)
        return found[0] if found is not None else None

    async def set_limits(
        self, key_id: UUID, *, tier: str | None, overrides: Limits | None
    ) -> ApiKey | None:
        if key_id not in self._t.api_keys:
            return None
        key, digest = self._t.api_keys[key_id]
        stored = overrides if overrides is not None and overrides.set else None
        key = dataclasses.replace(key, tier=tier, overrides=stored)
        self._t.api_keys[key_id] = (key, digest)
        return key

    # Last: below it, `list` names this method, not the builtin.
    async def list(self, *, user_id: str | None = None) -> list[ApiKey]:
        keys = [k for k, _ in self._t.api_keys.values() if user_id in (None, k.user_id)]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

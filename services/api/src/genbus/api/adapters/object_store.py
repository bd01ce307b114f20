"""The object store as the api's HTTP process uses it: one client opened on first use, and the
stored inputs (uploads, generations' copies) handed to providers as presigned GETs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.adapters import upload_rows
from genbus.storage import ObjectStore, StorageSettings

#: SigV4 presigned URLs live at most 7 days.
MAX_PRESIGN_S = 7 * 24 * 3600


class SharedStore:
    """One `ObjectStore` per process, opened on first use (None settings: no store)."""

    def __init__(self, settings: StorageSettings | None) -> None:
        self.settings = settings
        self._store: ObjectStore | None = None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self.settings is not None

    async def get(self) -> ObjectStore:
        if self.settings is None:
            raise RuntimeError("no object store is configured")
        async with self._lock:
            if self._store is None:
                store = ObjectStore(self.settings)
                await store.open()
                self._store = store
            return self._store

    async def close(self) -> None:
        async with self._lock:
            if self._store is not None:
                await self._store.close()
                self._store = None


class StoredInputAccess:
    """`intake.StoredInputs` on the uploads table and the object store."""

    def __init__(
        self,
        engine: AsyncEngine,
        store: SharedStore,
        *,
        margin: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._store = store
        self._margin = margin
        self._clock = clock

    async def upload_keys(self, user_id: str, ids: Sequence[UUID]) -> dict[UUID, str]:
        found = await upload_rows.get_many(self._engine, ids, user_id)
        return {upload_id: row.object_key for upload_id, row in found.items()}

    async def sign(self, keys: Sequence[str], *, valid_until: datetime) -> dict[str, str]:
        seconds = (valid_until + self._margin - self._clock()).total_seconds()
        ttl = max(60, min(MAX_PRESIGN_S, int(seconds)))
        store = await self._store.get()
        return {key: await store.presign_get(key, ttl_s=ttl) for key in dict.fromkeys(keys)}

"""The archiver as a task of the api's consumers process, configured by `GENBUS_API_ARCHIVE_*`
(what it may fetch, how much, how often), `GENBUS_API_ASSET_*` (retention, orphan sweep) and
`GENBUS_S3_*` (where it stores)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.asset_config import AssetSettings
from genbus.api.service_layer.archiving import ArchivePolicy, run_archiver
from genbus.api.service_layer.lifecycle import LifecyclePolicy
from genbus.runtime.addresses import AddressPolicy
from genbus.runtime.logging import get_logger
from genbus.storage import ObjectStore, StorageSettings
from genbus.storage.fetch import FetchLimits, SafeFetcher
from genbus.storage.settings import MIB

log = get_logger(__name__)


class ArchiveSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENBUS_API_ARCHIVE_", extra="ignore")

    #: Off unless an object store is configured for it (`GENBUS_S3_*`).
    enabled: bool = False
    #: Networks a provider's output URL may resolve to besides public addresses, e.g.
    #: `127.0.0.0/8` for the local sim (`make run` only). Comma-separated.
    allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_bytes: int = Field(default=2048 * MIB, ge=1)
    max_redirects: int = Field(default=5, ge=0, le=20)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0)
    #: Per-copy bound on the whole download and upload.
    copy_timeout_s: float = Field(default=900.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    interval_s: float = Field(default=2.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=64)

    @field_validator("allow_networks", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class ArchiverTask:
    """Opens the object store and the fetcher, runs archive passes until stopped."""

    def __init__(
        self,
        settings: ArchiveSettings,
        storage: StorageSettings,
        assets: AssetSettings | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.assets = assets if assets is not None else AssetSettings()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self, engine: AsyncEngine, clock: Callable[[], datetime]) -> None:
        self._task = asyncio.create_task(self._run(engine, clock), name="archiver")

    async def _run(self, engine: AsyncEngine, clock: Callable[[], datetime]) -> None:
        s = self.settings
        fetcher = SafeFetcher(
            AddressPolicy.from_strings(s.allow_networks),
            FetchLimits(max_bytes=s.max_bytes, max_redirects=s.max_redirects),
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
        )
        policy = ArchivePolicy(
            max_attempts=s.max_attempts, batch=s.concurrency, copy_timeout_s=s.copy_timeout_s
        )
        try:
            async with ObjectStore(self.storage) as store:
                log.info("archiver started", bucket=self.storage.bucket)
                await run_archiver(
                    engine,
                    store,
                    fetcher,
                    policy,
                    clock,
                    interval_s=s.interval_s,
                    stop=self._stop,
                    lifecycle=lifecycle_policy(self.assets),
                )
        finally:
            await fetcher.aclose()

    async def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._task is None:
            return
        _, pending = await asyncio.wait([self._task], timeout=timeout)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None


def lifecycle_policy(assets: AssetSettings) -> LifecyclePolicy:
    days = assets.retention_days
    return LifecyclePolicy(
        retention=timedelta(days=days) if days > 0 else None,
        batch=assets.retention_batch,
        orphan_grace=timedelta(hours=assets.orphan_grace_h),
        orphan_interval_s=assets.orphan_sweep_interval_s,
    )


def archiver_from_env() -> ArchiverTask | None:
    """The archiver when `GENBUS_API_ARCHIVE_ENABLED` is true, else None."""
    settings = ArchiveSettings()
    return ArchiverTask(settings, StorageSettings()) if settings.enabled else None

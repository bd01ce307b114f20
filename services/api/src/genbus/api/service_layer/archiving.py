"""The archiver: copies completed generations' outputs from the provider's URL into our object
store, off the provider slot's path (the dispatcher freed the slot when the provider finished).

Each pass finds completed generations without a copy, claims due copies with a lease, and
streams each one (`genbus.storage.archive_url`). A refused output (URL not allowed, too large,
wrong media type, 4xx) fails at once; a transient failure (provider 5xx, connection, object store
down) is retried with exponential backoff until `max_attempts`; either failure is recorded as
`asset_archive_failed` with the reason, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.adapters import asset_queue
from genbus.api.service_layer.lifecycle import LifecyclePolicy, expire, sweep_orphans
from genbus.runtime.logging import get_logger
from genbus.storage import ObjectStore, StorageError
from genbus.storage.archive import ArchiveRefused, archive_url
from genbus.storage.fetch import FetchFailed, SafeFetcher

log = get_logger(__name__)


@dataclass(frozen=True)
class ArchivePolicy:
    max_attempts: int = 8
    base_backoff_s: float = 2.0
    max_backoff_s: float = 300.0
    #: How long a claimed copy is ours; past it another archiver may take it over.
    lease: timedelta = timedelta(minutes=5)
    batch: int = 4
    #: Completed generations older than this are not looked for (they were found before).
    horizon: timedelta = timedelta(days=2)
    #: Bound on one copy (download and upload together).
    copy_timeout_s: float = 900.0

    def backoff(self, attempts: int) -> timedelta:
        seconds = min(self.max_backoff_s, self.base_backoff_s * 2 ** max(0, attempts - 1))
        return timedelta(seconds=seconds)


async def archive_once(
    engine: AsyncEngine,
    store: ObjectStore,
    fetcher: SafeFetcher,
    policy: ArchivePolicy,
    clock: Callable[[], datetime],
    lifecycle: LifecyclePolicy | None = None,
) -> int:
    """One pass; returns how many copies it settled or rescheduled (or generations and
    uploads it expired, or deleted generations' objects it removed)."""
    expired = await expire(engine, store, lifecycle, now=clock()) if lifecycle else 0
    removed = await remove_deleted(engine, store) + expired
    now = clock()
    await asset_queue.discover(engine, now=now, since=now - policy.horizon, limit=100)
    jobs = await asset_queue.claim(engine, now=now, lease=policy.lease, limit=policy.batch)
    await asyncio.gather(*(_archive(engine, store, fetcher, policy, clock, job) for job in jobs))
    return len(jobs) + removed


async def remove_deleted(engine: AsyncEngine, store: ObjectStore, limit: int = 50) -> int:
    """Delete the objects of generations their owners deleted, then their records."""
    gone = await asset_queue.orphans(engine, limit=limit)
    for generation_id in gone:
        await store.delete_prefix(f"generations/{generation_id}/")
        await asset_queue.forget(engine, generation_id)
        log.info("deleted generation's objects removed", generation_id=str(generation_id))
    return len(gone)


async def _archive(
    engine: AsyncEngine,
    store: ObjectStore,
    fetcher: SafeFetcher,
    policy: ArchivePolicy,
    clock: Callable[[], datetime],
    job: asset_queue.ArchiveJob,
) -> None:
    ids = {"generation_id": str(job.generation_id), "attempt": job.attempts}
    try:
        async with asyncio.timeout(policy.copy_timeout_s):
            stored = await archive_url(
                store,
                fetcher,
                job.source_url,
                job.object_key,
                expected_media_type=job.expected_media_type,
                metadata={"generation-id": str(job.generation_id)},
            )
    except ArchiveRefused as exc:
        log.warning("output refused, not archived", code=exc.code, **ids)
        await asset_queue.mark_failed(engine, job, detail=str(exc), now=clock())
        return
    except (FetchFailed, StorageError, TimeoutError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if job.attempts >= policy.max_attempts:
            log.warning("output not archived, budget spent", detail=detail, **ids)
            await asset_queue.mark_failed(engine, job, detail=detail, now=clock())
        else:
            now = clock()
            at = now + policy.backoff(job.attempts)
            log.info("output archiving failed, retrying", detail=detail, **ids)
            await asset_queue.mark_retry(engine, job, at=at, detail=detail, now=now)
        return
    await asset_queue.mark_stored(
        engine,
        job,
        size=stored.size,
        sha256=stored.sha256,
        media_type=stored.content_type,
        now=clock(),
    )
    log.info("output archived", size=stored.size, **ids)


async def run_archiver(
    engine: AsyncEngine,
    store: ObjectStore,
    fetcher: SafeFetcher,
    policy: ArchivePolicy,
    clock: Callable[[], datetime],
    *,
    interval_s: float,
    stop: asyncio.Event,
    lifecycle: LifecyclePolicy | None = None,
) -> None:
    """Passes every `interval_s` (at once again while there is work) until `stop` is set; an
    orphan sweep every `lifecycle.orphan_interval_s`."""
    loop = asyncio.get_running_loop()
    next_sweep = loop.time()
    while not stop.is_set():
        try:
            busy = await archive_once(engine, store, fetcher, policy, clock, lifecycle) > 0
            if lifecycle is not None and loop.time() >= next_sweep:
                next_sweep = loop.time() + lifecycle.orphan_interval_s
                await sweep_orphans(engine, store, grace=lifecycle.orphan_grace, now=clock())
        except Exception:
            log.exception("archiver pass failed")
            busy = False
        if not busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

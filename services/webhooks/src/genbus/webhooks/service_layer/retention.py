"""Finished deliveries are kept for a while (to be listed and replayed), then deleted."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from genbus.runtime.logging import get_logger
from genbus.webhooks.service_layer.ports import Store

log = get_logger(__name__)


async def purge_once(store: Store, retention_h: float, batch: int, now: datetime) -> int:
    """Delete finished deliveries older than `retention_h`, a batch at a time; how many."""
    before = now - timedelta(hours=retention_h)
    total = 0
    while True:
        deleted = await store.purge_finished(before, batch)
        total += deleted
        if deleted < batch:
            return total


async def run_purge(
    store: Store, retention_h: float, interval_s: float, batch: int, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            deleted = await purge_once(store, retention_h, batch, datetime.now(UTC))
            if deleted:
                log.info("finished deliveries purged", deleted=deleted)
        except Exception as exc:
            log.warning("delivery purge failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)

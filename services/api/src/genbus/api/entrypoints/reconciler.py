"""Background loops: the deadline reconciler (fails generations nobody finished in time) and
the purger (forgets expired idempotency keys, change-log rows and old daily quota counters)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from genbus.api.service_layer import upkeep
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

BATCH = 500


async def run_reconciler(
    uow: Callable[[], UnitOfWork],
    clock: Callable[[], datetime],
    *,
    interval_s: float,
    grace: timedelta,
    stop: asyncio.Event,
) -> None:
    """Every `interval_s` until `stop` is set; errors are logged and retried, never fatal."""
    while not stop.is_set():
        failed = 0
        try:
            failed = len(
                await upkeep.fail_overdue_generations(uow(), now=clock(), grace=grace, limit=BATCH)
            )
        except Exception as exc:
            log.warning("deadline reconciler failed, retrying", error=repr(exc))
        if failed >= BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def run_purger(
    uow: Callable[[], UnitOfWork],
    clock: Callable[[], datetime],
    *,
    interval_s: float,
    idempotency_ttl: timedelta,
    change_log_ttl: timedelta,
    stop: asyncio.Event,
) -> None:
    """Every `interval_s` until `stop` is set; errors are logged and retried, never fatal."""
    while not stop.is_set():
        try:
            purged = await upkeep.purge_expired(
                uow, now=clock(), idempotency_ttl=idempotency_ttl, change_log_ttl=change_log_ttl
            )
            if any(purged):
                log.info("purged expired rows", **purged._asdict())
        except Exception as exc:
            log.warning("purge failed, retrying", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)

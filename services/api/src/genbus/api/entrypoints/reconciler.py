"""The deadline reconciler: a loop that fails generations nobody finished in time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from genbus.api.service_layer import handlers
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
                await handlers.fail_overdue_generations(
                    uow(), now=clock(), grace=grace, limit=BATCH
                )
            )
        except Exception as exc:
            log.warning("deadline reconciler failed, retrying", error=repr(exc))
        if failed >= BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)

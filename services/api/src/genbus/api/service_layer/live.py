"""Live status: follow the change log of one user (or one of their generations) as it grows.

A follower reads rows after the last one it delivered, then sleeps until it is woken (a change
was committed for its user, on any replica) or `catch_up_s` has passed (a lost notification
costs at most that much latency), and reads again. Nothing is held open while it sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from uuid import UUID

from genbus.api.adapters.change_log import DELETED_EVENT, ChangeRecord
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

READ_BATCH = 100


class Wakeups:
    """Wakes the followers of a user in this process. `close()` ends every follower."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.closed = False

    def register(self, user_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[user_id].add(event)
        return event

    def unregister(self, user_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(user_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[user_id]

    def wake(self, user_id: str) -> None:
        for event in self._waiters.get(user_id, ()):
            event.set()

    def close(self) -> None:
        self.closed = True
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def followers(self) -> int:
        return sum(len(w) for w in self._waiters.values())


def ends_generation_stream(record: ChangeRecord) -> bool:
    """A generation's stream ends with its terminal state (or its deletion)."""
    return record.event_type == DELETED_EVENT or GenerationStatus(record.status).terminal


async def changes_after(
    uow: UnitOfWork, *, user_id: str, generation_id: UUID, after: int
) -> list[ChangeRecord]:
    """The changes of one generation after `after` (for one that can change no more)."""
    async with uow:
        return await uow.change_log.read_after(
            after, user_id=user_id, generation_id=generation_id, limit=READ_BATCH
        )


async def latest_change(uow: UnitOfWork, user_id: str) -> int:
    """Where a follower that wants only future changes starts."""
    async with uow:
        return await uow.change_log.last_seq(user_id)


async def follow_changes(
    uow: Callable[[], UnitOfWork],
    wakeups: Wakeups,
    *,
    user_id: str,
    after: int,
    generation_id: UUID | None = None,
    catch_up_s: float,
    until: Callable[[ChangeRecord], bool] = lambda _: False,
    max_duration_s: float | None = None,
) -> AsyncIterator[ChangeRecord]:
    """Every change of `user_id` (of `generation_id`, if given) after `after`, in order; ends
    after the first one for which `until` holds, after `max_duration_s`, or when `wakeups` is
    closed."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + max_duration_s if max_duration_s else None
    waiter = wakeups.register(user_id)
    last = after
    try:
        while not wakeups.closed:
            # Cleared before reading: a wake-up during the read is not lost.
            waiter.clear()
            try:
                async with uow() as unit:
                    batch = await unit.change_log.read_after(
                        last, user_id=user_id, generation_id=generation_id, limit=READ_BATCH
                    )
            except Exception as exc:
                log.warning("live status read failed, retrying", error=repr(exc))
                batch = []
            for record in batch:
                yield record
                last = record.seq
                if until(record):
                    return
            if len(batch) == READ_BATCH:
                continue
            sleep_s = catch_up_s
            if ends_at is not None:
                sleep_s = min(sleep_s, ends_at - loop.time())
                if sleep_s <= 0:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), sleep_s)
    finally:
        wakeups.unregister(user_id, waiter)

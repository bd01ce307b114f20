"""Live status: follow the change log of one user (or one of their generations) as it grows.

A follower takes the rows of its user's shared feed (`user_feeds`) after the last one it
delivered, then sleeps until the feed has read again. Nothing is held open while it sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from uuid import UUID

from genbus.api.adapters.change_log import DELETED_EVENT, ChangeRecord
from genbus.api.adapters.queue_standing import QueueStanding
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.api.service_layer.user_feeds import READ_BATCH, UserFeeds
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


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
    feeds: UserFeeds,
    *,
    user_id: str,
    after: int,
    generation_id: UUID | None = None,
    until: Callable[[ChangeRecord], bool] = lambda _: False,
    max_duration_s: float | None = None,
) -> AsyncIterator[ChangeRecord]:
    """Every change of `user_id` (of `generation_id`, if given) after `after`, in order; ends
    after the first one for which `until` holds, after `max_duration_s`, or when `feeds` is
    closed.

    The rows come from the user's shared feed; a follower behind it (an old `after`, or too
    slow a reader) reads on its own until it has caught up.
    """
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + max_duration_s if max_duration_s else None
    feed = feeds.join(user_id)
    # Every row of interest up to `last` has been delivered.
    last = after
    try:
        while not feeds.closed:
            changed = feed.changed
            kept = feed.after(last)
            if kept is None:
                head = feed.head
                try:
                    batch = await feeds.read_own(user_id, last, generation_id)
                except Exception as exc:
                    log.warning("live status read failed, retrying", error=repr(exc))
                else:
                    for record in batch:
                        yield record
                        last = record.seq
                        if until(record):
                            return
                    if len(batch) == READ_BATCH:
                        continue
                    if head is not None:
                        # Every row up to the feed's head was committed before this read.
                        last = max(last, head)
                        continue
            elif kept:
                for record in kept:
                    last = record.seq
                    if generation_id is not None and record.generation_id != generation_id:
                        continue
                    yield record
                    if until(record):
                        return
                continue
            sleep_s = feeds.catch_up_s
            if ends_at is not None:
                sleep_s = min(sleep_s, ends_at - loop.time())
                if sleep_s <= 0:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), sleep_s)
    finally:
        feeds.leave(feed)


async def follow_queue(
    feeds: UserFeeds, *, user_id: str, generation_id: UUID, max_duration_s: float | None = None
) -> AsyncIterator[QueueStanding]:
    """A pending generation's queue standing each time it changes, as its user's shared feed
    reads it (no reads of its own); ends once it is no longer pending, after `max_duration_s`,
    or when `feeds` is closed."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + max_duration_s if max_duration_s else None
    feed = feeds.join(user_id)
    feeds.watch_queue(feed, generation_id)
    last: QueueStanding | None = None
    try:
        while not feeds.closed:
            changed = feed.changed
            if generation_id in feed.standings:
                standing = feed.standings[generation_id]
                if standing is None:
                    return
                if standing.position != (last.position if last else None):
                    last = standing
                    yield standing
            sleep_s = feeds.catch_up_s * 2
            if ends_at is not None:
                sleep_s = min(sleep_s, ends_at - loop.time())
                if sleep_s <= 0:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), sleep_s)
    finally:
        feeds.unwatch_queue(feed, generation_id)
        feeds.leave(feed)

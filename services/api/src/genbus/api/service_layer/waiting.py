"""Sync mode (`Prefer: wait=N`): hold a request until its generation is terminal or N seconds
have passed.

A waiting request follows the generation's change log with `live.follow_changes`, exactly as a
live-status stream does: it reads from its owner's shared feed on this replica (one database
read per change or catch-up tick for all of the owner's streams and waits), so a waiting
request costs no polling loop of its own. Requests waiting at once are counted per replica
against a bound: past it the preference is simply not applied and the request is answered at
once (RFC 7240 lets a server ignore a preference).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator
from typing import cast
from uuid import UUID

from genbus.api.adapters.change_log import ChangeRecord
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer import live
from genbus.api.service_layer.user_feeds import UserFeeds

#: The longest wait a request may ask for; longer asks are clamped to it.
MAX_WAIT_S = 60


class WaitSlots:
    """How many requests wait at once on this replica, against `limit` (0: unbounded)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[bool]:
        """Yields whether this request may wait; its place is given back on exit."""
        if self.limit and self.waiting >= self.limit:
            yield False
            return
        self.waiting += 1
        try:
            yield True
        finally:
            self.waiting -= 1


async def wait_until_terminal(
    feeds: UserFeeds,
    *,
    user_id: str,
    generation_id: UUID,
    status: GenerationStatus,
    wait_s: float,
) -> bool:
    """Whether the generation (of `user_id`, now in `status`) ended or was deleted within
    `wait_s` seconds. Its whole change history is read first, so an end that happened after
    `status` was read is never missed."""
    if status.terminal:
        return True
    if wait_s <= 0:
        return False
    # An async generator, typed as an iterator by live: closed here so its wake-up is freed.
    records = live.follow_changes(
        feeds,
        user_id=user_id,
        generation_id=generation_id,
        after=0,
        until=live.ends_generation_stream,
        max_duration_s=wait_s,
    )
    records_gen = cast(AsyncGenerator[ChangeRecord, None], records)
    async with contextlib.aclosing(records_gen):
        async for record in records_gen:
            if live.ends_generation_stream(record):
                return True
    return False

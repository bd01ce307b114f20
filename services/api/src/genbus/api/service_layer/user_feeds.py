"""One shared change-log reader per user on a replica.

Every live-status stream of a user on this replica follows that user's `UserFeed`: one task
reads the user's new rows when woken (a change was committed for the user, on any replica) or
every `catch_up_s` (a lost notification costs at most that much latency), and keeps the most
recent rows in memory for the streams to take from. N streams of one user therefore cost one
database read per change or tick, not N. A stream that starts from an older row (or falls
behind the rows kept) reads on its own until it reaches the feed.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from genbus.api.adapters.change_log import ChangeRecord
from genbus.api.adapters.queue_standing import QueueStanding
from genbus.api.service_layer.metrics import API_METRICS
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

READ_BATCH = 100
#: Rows of one user kept in memory for streams that are a little behind.
KEEP_ROWS = 1000


class UserFeed:
    """The rows of one user read so far: `records` holds every row with `base < seq <= head`."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.followers = 0
        #: None until the first read: where the feed starts (the user's latest row then).
        self.head: int | None = None
        self.base = 0
        self.records: list[ChangeRecord] = []
        self._seqs: list[int] = []
        #: Set (and replaced) each time the feed has read: streams wait on it.
        self.changed = asyncio.Event()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        #: Pending generations whose queue standing streams follow (how many streams each),
        #: and their standing as of the feed's last read (None: no longer pending).
        self.queue_watch: dict[UUID, int] = {}
        self.standings: dict[UUID, QueueStanding | None] = {}

    def start_at(self, seq: int) -> None:
        self.head = self.base = seq

    def extend(self, batch: list[ChangeRecord], keep: int) -> None:
        for record in batch:
            self.records.append(record)
            self._seqs.append(record.seq)
        if batch:
            self.head = batch[-1].seq
        excess = len(self.records) - keep
        if excess > 0:
            self.base = self._seqs[excess - 1]
            del self.records[:excess]
            del self._seqs[:excess]

    def after(self, seq: int) -> list[ChangeRecord] | None:
        """The kept rows after `seq`, or None if the feed cannot tell (not started yet, or
        `seq` is older than the rows it keeps)."""
        if self.head is None or seq < self.base:
            return None
        return self.records[bisect.bisect_right(self._seqs, seq) :]

    def announce(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class UserFeeds:
    """The feeds of this replica, one per user with at least one stream. `close()` ends every
    stream."""

    def __init__(
        self, uow: Callable[[], UnitOfWork], *, catch_up_s: float, keep: int = KEEP_ROWS
    ) -> None:
        self._uow = uow
        self.catch_up_s = catch_up_s
        self._keep = keep
        self._feeds: dict[str, UserFeed] = {}
        self.closed = False

    def join(self, user_id: str) -> UserFeed:
        feed = self._feeds.get(user_id)
        if feed is None:
            feed = self._feeds[user_id] = UserFeed(user_id)
            feed.task = asyncio.create_task(self._run(feed), name=f"user-feed-{user_id}")
        feed.followers += 1
        return feed

    def leave(self, feed: UserFeed) -> None:
        feed.followers -= 1
        if feed.followers <= 0:
            if self._feeds.get(feed.user_id) is feed:
                del self._feeds[feed.user_id]
            feed.wake.set()

    def watch_queue(self, feed: UserFeed, generation_id: UUID) -> None:
        """Have `feed` estimate `generation_id`'s queue standing at each of its reads."""
        feed.queue_watch[generation_id] = feed.queue_watch.get(generation_id, 0) + 1
        feed.wake.set()

    def unwatch_queue(self, feed: UserFeed, generation_id: UUID) -> None:
        left = feed.queue_watch.get(generation_id, 0) - 1
        if left > 0:
            feed.queue_watch[generation_id] = left
        else:
            feed.queue_watch.pop(generation_id, None)
            feed.standings.pop(generation_id, None)

    def wake(self, user_id: str) -> None:
        feed = self._feeds.get(user_id)
        if feed is not None:
            feed.wake.set()

    def close(self) -> None:
        self.closed = True
        for feed in self._feeds.values():
            feed.wake.set()
            feed.announce()

    def followers(self) -> int:
        return sum(feed.followers for feed in self._feeds.values())

    def users(self) -> int:
        return len(self._feeds)

    async def read_own(
        self, user_id: str, after: int, generation_id: UUID | None
    ) -> list[ChangeRecord]:
        """A stream's own read (it is behind its feed)."""
        API_METRICS.api_live_reads.labels("own").inc()
        async with self._uow() as unit:
            return await unit.change_log.read_after(
                after, user_id=user_id, generation_id=generation_id, limit=READ_BATCH
            )

    async def _read_standings(self, feed: UserFeed) -> None:
        """The queue standing of each watched generation: once per feed read (a change of the
        user, or every `catch_up_s`), whatever the number of streams watching it."""
        if not feed.queue_watch:
            return
        now = datetime.now(UTC)
        try:
            async with self._uow() as unit:
                for generation_id in list(feed.queue_watch):
                    generation = await unit.generations.get(generation_id)
                    feed.standings[generation_id] = (
                        None
                        if generation is None
                        else await unit.generations.queue_standing(generation, now)
                    )
        except Exception as exc:
            log.warning("queue standing read failed, retrying", error=repr(exc))

    async def _run(self, feed: UserFeed) -> None:
        while feed.followers > 0 and not self.closed:
            # Cleared before reading: a wake-up during the read is not lost.
            feed.wake.clear()
            batch: list[ChangeRecord] = []
            try:
                API_METRICS.api_live_reads.labels("shared").inc()
                async with self._uow() as unit:
                    if feed.head is None:
                        feed.start_at(await unit.change_log.last_seq(feed.user_id))
                    else:
                        batch = await unit.change_log.read_after(
                            feed.head, user_id=feed.user_id, limit=READ_BATCH
                        )
            except Exception as exc:
                log.warning("live status read failed, retrying", error=repr(exc))
            feed.extend(batch, self._keep)
            await self._read_standings(feed)
            feed.announce()
            if len(batch) == READ_BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.wake.wait(), self.catch_up_s)

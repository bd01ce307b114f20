"""The live-status follower: reads after its last row, wakes on notifications, catches up
without them, ends where told; many followers of one user share one reader; and
notifications decode and wake the right user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID, uuid4

import pytest

from genbus.api.adapters.change_log import ChangeRecord
from genbus.api.adapters.notifications import ChangeNotifier
from genbus.api.service_layer import live
from genbus.api.service_layer.user_feeds import UserFeeds
from genbus.contracts import GENERATION_CHANGED, GenerationChanged

pytestmark = pytest.mark.service_layer

NOW = datetime(2030, 1, 1, tzinfo=UTC)


class FakeLog:
    def __init__(self) -> None:
        self.rows: list[ChangeRecord] = []
        self.reads = 0

    def add(self, user_id: str, status: str, generation_id: UUID | None = None) -> ChangeRecord:
        record = ChangeRecord(
            seq=len(self.rows) + 1,
            generation_id=generation_id or uuid4(),
            user_id=user_id,
            event_type="generation",
            status=status,
            payload={},
            created_at=NOW,
        )
        self.rows.append(record)
        return record

    async def read_after(
        self, after: int, *, user_id: str, generation_id: UUID | None = None, limit: int = 100
    ) -> list[ChangeRecord]:
        self.reads += 1
        rows = [r for r in self.rows if r.seq > after and r.user_id == user_id]
        if generation_id is not None:
            rows = [r for r in rows if r.generation_id == generation_id]
        return rows[:limit]

    async def last_seq(self, user_id: str) -> int:
        self.reads += 1
        return max((r.seq for r in self.rows if r.user_id == user_id), default=0)


class FakeUow:
    def __init__(self, log: FakeLog) -> None:
        self.change_log = log

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def _feeds(log: FakeLog, catch_up_s: float = 60.0, keep: int = 1000) -> UserFeeds:
    return UserFeeds(lambda: FakeUow(log), catch_up_s=catch_up_s, keep=keep)  # type: ignore[arg-type,return-value]


def _follow(log: FakeLog, feeds: UserFeeds, **kwargs: Any) -> AsyncIterator[ChangeRecord]:
    defaults: dict[str, Any] = {"user_id": "u", "after": 0}
    return live.follow_changes(feeds, **{**defaults, **kwargs})


async def test_a_wake_up_delivers_new_rows_of_that_user_only() -> None:
    log = FakeLog()
    wakeups = _feeds(log)
    log.add("u", "pending")
    log.add("someone-else", "pending")
    follower = _follow(log, wakeups)
    assert (await anext(follower)).seq == 1
    pending = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.05)
    assert not pending.done()  # nothing new: it sleeps (no polling at 60 s)
    log.add("u", "processing")
    wakeups.wake("someone-else")
    await asyncio.sleep(0.05)
    assert not pending.done()
    wakeups.wake("u")
    assert (await asyncio.wait_for(pending, 1)).status == "processing"
    await follower.aclose()
    assert wakeups.followers() == 0


async def test_without_notifications_the_catch_up_read_delivers() -> None:
    log = FakeLog()
    wakeups = _feeds(log, catch_up_s=0.05)
    follower = _follow(log, wakeups)
    pending = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.02)
    log.add("u", "pending")  # committed, but its notification was lost
    assert (await asyncio.wait_for(pending, 1)).seq == 1
    await follower.aclose()


async def test_it_resumes_after_a_given_row_and_ends_where_told() -> None:
    log = FakeLog()
    wakeups = _feeds(log)
    gid = uuid4()
    for status in ("pending", "processing", "completed"):
        log.add("u", status, gid)
    log.add("u", "pending")  # another generation
    follower = _follow(log, wakeups, after=1, generation_id=gid, until=live.ends_generation_stream)
    assert [r.status async for r in follower] == ["processing", "completed"]


async def test_closing_the_wakeups_ends_every_follower() -> None:
    log = FakeLog()
    wakeups = _feeds(log)
    follower = _follow(log, wakeups)
    pending = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.02)
    wakeups.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 1)


class Msg:
    def __init__(self, data: bytes) -> None:
        self.data = data


async def test_a_notification_wakes_its_user_and_junk_is_ignored() -> None:
    woken: list[str] = []
    notifier = ChangeNotifier(woken.append)
    change = GenerationChanged(user_id="u", generation_id=uuid4(), event_seq=3)
    await notifier._on_message(Msg(change.model_dump_json().encode()))  # type: ignore[arg-type]
    await notifier._on_message(Msg(b"{not json"))  # type: ignore[arg-type]
    assert woken == ["u"]
    # Publishing wakes local followers even without NATS.
    await notifier.publish([change, change])
    assert woken == ["u", "u"]
    assert GENERATION_CHANGED.subject == "genbus.notify.generation_changed"


async def test_a_stream_ends_after_its_maximum_duration() -> None:
    log = FakeLog()
    wakeups = _feeds(log)
    log.add("u", "pending")
    follower = _follow(log, wakeups, max_duration_s=0.1)
    started = asyncio.get_running_loop().time()
    assert [r.seq async for r in follower] == [1]
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_many_followers_of_one_user_share_one_reader() -> None:
    log = FakeLog()
    feeds = _feeds(log)
    log.add("u", "pending")
    followers = [_follow(log, feeds, after=1) for _ in range(200)]
    nexts = [asyncio.ensure_future(anext(f)) for f in followers]
    await asyncio.sleep(0.05)
    assert feeds.users() == 1
    assert feeds.followers() == 200
    reads_before = log.reads
    for status in ("processing", "completed"):
        log.add("u", status)
        feeds.wake("u")
        records = await asyncio.wait_for(asyncio.gather(*nexts), 1)
        assert {r.status for r in records} == {status}
        nexts = [asyncio.ensure_future(anext(f)) for f in followers]
    # Two changes, 200 followers: two shared reads (and perhaps one for a wake-up that raced).
    assert log.reads - reads_before <= 3, log.reads - reads_before
    for pending in nexts:
        pending.cancel()
    for follower in followers:
        await follower.aclose()
    assert feeds.followers() == 0
    assert feeds.users() == 0


async def test_a_follower_behind_the_kept_rows_reads_on_its_own_without_loss() -> None:
    log = FakeLog()
    feeds = _feeds(log, keep=3)
    gid = uuid4()
    follower = _follow(log, feeds, after=0, generation_id=gid)
    first = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.02)
    for i in range(8):
        log.add("u", f"s{i}", gid if i % 2 else None)
    feeds.wake("u")
    got = [(await asyncio.wait_for(first, 1)).status]
    got += [(await asyncio.wait_for(anext(follower), 1)).status for _ in range(3)]
    assert got == ["s1", "s3", "s5", "s7"]
    await follower.aclose()

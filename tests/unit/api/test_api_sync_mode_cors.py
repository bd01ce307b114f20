"""Sync mode (`Prefer` parsing, the bound, waking on change notifications rather than polling)
and CORS from configuration; no database needed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace, TracebackType
from typing import Any, Self
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import Response
from pydantic import ValidationError

from genbus.api.adapters.change_log import ChangeRecord
from genbus.api.config import ApiSettings
from genbus.api.domain.errors import InvalidRequest
from genbus.api.domain.status import GenerationStatus
from genbus.api.entrypoints.http.app import create_app
from genbus.api.entrypoints.http.prefer import PREFERENCE_APPLIED, parse_wait, when_done
from genbus.api.service_layer.user_feeds import UserFeeds
from genbus.api.service_layer.waiting import MAX_WAIT_S, WaitSlots, wait_until_terminal

VALID: dict[str, Any] = {
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {"prompt": "test video", "quality": "720p"},
}
ORIGIN = "http://localhost:5173"
NOWHERE = {"database_url": "postgresql://nobody@127.0.0.1:9/nowhere", "nats_url": "nats://x:9"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("respond-async", None),
        ("wait=5", 5),
        ("WAIT = 7", 7),
        ('wait="3"', 3),
        ("respond-async, wait=10", 10),
        ("wait=0", 0),
        ("wait=61", MAX_WAIT_S),
        ("wait=100000", MAX_WAIT_S),
        ("wait=2, wait=9", 2),
        ("wait=4;foo=bar", 4),
    ],
)
def test_prefer_wait_is_parsed_and_clamped(header: str | None, expected: int | None) -> None:
    assert parse_wait(header) == expected


@pytest.mark.parametrize(
    "header", ["wait=", "wait=-1", "wait=1.5", "wait=abc", "wait=1" + "0" * 12]
)
def test_a_bad_wait_value_is_invalid(header: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_wait(header)
    assert [e.field for e in raised.value.errors] == ["Prefer"]


def test_wait_slots_count_against_the_bound() -> None:
    slots = WaitSlots(2)
    with slots.hold() as first, slots.hold() as second:
        assert (first, second) == (True, True)
        with slots.hold() as third:
            assert third is False
        assert slots.waiting == 2
    assert slots.waiting == 0
    with WaitSlots(0).hold() as unbounded:
        assert unbounded is True


def _client(**settings: Any) -> httpx.AsyncClient:
    app = create_app(ApiSettings(**NOWHERE, allow_anonymous=True, **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


@pytest.fixture
async def cors_client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client(cors_allow_origins=f"{ORIGIN},https://app.example.com") as client:
        yield client


async def test_a_bad_prefer_on_create_is_a_422_before_anything_is_created(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.post(
        "/api/v1/generations", json=VALID, headers={"Prefer": "wait=soon"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("Prefer", "invalid")]


async def test_preflight_from_an_allowed_origin_is_allowed(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options(
        "/api/v1/generations",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key, "
            "prefer, last-event-id",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "idempotency-key", "prefer", "last-event-id"):
        assert header in allowed


async def test_preflight_from_another_origin_is_refused(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options(
        "/api/v1/generations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_simple_request_exposes_the_documented_headers(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.get("/healthz", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = response.headers["access-control-expose-headers"].lower()
    for header in ("retry-after", "preference-applied", "location", "idempotent-replayed"):
        assert header in exposed


async def test_cors_is_off_by_default() -> None:
    async with _client() as client:
        response = await client.options(
            "/api/v1/generations",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in response.headers
        simple = await client.get("/healthz", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize("origins", ["*", "localhost:5173", "http://localhost:5173/"])
def test_cors_origins_must_be_explicit(origins: str) -> None:
    with pytest.raises(ValidationError):
        ApiSettings(**NOWHERE, cors_allow_origins=origins)


def test_cors_origins_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENBUS_API_CORS_ALLOW_ORIGINS", f"{ORIGIN}, https://app.example.com")
    assert ApiSettings(**NOWHERE).cors_allow_origins == [ORIGIN, "https://app.example.com"]


class _Log:
    """A change log in memory, counting its reads."""

    def __init__(self) -> None:
        self.rows: list[ChangeRecord] = []
        self.reads = 0

    def add(self, generation_id: UUID, status: str) -> None:
        self.rows.append(
            ChangeRecord(
                len(self.rows) + 1, generation_id, "u", "generation", status, {}, datetime.now(UTC)
            )
        )

    async def last_seq(self, user_id: str) -> int:
        return max((r.seq for r in self.rows if r.user_id == user_id), default=0)

    async def read_after(
        self, after: int, *, user_id: str, generation_id: UUID | None = None, limit: int = 100
    ) -> list[ChangeRecord]:
        self.reads += 1
        rows = [r for r in self.rows if r.seq > after and r.user_id == user_id]
        return [r for r in rows if generation_id in (None, r.generation_id)][:limit]


class _Uow:
    def __init__(self, log: _Log) -> None:
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


def _feeds(log: _Log) -> UserFeeds:
    return UserFeeds(lambda: _Uow(log), catch_up_s=60.0)  # type: ignore[arg-type,return-value]


async def _wait(
    log: _Log,
    feeds: UserFeeds,
    generation_id: UUID,
    wait_s: float,
    status: GenerationStatus = GenerationStatus.PENDING,
) -> bool:
    return await wait_until_terminal(
        feeds, user_id="u", generation_id=generation_id, status=status, wait_s=wait_s
    )


async def test_a_waiting_request_is_woken_by_the_change_not_by_a_timer() -> None:
    log, gid = _Log(), uuid4()
    wakeups = _feeds(log)
    log.add(gid, "pending")
    started = time.monotonic()
    waiting = asyncio.ensure_future(_wait(log, wakeups, gid, wait_s=30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert log.reads == 1  # read once, then asleep: no polling
    log.add(gid, "processing")
    wakeups.wake("u")
    await asyncio.sleep(0.05)
    assert not waiting.done()
    log.add(gid, "completed")
    wakeups.wake("u")
    assert await asyncio.wait_for(waiting, 5) is True
    assert time.monotonic() - started < 5
    assert log.reads == 3
    assert wakeups.followers() == 0  # its wake-up registration is gone


async def test_an_end_before_the_wait_began_is_not_missed() -> None:
    log, gid = _Log(), uuid4()
    wakeups = _feeds(log)
    log.add(gid, "pending")
    log.add(gid, "completed")  # after the caller read "pending", before it waits
    assert await _wait(log, wakeups, gid, wait_s=30) is True


async def test_the_wait_ends_after_n_seconds_without_an_end() -> None:
    log, gid = _Log(), uuid4()
    wakeups = _feeds(log)
    log.add(gid, "pending")
    started = time.monotonic()
    assert await _wait(log, wakeups, gid, wait_s=0.3) is False
    assert 0.3 <= time.monotonic() - started < 3


async def test_a_terminal_generation_is_not_waited_for() -> None:
    log = _Log()
    assert await _wait(log, _feeds(log), uuid4(), 30, GenerationStatus.COMPLETED) is True
    assert log.reads == 0


async def test_past_the_bound_the_answer_comes_at_once_without_preference_applied() -> None:
    runtime = SimpleNamespace(waits=WaitSlots(1))
    generation: Any = SimpleNamespace(status=GenerationStatus.PENDING)
    response = Response()
    with runtime.waits.hold():
        answer = await when_done(runtime, None, generation, 30, response)  # type: ignore[arg-type]
    assert answer is generation
    assert PREFERENCE_APPLIED not in response.headers

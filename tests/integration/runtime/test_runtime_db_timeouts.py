"""The database bounds every engine applies (`GENBUS_DB_*`), on a real Postgres: a statement
or lock wait past its bound fails fast with a clear error, which the api answers as 503 and a
consumer naks for a later retry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.entrypoints.http.problems import database_unavailable, install_problem_handlers
from genbus.contracts import REQUESTED, GenerationRequested
from genbus.contracts.topology import DISPATCHER_REQUESTED
from genbus.runtime.consumer import Delivery, register_consumer
from genbus.runtime.db import DbTimeouts, create_engine
from genbus.runtime.deadletter import list_dead_letters
from genbus.runtime.jetstream import provision
from genbus.runtime.nats_client import broker_access, connect_nats
from genbus.runtime.publisher import encode_event
from genbus.runtime.pull import GenbusBroker
from genbus.runtime.settings import RuntimeSettings
from tests.events import sample_requested
from tests.waiting import eventually

pytestmark = pytest.mark.integration

#: Bounds of a fraction of a second, so that exceeding them is quick to show.
SHORT = DbTimeouts(statement_s=0.2, lock_s=0.2, idle_in_transaction_s=1.0, command_timeout_s=5.0)
#: Far above any bound: a statement still waiting this long would be hanging.
HANG_S = 2.0


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2, timeouts=SHORT)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE item (id int PRIMARY KEY, n int NOT NULL)"))
        await conn.execute(text("INSERT INTO item VALUES (1, 0)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_every_connection_carries_the_bounds(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        shown = {
            name: (await conn.execute(text(f"SHOW {name}"))).scalar_one()
            for name in (
                "statement_timeout",
                "lock_timeout",
                "idle_in_transaction_session_timeout",
            )
        }
    assert shown == {
        "statement_timeout": "200ms",
        "lock_timeout": "200ms",
        "idle_in_transaction_session_timeout": "1s",
    }


async def test_a_statement_past_the_statement_timeout_fails_fast(engine: AsyncEngine) -> None:
    started = time.monotonic()
    with pytest.raises(DBAPIError) as raised:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(30)"))
    assert time.monotonic() - started < HANG_S
    assert isinstance(raised.value.__cause__.__cause__, asyncpg.QueryCanceledError)  # type: ignore[union-attr]
    assert "statement timeout" in str(raised.value)
    assert database_unavailable(raised.value)  # the api answers 503 (below)


async def test_a_writer_behind_a_held_lock_fails_after_the_lock_timeout(
    engine: AsyncEngine, database_url: str
) -> None:
    holder = await asyncpg.connect(database_url)  # no bounds: it holds the row lock
    # A statement bound well above the lock bound, so the lock wait is what ends it.
    writer = create_engine(database_url, timeouts=replace(SHORT, statement_s=5.0))
    try:
        async with holder.transaction():
            await holder.execute("UPDATE item SET n = n + 1 WHERE id = 1")
            started = time.monotonic()
            with pytest.raises(DBAPIError) as raised:
                async with writer.begin() as conn:
                    await conn.execute(text("UPDATE item SET n = n + 10 WHERE id = 1"))
            assert time.monotonic() - started < HANG_S
    finally:
        await holder.close()
        await writer.dispose()
    assert isinstance(raised.value.__cause__.__cause__, asyncpg.LockNotAvailableError)  # type: ignore[union-attr]
    assert "lock timeout" in str(raised.value)
    assert database_unavailable(raised.value)
    async with engine.connect() as conn:  # the holder's update committed, the waiter's did not
        assert (await conn.execute(text("SELECT n FROM item"))).scalar_one() == 1


async def test_the_client_gives_up_on_a_silent_server_after_the_command_timeout(
    database_url: str,
) -> None:
    # Only the client's bound: what protects a request when the server or network is silent.
    engine = create_engine(
        database_url, timeouts=replace(DbTimeouts.unbounded(), command_timeout_s=0.3)
    )
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(30)"))
        assert time.monotonic() - started < HANG_S
        assert database_unavailable(raised.value)
    finally:
        await engine.dispose()


async def test_the_api_answers_a_statement_timeout_with_503(engine: AsyncEngine) -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(30)"))
        return {}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get("/slow")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert "Retry-After" in response.headers


async def test_a_consumer_naks_a_timed_out_statement_and_succeeds_on_redelivery(
    engine: AsyncEngine, nats_url: str
) -> None:
    spec = replace(DISPATCHER_REQUESTED, max_deliver=3, retry_delays_s=(0.05,), ack_wait_s=2.0)
    nc = await connect_nats(nats_url)
    js = nc.jetstream()
    await provision(js, (spec,))
    outcomes: list[str] = []

    async def handler(delivery: Delivery[GenerationRequested]) -> None:
        sleep_s = 30 if delivery.num_delivered == 1 else 0  # first try: past the bound
        try:
            async with engine.begin() as conn:
                await conn.execute(text("SELECT pg_sleep(:s)"), {"s": sleep_s})
                await conn.execute(text("UPDATE item SET n = n + 1"))
        except DBAPIError:
            outcomes.append("timed out")
            raise
        outcomes.append("applied")

    broker = GenbusBroker(nats_url, **broker_access(nats_url))
    register_consumer(broker, spec, handler)
    await broker.start()
    try:
        event = sample_requested()
        message = encode_event(REQUESTED, event)
        await js.publish(message.subject, message.payload, headers=message.headers)
        await eventually(lambda: _copy(outcomes), lambda seen: seen == ["timed out", "applied"])
        assert await list_dead_letters(js) == []
    finally:
        await broker.stop()
        await nc.close()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM item"))).scalar_one() == 1


async def _copy(items: list[str]) -> list[str]:
    await asyncio.sleep(0)
    return list(items)


def test_the_bounds_come_from_the_shared_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "GENBUS_DB_STATEMENT_TIMEOUT_S": "7.5",
        "GENBUS_DB_LOCK_TIMEOUT_S": "2",
        "GENBUS_DB_IDLE_IN_TRANSACTION_TIMEOUT_S": "12",
        "GENBUS_DB_COMMAND_TIMEOUT_S": "9",
        "GENBUS_DB_CONNECT_TIMEOUT_S": "3",
        "GENBUS_DB_TCP_KEEPALIVES_IDLE_S": "45",
    }.items():
        monkeypatch.setenv(name, value)
    args = RuntimeSettings().db_timeouts().connect_args()
    assert args["command_timeout"] == 9.0
    assert args["timeout"] == 3.0
    assert args["server_settings"] == {
        "statement_timeout": "7500",
        "lock_timeout": "2000",
        "idle_in_transaction_session_timeout": "12000",
        "tcp_keepalives_idle": "45",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "6",
    }

"""unit_costs: what one database transaction and one consumed message cost, library by library.

The throughput scenario says how much CPU a generation takes; this says where a part of it goes.
On the bench's own NATS and Postgres, with no genbus system running, it measures the CPU (of
this process: `getrusage`) of
- a transaction of one UPDATE through SQLAlchemy's async engine as the services create it, and
  through asyncpg directly; one statement inside an open transaction, both ways;
- consuming one `GenerationSubmitted` from a durable pull consumer and acking it: with nats-py
  directly, with a bare FastStream subscriber, and with genbus's consumer stack (FastStream with
  the Prometheus and OpenTelemetry middlewares and `register_consumer`'s handling);
- and, as the floor under the api's intake, the server CPU of one POST to a bare FastAPI app
  served by uvicorn (`bench.scenarios.http_floor`).
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from sqlalchemy import text

from bench.plot import Bars, plot
from bench.report import Figure, ScenarioResult
from bench.scenarios.common import Context
from bench.scenarios.http_floor import bare_fastapi_post_cpu_us
from genbus.contracts import GENERATIONS_STREAM, SUBMITTED, GenerationSubmitted
from genbus.contracts.topology import API_SUBMITTED
from genbus.runtime.consumer import Delivery, register_consumer
from genbus.runtime.db import create_engine
from genbus.runtime.jetstream import consumer_config, provision
from genbus.runtime.nats_client import broker_access, connect_nats
from genbus.runtime.publisher import encode_event
from genbus.runtime.service import make_broker
from genbus.runtime.settings import RuntimeSettings

NAME = "unit_costs"
DATABASE_KEYS = (
    "sqlalchemy_transaction_us",
    "asyncpg_transaction_us",
    "sqlalchemy_statement_us",
    "asyncpg_statement_us",
)
MESSAGE_KEYS = ("genbus_consumer_message_us", "faststream_message_us", "nats_py_message_us")
BATCH = 64


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _cpu_us_per(n: int, work: Callable[[], Awaitable[None]]) -> float:
    started = _cpu_s()
    await work()
    return (_cpu_s() - started) / n * 1e6


async def _database_costs(database_url: str, n: int) -> dict[str, float]:
    engine = create_engine(database_url, timeouts=RuntimeSettings().db_timeouts())
    update = text("UPDATE bench_unit_costs SET v = v + 1 WHERE id = :id")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE bench_unit_costs (id int PRIMARY KEY, v int)"))
            await conn.execute(text("INSERT INTO bench_unit_costs VALUES (1, 0)"))

        async def sqlalchemy_transactions() -> None:
            for _ in range(n):
                async with engine.begin() as conn:
                    await conn.execute(update, {"id": 1})

        async def sqlalchemy_statements() -> None:
            async with engine.begin() as conn:
                for _ in range(n):
                    await conn.execute(update, {"id": 1})

        costs = {
            "sqlalchemy_transaction_us": await _cpu_us_per(n, sqlalchemy_transactions),
            "sqlalchemy_statement_us": await _cpu_us_per(n, sqlalchemy_statements),
        }
    finally:
        await engine.dispose()

    conn = await asyncpg.connect(database_url)
    raw_update = "UPDATE bench_unit_costs SET v = v + 1 WHERE id = $1"
    try:

        async def asyncpg_transactions() -> None:
            for _ in range(n):
                async with conn.transaction():
                    await conn.execute(raw_update, 1)

        async def asyncpg_statements() -> None:
            async with conn.transaction():
                for _ in range(n):
                    await conn.execute(raw_update, 1)

        costs["asyncpg_transaction_us"] = await _cpu_us_per(n, asyncpg_transactions)
        costs["asyncpg_statement_us"] = await _cpu_us_per(n, asyncpg_statements)
        await conn.execute("DROP TABLE bench_unit_costs")
    finally:
        await conn.close()
    return costs


def _submitted() -> GenerationSubmitted:
    now = datetime.now(UTC)
    return GenerationSubmitted(
        event_id=uuid4(),
        occurred_at=now,
        generation_id=uuid4(),
        user_id="bench",
        provider_id="sim",
        operation_type="text_to_image",
        account_id="bench",
        provider_job_id="bench",
        attempt=1,
        deadline_at=now + timedelta(hours=1),
    )


async def _fill(js: Any, n: int) -> None:
    """`n` fresh events on the stream, and a fresh consumer to read them."""
    await provision(js, (API_SUBMITTED,))
    await js.purge_stream(GENERATIONS_STREAM.name)
    await js.delete_consumer(GENERATIONS_STREAM.name, API_SUBMITTED.durable)
    await provision(js, (API_SUBMITTED,))
    messages = [encode_event(SUBMITTED, _submitted()) for _ in range(n)]
    await asyncio.gather(*(js.publish(m.subject, m.payload, headers=m.headers) for m in messages))


async def _consume_raw(nc: Any, n: int) -> None:
    sub = await nc.jetstream().pull_subscribe_bind(
        API_SUBMITTED.durable, stream=GENERATIONS_STREAM.name
    )
    seen = 0
    while seen < n:
        for msg in await sub.fetch(BATCH, timeout=10):
            GenerationSubmitted.model_validate_json(msg.data)
            await msg.ack()
            seen += 1
    await sub.unsubscribe()


async def _consume_with(broker: NatsBroker, done: asyncio.Event) -> None:
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        await broker.stop()


def _counter(n: int) -> tuple[asyncio.Event, Callable[[], None]]:
    done = asyncio.Event()
    seen = 0

    def count() -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            done.set()

    if n == 0:
        done.set()
    return done, count


def _bare_broker(nats_url: str, count: Callable[[], None]) -> NatsBroker:
    broker = NatsBroker(nats_url, logger=None, **broker_access(nats_url))

    @broker.subscriber(
        API_SUBMITTED.filter_subject,
        stream=JStream(GENERATIONS_STREAM.name, declare=False),
        durable=API_SUBMITTED.durable,
        config=consumer_config(API_SUBMITTED),
        pull_sub=PullSub(batch_size=BATCH, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
    )
    async def handle(message: NatsMessage) -> None:
        GenerationSubmitted.model_validate_json(message.raw_message.data)
        await message.ack()
        count()

    return broker


def _genbus_broker(nats_url: str, count: Callable[[], None]) -> NatsBroker:
    broker = make_broker(nats_url, "bench-unit-costs")

    async def handle(_: Delivery[GenerationSubmitted]) -> None:
        count()

    register_consumer(broker, API_SUBMITTED, handle, batch_size=BATCH)
    return broker


async def _broker_cost_us(
    js: Any,
    nats_url: str,
    n: int,
    make: Callable[[str, Callable[[], None]], NatsBroker],
) -> float:
    """CPU per message of consuming `n`, less what starting and stopping the broker costs."""
    await _fill(js, 0)
    done, count = _counter(0)
    idle = make(nats_url, count)
    overhead_s = await _cpu_us_per(1, lambda: _consume_with(idle, done)) / 1e6
    await _fill(js, n)
    done, count = _counter(n)
    busy = make(nats_url, count)
    total_s = await _cpu_us_per(1, lambda: _consume_with(busy, done)) / 1e6
    return max(0.0, total_s - overhead_s) / n * 1e6


async def _consumer_costs(nats_url: str, n: int) -> dict[str, float]:
    nc = await connect_nats(nats_url)
    js = nc.jetstream()
    costs: dict[str, float] = {}
    try:
        await _fill(js, n)
        costs["nats_py_message_us"] = await _cpu_us_per(n, lambda: _consume_raw(nc, n))
        costs["faststream_message_us"] = await _broker_cost_us(js, nats_url, n, _bare_broker)
        costs["genbus_consumer_message_us"] = await _broker_cost_us(js, nats_url, n, _genbus_broker)
        await js.delete_consumer(GENERATIONS_STREAM.name, API_SUBMITTED.durable)
    finally:
        await nc.close()
    return costs


async def run(ctx: Context) -> ScenarioResult:
    n = ctx.scale.unit_cost_samples
    result = ScenarioResult(
        NAME,
        f"CPU of this process per operation, {n} operations each, on the bench's NATS and "
        "Postgres with no genbus system running; a bare FastAPI POST: its server's CPU",
    )
    ctx.stack.retire()
    database_url = await ctx.stack.scratch_database("bench_unit_costs")
    await ctx.stack.reset_jetstream()
    started = time.monotonic()
    costs = await _database_costs(database_url, n)
    costs |= await _consumer_costs(ctx.stack.admin_nats_url, n)
    costs["bare_fastapi_post_us"] = await bare_fastapi_post_cpu_us(n)
    await ctx.stack.reset_jetstream()
    labels = {
        "sqlalchemy_transaction_us": "transaction of one UPDATE, SQLAlchemy async engine",
        "asyncpg_transaction_us": "transaction of one UPDATE, asyncpg",
        "sqlalchemy_statement_us": "one UPDATE in an open transaction, SQLAlchemy",
        "asyncpg_statement_us": "one UPDATE in an open transaction, asyncpg",
        "genbus_consumer_message_us": "one message consumed and acked, genbus consumer stack",
        "faststream_message_us": "one message consumed and acked, bare FastStream",
        "nats_py_message_us": "one message consumed and acked, nats-py",
        "bare_fastapi_post_us": "one POST to a bare FastAPI app (validated body in, 201 JSON "
        "out; no auth, database or middlewares), uvicorn's CPU",
    }
    for key, label in labels.items():
        result.add(Figure(label, costs[key], "µs"))
    await asyncio.to_thread(
        plot,
        ctx.png(NAME),
        "unit costs: CPU per operation",
        [
            Bars("µs of CPU per operation", {labels[k]: costs[k] for k in DATABASE_KEYS}),
            Bars(
                "µs of CPU per message consumed and acked",
                {labels[k]: costs[k] for k in MESSAGE_KEYS},
            ),
            Bars(
                "µs of server CPU per POST",
                {labels["bare_fastapi_post_us"]: costs["bare_fastapi_post_us"]},
            ),
        ],
    )
    result.details = {"cpu_us": costs, "operations": n, "took_s": time.monotonic() - started}
    return result

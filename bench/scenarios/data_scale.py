"""data scale: reads with many generations stored, and a claim with many jobs queued.

- Generations are bulk-loaded with COPY into `api.generations` (terminal statuses, created over
  the last 180 days, 10 % of them the bench user's, the rest spread over 1,000 other users), then
  ANALYZEd. Measured one request at a time: the first page of the bench user's list through the
  API (or, when the list endpoint does not exist, the equivalent keyset SQL query) and a get by id.
- Queued jobs are COPYed into `dispatcher.dispatch_jobs` with the dispatcher process stopped (it
  would claim them), and the repository's `claim_next` is timed in a transaction that is rolled
  back, with the small and then the large queue.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.plot import Boxes, plot
from bench.report import Figure, ScenarioResult, Target
from bench.sampler import ProcessSampler
from bench.scenarios.common import Context, other_load_figure, rounded
from bench.scenarios.data_scale_rows import (
    BENCH_USER,
    copy_rows,
    generation_rows,
    job_rows,
    request_template,
)
from bench.stack import RunningSystem, pipeline_spec
from bench.stats import summary
from genbus.runtime.db import create_engine
from genbus.runtime.settings import RuntimeSettings

NAME = "data_scale"
LIST_PATH = "/api/v1/generations"
KEYSET_SQL = (
    "SELECT * FROM api.generations WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 21"
)
GET_SQL = "SELECT * FROM api.generations WHERE id = $1 AND user_id = $2"


async def _timed(call: Callable[[], Any], samples: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        await call()
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
    return out


async def _explain(conn: asyncpg.Connection, sql: str, *args: Any) -> list[str]:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    return [r[0] for r in rows]


class StatementTimer:
    """Per-statement times of everything an engine executes (SQLAlchemy cursor events)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.last: dict[str, tuple[str, Any]] = {}
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)

    @staticmethod
    def key(statement: str) -> str:
        return re.sub(r"\s+", " ", statement).strip()[:90]

    def _before(self, conn: Any, _cursor: Any, *_: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        key = self.key(statement)
        self.times[key].append(time.perf_counter() - conn.info.pop("bench_t0"))
        self.last[key] = (statement, parameters)

    def reset(self) -> None:
        self.times.clear()

    def summary(self) -> dict[str, dict[str, float]]:
        return {k: summary(v, 1000.0) for k, v in self.times.items()}


async def _claims(engine: AsyncEngine, samples: int) -> list[float]:
    from genbus.dispatcher.adapters.repository import JobRepository

    async def once() -> None:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            try:
                claim = await JobRepository(conn).claim_next("bench", 30.0)
                if claim is None:
                    raise RuntimeError("claim_next found nothing to claim")
            finally:
                await transaction.rollback()

    return await _timed(once, samples)


async def _explain_statement(engine: AsyncEngine, statement: str, parameters: Any) -> list[str]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            result = await conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
            )
            return [row[0] for row in result]
        finally:
            await transaction.rollback()


# -- scenario ----------------------------------------------------------------------------------


async def run(ctx: Context) -> ScenarioResult:
    scale = ctx.scale
    system = await ctx.stack.system(pipeline_spec())
    result = ScenarioResult(
        NAME,
        f"{scale.stored_generations:,} generations stored; claim with "
        f"{scale.queued_small:,} vs {scale.queued_large:,} jobs queued",
    )
    try:
        await _reads(ctx, system, result)
        await _claim_cost(ctx, system, result)
    finally:
        # The dispatcher was stopped and the tables hold bulk rows: no later scenario reuses this.
        await asyncio.to_thread(ctx.stack.retire)
    _plot(ctx, result)
    return result


async def _reads(ctx: Context, system: RunningSystem, result: ScenarioResult) -> None:
    scale = ctx.scale
    samples = scale.query_samples
    conn = await asyncpg.connect(system.database_url)
    try:
        rows = generation_rows(scale.stored_generations)
        mine: list[uuid.UUID] = []

        def keep(source: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for row in source:
                if row["user_id"] == BENCH_USER and len(mine) < 5_000:
                    mine.append(row["id"])
                yield row

        load_s = await copy_rows(conn, "api", "generations", keep(rows))
        stored = int(await conn.fetchval("SELECT count(*) FROM api.generations"))
        bench_user_rows = int(
            await conn.fetchval(
                "SELECT count(*) FROM api.generations WHERE user_id = $1", BENCH_USER
            )
        )
        list_sql_statement = await conn.prepare(KEYSET_SQL)
        get_sql_statement = await conn.prepare(GET_SQL)
        ids = iter(random.Random(3).choices(mine, k=samples + 100))
        list_sql = await _timed(lambda: list_sql_statement.fetch(BENCH_USER), samples)
        get_sql = await _timed(lambda: get_sql_statement.fetch(next(ids), BENCH_USER), samples)
        plans = {
            "list": await _explain(conn, KEYSET_SQL, BENCH_USER),
            "get": await _explain(conn, GET_SQL, mine[0], BENCH_USER),
        }
    finally:
        await conn.close()

    async with httpx.AsyncClient(base_url=system.api_url, timeout=10.0) as api:
        probe = await api.get(LIST_PATH, params={"limit": 20})
        list_http: list[float] = []
        with ProcessSampler(system.pids()) as sampler:
            if probe.status_code == 200:
                list_http = await _timed(
                    lambda: _ok(api.get(LIST_PATH, params={"limit": 20})), samples
                )
            http_ids = iter(random.Random(4).choices(mine, k=samples + 100))
            get_http = await _timed(lambda: _ok(api.get(f"{LIST_PATH}/{next(http_ids)}")), samples)

    list_http_ms, list_sql_ms = summary(list_http, 1e3), summary(list_sql, 1e3)
    get_http_ms, get_sql_ms = summary(get_http, 1e3), summary(get_sql, 1e3)
    stored_label = f"{stored:,} stored"
    if list_http:
        result.add(
            Figure(
                "list first page (GET ?limit=20) p99",
                list_http_ms["p99"],
                "ms",
                Target("<=", 20, "ms"),
                note=stored_label,
            )
        )
    else:
        result.add(
            Figure(
                "list first page p99 (SQL keyset query)",
                list_sql_ms["p99"],
                "ms",
                Target("<=", 20, "ms"),
                note=f"{stored_label}; no list endpoint yet (GET answered {probe.status_code})",
            )
        )
    result.add(
        Figure(
            "get by id (GET /{id}) p99",
            get_http_ms["p99"],
            "ms",
            Target("<=", 5, "ms"),
            note=stored_label,
        )
    )
    cpu = sampler.mean_cpu()
    result.add(other_load_figure(cpu))
    result.details.update(
        rounded(
            {
                "http_reads_mean_cpu_percent_of_one_core": cpu,
                "stored_generations": stored,
                "bench_user_generations": bench_user_rows,
                "bulk_load_s": load_s,
                "bulk_load_rows_per_s": scale.stored_generations / max(load_s, 1e-9),
                "list_endpoint_status": probe.status_code,
                "list_http_ms": list_http_ms,
                "list_sql_ms": list_sql_ms,
                "get_http_ms": get_http_ms,
                "get_sql_ms": get_sql_ms,
                "plans": plans,
            }
        )
    )
    result.series.update(
        rounded(
            {
                "list_http_ms": [v * 1e3 for v in list_http],
                "list_sql_ms": [v * 1e3 for v in list_sql],
                "get_http_ms": [v * 1e3 for v in get_http],
                "get_sql_ms": [v * 1e3 for v in get_sql],
            }
        )
    )


async def _ok(request: Any) -> None:
    response = await request
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url} answered {response.status_code}")


async def _claim_cost(ctx: Context, system: RunningSystem, result: ScenarioResult) -> None:
    scale = ctx.scale
    await asyncio.to_thread(system.system.processes["dispatcher"].stop)
    conn = await asyncpg.connect(system.database_url)
    engine = create_engine(
        system.database_url, pool_size=2, timeouts=RuntimeSettings().db_timeouts()
    )
    timer = StatementTimer(engine)
    try:
        queued = int(
            await conn.fetchval(
                "SELECT count(*) FROM dispatcher.dispatch_jobs WHERE state = 'queued'"
            )
        )
        if queued:
            raise RuntimeError(f"{queued} jobs still queued before the claim test")
        other_rows = int(await conn.fetchval("SELECT count(*) FROM dispatcher.dispatch_jobs"))
        template = request_template()
        sizes: dict[str, Any] = {}
        claims: dict[int, list[float]] = {}
        for size, previous, seed in (
            (scale.queued_small, 0, 1),
            (scale.queued_large, scale.queued_small, 2),
        ):
            load_s = await copy_rows(
                conn, "dispatcher", "dispatch_jobs", job_rows(size - previous, template, seed)
            )
            timer.reset()
            claims[size] = await _claims(engine, scale.query_samples)
            slowest = max(timer.times, key=lambda k: sum(timer.times[k]))
            statement, parameters = timer.last[slowest]
            sizes[str(size)] = {
                "load_s": load_s,
                "claim_ms": summary(claims[size], 1e3),
                "statements_ms": timer.summary(),
                "slowest_statement_plan": await _explain_statement(engine, statement, parameters),
            }
    finally:
        await conn.close()
        await engine.dispose()
    small = summary(claims[scale.queued_small], 1e3)
    large = summary(claims[scale.queued_large], 1e3)
    ratio = large["p50"] / small["p50"]
    result.add(
        Figure(
            f"claim cost, {scale.queued_large:,} vs {scale.queued_small:,} queued (p50 ratio)",
            ratio,
            "x",
            Target("<=", 1.5, "x"),
            note=f"p50 {small['p50']:.2f} → {large['p50']:.2f} ms",
        )
    )
    result.add(
        Figure(
            f"claim p99 with {scale.queued_large:,} queued",
            large["p99"],
            "ms",
            note=f"{small['p99']:.2f} ms with {scale.queued_small:,}",
        )
    )
    result.details.update(
        rounded(
            {
                "claim": {
                    "finished_jobs_in_table": other_rows,
                    "p50_ratio": ratio,
                    "p99_ratio": large["p99"] / small["p99"],
                    "by_queue_size": sizes,
                }
            }
        )
    )
    result.series.update(
        rounded({f"claim_ms_{size}": [v * 1e3 for v in values] for size, values in claims.items()})
    )


def _plot(ctx: Context, result: ScenarioResult) -> None:
    series = result.series
    plot(
        ctx.png(NAME),
        f"data scale: {result.details.get('stored_generations', 0):,} generations stored",
        [
            Boxes(
                "ms (log)",
                {
                    "list page (HTTP)": series.get("list_http_ms", []),
                    "list page (SQL)": series.get("list_sql_ms", []),
                    "get by id (HTTP)": series.get("get_http_ms", []),
                    "get by id (SQL)": series.get("get_sql_ms", []),
                },
                logy=True,
                hlines={"list p99 target": 20, "get p99 target": 5},
            ),
            Boxes(
                "claim_next (ms)",
                {
                    f"{k.removeprefix('claim_ms_')} queued": v
                    for k, v in series.items()
                    if k.startswith("claim_ms_")
                },
            ),
        ],
    )

"""Read-only queries of the web console: throughput over the last minutes, generations search,
one generation's row. Never a credential; every value a bound parameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

#: The columns a generation is shown with (the request's params are not: they may be large).
_JOB_COLUMNS = """generation_id, user_id, provider_id, operation_type, priority, state, attempt,
    submit_tries, account_id, provider_job_id, cancel_requested, last_error, scheduled_at,
    due_at, deadline_at, created_at, updated_at, submit_started_at, submitted_at, finished_at"""


@dataclass(frozen=True)
class JobFilter:
    generation_id: UUID | None = None
    user_id: str | None = None
    state: str | None = None
    provider_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 50


class ConsoleReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def throughput(self, minutes: int) -> list[Mapping[str, Any]]:
        """Per provider and minute: jobs completed and failed (finished in that minute)."""
        return await self._rows(
            """
            SELECT provider_id,
                   date_trunc('minute', finished_at) AS minute,
                   count(*) FILTER (WHERE state = 'completed') AS completed,
                   count(*) FILTER (WHERE state = 'failed') AS failed
              FROM dispatcher.dispatch_jobs
             WHERE finished_at > date_trunc('minute', now()) - make_interval(mins => :m)
               AND state IN ('completed', 'failed', 'cancelled')
             GROUP BY provider_id, minute
             ORDER BY provider_id, minute
            """,
            {"m": minutes - 1},
        )

    async def in_flight(self) -> Mapping[str, int]:
        """Jobs claimed or submitted now, per provider."""
        rows = await self._rows(
            """
            SELECT provider_id, count(*) AS n FROM dispatcher.dispatch_jobs
             WHERE state IN ('claimed', 'submitted') GROUP BY provider_id
            """,
            {},
        )
        return {r["provider_id"]: r["n"] for r in rows}

    async def search(self, where: JobFilter) -> list[Mapping[str, Any]]:
        """Newest first."""
        return await self._rows(
            f"""
            SELECT {_JOB_COLUMNS} FROM dispatcher.dispatch_jobs
             WHERE (CAST(:g AS uuid) IS NULL OR generation_id = :g)
               AND (CAST(:u AS text) IS NULL OR user_id = :u)
               AND (CAST(:s AS text) IS NULL OR state = :s)
               AND (CAST(:p AS text) IS NULL OR provider_id = :p)
               AND (CAST(:after AS timestamptz) IS NULL OR created_at >= :after)
               AND (CAST(:before AS timestamptz) IS NULL OR created_at < :before)
             ORDER BY created_at DESC, seq DESC
             LIMIT :limit
            """,
            {
                "g": where.generation_id,
                "u": where.user_id,
                "s": where.state,
                "p": where.provider_id,
                "after": where.created_after,
                "before": where.created_before,
                "limit": where.limit,
            },
        )

    async def job(self, generation_id: UUID) -> Mapping[str, Any] | None:
        rows = await self.search(JobFilter(generation_id=generation_id, limit=1))
        return rows[0] if rows else None

    async def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(text(sql), dict(params))
            return [dict(row._mapping) for row in result]

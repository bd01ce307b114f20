"""Queue-wide reads and sweeps: overdue jobs, purges, the next wake-up, depth per provider."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import text

from genbus.dispatcher.adapters.job_rows import (
    SNAPSHOT_SQL,
    JobQueries,
    JobSnapshot,
    QueueDepth,
    snapshot_from_row,
)


class JobSweeps(JobQueries):
    """What the reconciler, the purge and the gauges ask of the whole queue."""

    async def overdue_queued(self, limit: int = 500) -> list[UUID]:
        rows = await self._conn.execute(
            text(
                """
                SELECT generation_id FROM dispatcher.dispatch_jobs
                 WHERE state = 'queued' AND deadline_at < now()
                 ORDER BY deadline_at LIMIT :limit
                   FOR UPDATE SKIP LOCKED
                """
            ),
            {"limit": limit},
        )
        return [r.generation_id for r in rows]

    async def overdue_submitted(self, grace_s: float, limit: int = 500) -> list[JobSnapshot]:
        """Submitted jobs `grace_s` past their deadline (nothing ended them), locked."""
        rows = await self._conn.execute(
            text(
                f"""
                {SNAPSHOT_SQL}
                 WHERE j.state = 'submitted'
                   AND j.deadline_at < now() - make_interval(secs => :grace)
                 ORDER BY j.deadline_at LIMIT :limit
                   FOR UPDATE OF j SKIP LOCKED
                """
            ),
            {"grace": grace_s, "limit": limit},
        )
        return [snapshot_from_row(r) for r in rows]

    async def purge_finished(self, retention_s: float, limit: int = 1000) -> int:
        """Delete at most `limit` jobs that ended (completed, failed, cancelled) more than
        `retention_s` ago and hold no slot any more; rows another transaction holds are left
        for the next pass. Returns how many went."""
        result = await self._conn.execute(
            text(
                """
                DELETE FROM dispatcher.dispatch_jobs
                 WHERE generation_id IN (
                       SELECT generation_id FROM dispatcher.dispatch_jobs
                        WHERE state IN ('completed', 'failed', 'cancelled')
                          AND finished_at < now() - make_interval(secs => :retention)
                          AND (slot_held_until IS NULL OR slot_held_until <= now())
                        LIMIT :limit
                          FOR UPDATE SKIP LOCKED)
                """
            ),
            {"retention": retention_s, "limit": limit},
        )
        return int(result.rowcount)

    async def next_wake_at(self) -> datetime | None:
        """The earliest future moment a queued job becomes due, an account leaves cooldown or
        its breaker half-opens, a lease expires or a held slot frees."""
        value = await self._conn.scalar(
            text(
                """
                SELECT LEAST(
                    (SELECT min(due_at) FROM dispatcher.dispatch_jobs
                      WHERE state = 'queued' AND due_at > now()),
                    (SELECT min(cooldown_until) FROM dispatcher.provider_accounts
                      WHERE status = 'active' AND cooldown_until > now()),
                    (SELECT min(breaker_open_until) FROM dispatcher.provider_accounts
                      WHERE status = 'active' AND breaker_open_until > now()),
                    (SELECT min(lease_until) FROM dispatcher.dispatch_jobs
                      WHERE state = 'claimed'),
                    (SELECT min(slot_held_until) FROM dispatcher.dispatch_jobs
                      WHERE slot_held_until > now()))
                """
            )
        )
        return value if isinstance(value, datetime) else None

    async def queue_depth(self) -> list[QueueDepth]:
        """Per provider: queued jobs, how many are due now, how long the oldest due one waits.

        Served by the partial index on queued jobs.
        """
        rows = await self._conn.execute(
            text(
                """
                SELECT provider_id,
                       count(*) AS queued,
                       count(*) FILTER (WHERE due_at <= now()) AS due,
                       EXTRACT(EPOCH FROM now() - min(COALESCE(scheduled_at, created_at))
                                                 FILTER (WHERE due_at <= now()))
                           AS oldest_waiting_s
                  FROM dispatcher.dispatch_jobs
                 WHERE state = 'queued'
                 GROUP BY provider_id
                 ORDER BY provider_id
                """
            )
        )
        return [
            QueueDepth(
                r.provider_id,
                r.queued,
                r.due,
                float(r.oldest_waiting_s) if r.oldest_waiting_s is not None else None,
            )
            for r in rows
        ]

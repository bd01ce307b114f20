"""Why a queued job waits, as the dispatcher tells the api (`GenerationWaiting`).

A reason is told once per change: `note_wait` counts it on the job (`wait_sequence`, the
event's sequence) only when it differs from the last one told (or `repeat`: a retry's new
time), so no scheduling pass or poll publishes the same reason again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import text

from genbus.dispatcher.adapters.job_rows import JobQueries


@dataclass(frozen=True)
class NotedWait:
    """A reason to tell the api: its sequence for the job, and the job's original request."""

    sequence: int
    request: dict[str, Any]


class JobWaits(JobQueries):
    async def note_wait(
        self, generation_id: UUID, reason: str, *, repeat: bool = False
    ) -> NotedWait | None:
        """Record `reason` as told for a job not yet submitted; None when it was already the
        last reason told (and not `repeat`) or the job is past waiting."""
        row = (
            await self._conn.execute(
                text(
                    """
                    UPDATE dispatcher.dispatch_jobs
                       SET wait_reason = :r, wait_sequence = wait_sequence + 1
                     WHERE generation_id = :g AND state IN ('queued', 'claimed')
                       AND (:repeat OR wait_reason IS DISTINCT FROM :r)
                    RETURNING wait_sequence, request
                    """
                ),
                {"g": generation_id, "r": reason, "repeat": repeat},
            )
        ).first()
        return NotedWait(row.wait_sequence, dict(row.request)) if row else None

    async def reasons_at_intake(self, generation_ids: Sequence[UUID]) -> list[tuple[UUID, str]]:
        """Queued jobs among `generation_ids` that cannot run now whoever frees a slot: no
        account of their provider is active with its breaker closed (`provider_unavailable`),
        or their user is at its in-flight cap (`user_at_capacity`)."""
        if not generation_ids:
            return []
        rows = await self._conn.execute(
            text(
                """
                SELECT j.generation_id,
                       CASE WHEN NOT EXISTS (
                                SELECT 1 FROM dispatcher.provider_accounts a
                                 WHERE a.provider_id = j.provider_id AND a.status = 'active'
                                   AND (a.breaker_open_until IS NULL
                                        OR a.breaker_open_until <= now()))
                            THEN 'provider_unavailable'
                            WHEN l.in_flight >= l.max_in_flight THEN 'user_at_capacity'
                       END AS reason
                  FROM dispatcher.dispatch_jobs j
                  JOIN dispatcher.user_lanes l
                    ON l.user_id = j.user_id AND l.priority = j.priority
                 WHERE j.generation_id = ANY(:ids) AND j.state = 'queued'
                 ORDER BY j.seq
                """
            ),
            {"ids": list(generation_ids)},
        )
        return [(r.generation_id, r.reason) for r in rows if r.reason is not None]

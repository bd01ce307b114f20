"""A job's life outside its claim: queued from a request, locked, cancelled, finished."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import text

from genbus.contracts import GenerationRequested
from genbus.dispatcher.adapters.job_rows import (
    SNAPSHOT_SQL,
    JobQueries,
    JobSnapshot,
    LeaseLost,
    json_param,
    snapshot_from_row,
)
from genbus.dispatcher.domain.model import ClaimedJob, JobState

#: The advisory lock class of a user's fair-share lanes (the trigger of migration 0008).
LANES_LOCK = 727_011


class JobLifecycle(JobQueries):
    """Intake of requested generations and the ends of jobs."""

    async def lock_users(self, user_ids: Iterable[str]) -> None:
        """Take the fair-share lanes' lock of each user, in user order, before a transaction
        that changes jobs of several users (the lanes' trigger takes them one by one in the
        order of the rows, and two such transactions would otherwise deadlock)."""
        users = sorted(set(user_ids))
        if len(users) < 2:
            return
        await self._conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(:c, hashtext(u)) "
                "FROM unnest(CAST(:users AS text[])) WITH ORDINALITY AS t(u, i) ORDER BY i"
            ),
            {"c": LANES_LOCK, "users": users},
        )

    async def lock_users_of(self, generation_ids: Iterable[UUID]) -> None:
        """`lock_users` for the users of these jobs (a sweep's batch)."""
        ids = list(generation_ids)
        if len(ids) < 2:
            return
        users = await self._conn.execute(
            text(
                "SELECT DISTINCT user_id FROM dispatcher.dispatch_jobs "
                "WHERE generation_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        await self.lock_users(r.user_id for r in users)

    async def ingest(self, event: GenerationRequested) -> bool:
        """Queue a requested generation; False when it was already known (a redelivery)."""
        result = await self._conn.execute(
            text(
                """
                INSERT INTO dispatcher.dispatch_jobs
                    (generation_id, user_id, provider_id, operation_type, request, priority,
                     scheduled_at, due_at, deadline_at, state, attempt, submit_tries,
                     cancel_requested)
                VALUES (:g, :u, :p, :o, CAST(:r AS jsonb), :prio, :sched,
                        COALESCE(:sched, LEAST(:arrived, now())),
                        :deadline, 'queued', 0, 0, false)
                ON CONFLICT (generation_id) DO NOTHING
                """
            ),
            {
                "g": event.generation_id,
                "u": event.user_id,
                "p": event.provider_id,
                "o": event.operation_type,
                "r": event.model_dump_json(),
                "prio": event.priority,
                "sched": event.scheduled_at,
                # Due from when the api accepted it (never later than now, whatever the
                # clocks): arrival order does not depend on when, or in which batch, it was
                # ingested here.
                "arrived": event.occurred_at,
                "deadline": event.deadline_at,
            },
        )
        return bool(result.rowcount)

    async def fail_claimed(
        self, claim: ClaimedJob, error: dict[str, Any], *, hold_slot_s: float = 0.0
    ) -> JobSnapshot | None:
        """claimed → failed by its holder, releasing the slot (`hold_slot_s` later: see `finish`).

        LeaseLost if the claim is no longer held.
        """
        job = await self._finish(
            claim.generation_id,
            JobState.FAILED,
            error,
            (JobState.CLAIMED,),
            claim.lease_token,
            hold_slot_s,
            (JobState.CLAIMED,),
        )
        if job is None:
            raise LeaseLost(str(claim.generation_id))
        return job

    async def finish(
        self,
        generation_id: UUID,
        state: JobState,
        error: dict[str, Any] | None = None,
        *,
        only_from: tuple[JobState, ...] | None = None,
        hold_slot_s: float = 0.0,
    ) -> JobSnapshot | None:
        """Move a job to a terminal state, releasing its slot. None if it was already terminal.

        The first terminal state wins: this is the one place a slot is released, exactly once.
        `hold_slot_s`: a submitted job ended without the provider's word may still be running
        there; its slot is released only that much later, so the account never runs more jobs
        than its `max_concurrent`.
        """
        allowed = only_from or (JobState.QUEUED, JobState.CLAIMED, JobState.SUBMITTED)
        return await self._finish(
            generation_id, state, error, allowed, None, hold_slot_s, (JobState.SUBMITTED,)
        )

    async def _finish(
        self,
        generation_id: UUID,
        state: JobState,
        error: dict[str, Any] | None,
        allowed: tuple[JobState, ...],
        lease_token: UUID | None,
        hold_slot_s: float = 0.0,
        hold_from_states: tuple[JobState, ...] = (),
    ) -> JobSnapshot | None:
        row = (
            await self._conn.execute(
                text(
                    """
                    UPDATE dispatcher.dispatch_jobs
                       SET state = :state, finished_at = now(), lease_owner = NULL,
                           lease_until = NULL, lease_token = NULL, updated_at = now(),
                           slot_held_until = CASE
                               WHEN :hold > 0 AND state = ANY(:hold_from)
                               THEN now() + make_interval(secs => :hold) END,
                           last_error = COALESCE(CAST(:err AS jsonb), last_error)
                     WHERE generation_id = :g AND state = ANY(:allowed)
                       AND (CAST(:token AS uuid) IS NULL OR lease_token = :token)
                    RETURNING generation_id, state, account_id, provider_job_id, attempt,
                              request, provider_id
                    """
                ),
                {
                    "g": generation_id,
                    "state": state.value,
                    "err": json_param(error) if error else None,
                    "allowed": [s.value for s in allowed],
                    "token": lease_token,
                    "hold": hold_slot_s,
                    "hold_from": [s.value for s in hold_from_states],
                },
            )
        ).first()
        return snapshot_from_row(row) if row else None

    async def lock_job(self, generation_id: UUID) -> JobSnapshot | None:
        row = (
            await self._conn.execute(
                text(
                    f"""
                    {SNAPSHOT_SQL}
                     WHERE j.generation_id = :g
                       FOR UPDATE OF j
                    """
                ),
                {"g": generation_id},
            )
        ).first()
        return snapshot_from_row(row) if row else None

    async def flag_cancel_requested(self, generation_id: UUID) -> None:
        await self._conn.execute(
            text(
                "UPDATE dispatcher.dispatch_jobs SET cancel_requested = true, updated_at = now() "
                "WHERE generation_id = :g"
            ),
            {"g": generation_id},
        )

    async def insert_cancelled_tombstone(
        self, generation_id: UUID, request: dict[str, Any]
    ) -> bool:
        """Remember a cancel that arrived before its request, so the request is never dispatched."""
        result = await self._conn.execute(
            text(
                """
                INSERT INTO dispatcher.dispatch_jobs
                    (generation_id, user_id, provider_id, operation_type, request, priority,
                     due_at, deadline_at, state, attempt, submit_tries, cancel_requested,
                     finished_at)
                VALUES (:g, :u, :p, :o, CAST(:r AS jsonb), 0, now(), now(), 'cancelled', 0, 0,
                        true, now())
                ON CONFLICT (generation_id) DO NOTHING
                """
            ),
            {
                "g": generation_id,
                "u": request["user_id"],
                "p": request["provider_id"],
                "o": request["operation_type"],
                "r": json_param(request),
            },
        )
        return bool(result.rowcount)

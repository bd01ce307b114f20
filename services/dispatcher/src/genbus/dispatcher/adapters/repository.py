"""The dispatch queue's SQL (`uow.jobs`): queueing, claiming with a fenced lease, recording.

An account's busy slots are never stored: they are the count of its jobs in a slot-holding
state, changed in the same transaction as the job. Reservations lock the account row, so
concurrent replicas can never reserve more than `max_concurrent` slots of one account.

A claim is fenced: it carries a `lease_token`, and every write on a claimed job checks it. A
holder whose lease was recovered by someone else (it stalled, or it was presumed dead) gets
`LeaseLost` from its next write and records nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.contracts import GenerationRequested
from genbus.dispatcher.adapters.accounts_store import AccountRepository
from genbus.dispatcher.domain.model import ClaimedJob, JobState, rank_accounts, servable_pairs

_CLAIM_COLUMNS = """
    j.generation_id, j.provider_id, j.operation_type, j.account_id, j.attempt, j.submit_tries,
    j.request, j.cancel_requested, j.lease_token, j.submit_started_at,
    a.base_url, a.credentials_ciphertext,
    (a.breaker_failures > 0 OR a.breaker_opened_count > 0) AS breaker_dirty
"""

#: A job with its account's address (base URL, credentials' ciphertext), for `_snapshot`.
_SNAPSHOT_SQL = """
    SELECT j.generation_id, j.state, j.account_id, j.provider_job_id, j.attempt,
           j.request, j.provider_id, a.base_url, a.credentials_ciphertext
      FROM dispatcher.dispatch_jobs j
      LEFT JOIN dispatcher.provider_accounts a ON a.id = j.account_id
"""

#: The fence of every write on a claimed job: still claimed, and by this holder.
_FENCE = "generation_id = :g AND state = 'claimed' AND lease_token = :token"


class LeaseLost(Exception):
    """The claim was recovered by another holder: this one may record nothing about the job."""


class Contended(Exception):
    """Every account that could take the job is being reserved by another replica right now."""


def _claimed(row: Any) -> ClaimedJob:
    return ClaimedJob(
        generation_id=row.generation_id,
        provider_id=row.provider_id,
        operation_type=row.operation_type,
        account_id=row.account_id,
        attempt=row.attempt,
        submit_tries=row.submit_tries,
        request=dict(row.request),
        cancel_requested=row.cancel_requested,
        base_url=row.base_url,
        credentials_ciphertext=row.credentials_ciphertext,
        lease_token=row.lease_token,
        submit_started_at=row.submit_started_at,
        breaker_dirty=row.breaker_dirty,
    )


def _fence(claim: ClaimedJob) -> dict[str, Any]:
    return {"g": claim.generation_id, "token": claim.lease_token}


@dataclass(frozen=True)
class JobSnapshot:
    generation_id: UUID
    state: JobState
    account_id: str | None
    provider_job_id: str | None
    attempt: int
    request: dict[str, Any]
    base_url: str | None
    credentials_ciphertext: str | None
    provider_id: str = ""


@dataclass(frozen=True)
class QueueDepth:
    """Queued jobs of one provider: how many, how many are due, how long the oldest due waits."""

    provider_id: str
    queued: int
    due: int
    oldest_waiting_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "queued": self.queued,
            "due": self.due,
            "oldest_waiting_s": (
                round(self.oldest_waiting_s, 3) if self.oldest_waiting_s is not None else None
            ),
        }


class JobRepository:
    """The dispatch queue, in one transaction (`uow.jobs`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

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

    async def claim_next(
        self, owner: str, lease_s: float, *, skip_providers: Collection[str] = ()
    ) -> ClaimedJob | None:
        """Take the best queued job some free account can serve and reserve that account's slot.

        Order: priority (higher first), then due time (`scheduled_at` or arrival), then arrival.
        Jobs of `skip_providers` (whose bulkhead is full) are left. The claim gets a fresh lease
        token.
        """
        accounts = AccountRepository(self._conn)
        candidates = [c for c in await accounts.available() if c.provider_id not in skip_providers]
        any_op, pairs = servable_pairs(candidates)
        if not any_op and not pairs:
            return None
        job = (
            await self._conn.execute(
                text(
                    """
                    SELECT generation_id, provider_id, operation_type, request
                      FROM dispatcher.dispatch_jobs
                     WHERE state = 'queued' AND due_at <= now()
                       -- Past its deadline a job is failed by the reconciler, never submitted.
                       AND deadline_at > now()
                       AND (provider_id = ANY(:any_op)
                            OR (provider_id || ':' || operation_type) = ANY(:pairs))
                     ORDER BY priority DESC, due_at, seq
                     LIMIT 1
                       FOR UPDATE SKIP LOCKED
                    """
                ),
                {"any_op": any_op, "pairs": pairs},
            )
        ).first()
        if job is None:
            return None
        preferred = job.request.get("preferred_account_id")
        for account in rank_accounts(candidates, job.provider_id, job.operation_type, preferred):
            if await accounts.reserve_slot(account.id):
                # One statement for both rows: the account's last use (for LRU) and the job.
                row = (
                    await self._conn.execute(
                        text(
                            f"""
                            WITH a AS (
                                UPDATE dispatcher.provider_accounts SET last_used_at = now()
                                 WHERE id = :a
                                RETURNING id, base_url, credentials_ciphertext,
                                          breaker_failures, breaker_opened_count)
                            UPDATE dispatcher.dispatch_jobs j
                               SET state = 'claimed', account_id = :a,
                                   attempt = GREATEST(j.attempt, 1),
                                   lease_owner = :owner, lease_token = :token,
                                   lease_until = now() + make_interval(secs => :lease),
                                   submit_started_at = NULL, updated_at = now()
                              FROM a
                             WHERE j.generation_id = :g
                            RETURNING {_CLAIM_COLUMNS}
                            """
                        ),
                        {
                            "a": account.id,
                            "g": job.generation_id,
                            "owner": owner,
                            "token": uuid.uuid4(),
                            "lease": lease_s,
                        },
                    )
                ).one()
                return _claimed(row)
        raise Contended()

    async def recover_expired_lease(self, owner: str, lease_s: float) -> ClaimedJob | None:
        """Take over a claim whose holder stopped renewing it, under a new token.

        Its slot stays reserved. `submit_started_at` tells whether the old holder may have
        reached the provider (the new holder must then resolve, not resubmit blindly).
        """
        row = (
            await self._conn.execute(
                text(
                    f"""
                    UPDATE dispatcher.dispatch_jobs j
                       SET lease_owner = :owner, lease_token = :token,
                           lease_until = now() + make_interval(secs => :lease),
                           updated_at = now()
                      FROM dispatcher.provider_accounts a
                     WHERE a.id = j.account_id
                       AND j.generation_id = (
                           SELECT generation_id FROM dispatcher.dispatch_jobs
                            WHERE state = 'claimed' AND lease_until < now()
                            ORDER BY lease_until
                            LIMIT 1
                              FOR UPDATE SKIP LOCKED)
                    RETURNING {_CLAIM_COLUMNS}
                    """
                ),
                {"owner": owner, "token": uuid.uuid4(), "lease": lease_s},
            )
        ).first()
        return _claimed(row) if row else None

    async def renew_leases(self, claims: Sequence[ClaimedJob], lease_s: float) -> set[UUID]:
        """Extend the leases of `claims` still held; the generation ids whose lease was renewed."""
        if not claims:
            return set()
        rows = await self._conn.execute(
            text(
                """
                UPDATE dispatcher.dispatch_jobs j
                   SET lease_until = now() + make_interval(secs => :lease)
                  FROM unnest(CAST(:ids AS uuid[]), CAST(:tokens AS uuid[])) AS h(g, token)
                 WHERE j.generation_id = h.g AND j.lease_token = h.token
                   AND j.state = 'claimed'
                RETURNING j.generation_id
                """
            ),
            {
                "ids": [c.generation_id for c in claims],
                "tokens": [c.lease_token for c in claims],
                "lease": lease_s,
            },
        )
        return {r.generation_id for r in rows}

    async def record_submit_started(self, claim: ClaimedJob, lease_s: float) -> None:
        """Durably note that a job-creating provider call is about to start (try `submit_tries`).

        From here until `mark_submitted` or `record_refusal`, the provider may have the job.
        """
        await self._record_try(claim, lease_s, started=True)

    async def record_refusal(self, claim: ClaimedJob, lease_s: float) -> None:
        """The provider answered a try with a refusal: nothing was created; count the try."""
        await self._record_try(claim, lease_s, started=False)

    async def _record_try(self, claim: ClaimedJob, lease_s: float, *, started: bool) -> None:
        await self._fenced(
            """
            UPDATE dispatcher.dispatch_jobs
               SET submit_started_at = CASE WHEN :started THEN now() END,
                   submit_tries = :tries,
                   lease_until = now() + make_interval(secs => :lease), updated_at = now()
             WHERE """
            + _FENCE,
            {**_fence(claim), "started": started, "tries": claim.submit_tries, "lease": lease_s},
        )

    async def mark_submitted(self, claim: ClaimedJob, provider_job_id: str) -> bool:
        """claimed → submitted. Returns whether a cancel was requested meanwhile."""
        row = (
            await self._conn.execute(
                text(
                    """
                    UPDATE dispatcher.dispatch_jobs
                       SET state = 'submitted', provider_job_id = :pj, submitted_at = now(),
                           lease_owner = NULL, lease_until = NULL, lease_token = NULL,
                           submit_started_at = NULL, updated_at = now()
                     WHERE """
                    + _FENCE
                    + " RETURNING cancel_requested"
                ),
                {**_fence(claim), "pj": provider_job_id},
            )
        ).first()
        if row is None:
            raise LeaseLost(str(claim.generation_id))
        return bool(row.cancel_requested)

    async def requeue(self, claim: ClaimedJob, delay_s: float, error: dict[str, Any]) -> None:
        """claimed → queued, releasing the slot; dispatched again no sooner than `delay_s`.

        A refusal spends no attempt: the next claim starts its tries afresh.
        """
        await self._fenced(
            """
            UPDATE dispatcher.dispatch_jobs
               SET state = 'queued', account_id = NULL, lease_owner = NULL, lease_until = NULL,
                   lease_token = NULL, submit_started_at = NULL, submit_tries = 0,
                   due_at = now() + make_interval(secs => :delay),
                   last_error = CAST(:err AS jsonb), updated_at = now()
             WHERE """
            + _FENCE,
            {**_fence(claim), "delay": delay_s, "err": _json(error)},
        )

    async def expire_lease(self, claim: ClaimedJob) -> bool:
        """Give a claim up now (shutting down): another holder may recover it at once."""
        result = await self._conn.execute(
            text(
                "UPDATE dispatcher.dispatch_jobs SET lease_until = now(), updated_at = now() "
                "WHERE " + _FENCE
            ),
            _fence(claim),
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
                    "err": _json(error) if error else None,
                    "allowed": [s.value for s in allowed],
                    "token": lease_token,
                    "hold": hold_slot_s,
                    "hold_from": [s.value for s in hold_from_states],
                },
            )
        ).first()
        return _snapshot(row) if row else None

    async def lock_job(self, generation_id: UUID) -> JobSnapshot | None:
        row = (
            await self._conn.execute(
                text(
                    f"""
                    {_SNAPSHOT_SQL}
                     WHERE j.generation_id = :g
                       FOR UPDATE OF j
                    """
                ),
                {"g": generation_id},
            )
        ).first()
        return _snapshot(row) if row else None

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
                "r": _json(request),
            },
        )
        return bool(result.rowcount)

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
                {_SNAPSHOT_SQL}
                 WHERE j.state = 'submitted'
                   AND j.deadline_at < now() - make_interval(secs => :grace)
                 ORDER BY j.deadline_at LIMIT :limit
                   FOR UPDATE OF j SKIP LOCKED
                """
            ),
            {"grace": grace_s, "limit": limit},
        )
        return [_snapshot(r) for r in rows]

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

    async def _fenced(self, statement: str, params: dict[str, Any]) -> None:
        result = await self._conn.execute(text(statement), params)
        if not result.rowcount:
            raise LeaseLost(str(params["g"]))


def _snapshot(row: Any) -> JobSnapshot:
    """A job row; its account's base URL and ciphertext when the statement selected them."""
    mapping = row._mapping
    return JobSnapshot(
        generation_id=row.generation_id,
        state=JobState(row.state),
        account_id=row.account_id,
        provider_job_id=row.provider_job_id,
        attempt=row.attempt,
        request=dict(row.request),
        base_url=mapping.get("base_url"),
        credentials_ciphertext=mapping.get("credentials_ciphertext"),
        provider_id=row.provider_id,
    )


def _json(value: Any) -> str:
    return json.dumps(value, default=str)

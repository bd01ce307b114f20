"""All SQL of the dispatcher: the dispatch queue, slot reservation and account standing.

An account's busy slots are never stored: they are the count of its jobs in a slot-holding
state, changed in the same transaction as the job. Reservations lock the account row, so
concurrent replicas can never reserve more than `max_concurrent` slots of one account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.contracts import GenerationRequested
from genbus.dispatcher.domain.model import (
    AccountCandidate,
    ClaimedJob,
    JobState,
    rank_accounts,
    servable_pairs,
)

_SLOT_STATES = "('claimed', 'submitted')"

#: An account's busy slots (alias `a` for the account row): its jobs holding a slot.
BUSY_SQL = f"""(SELECT count(*) FROM dispatcher.dispatch_jobs j
                 WHERE j.account_id = a.id AND j.state IN {_SLOT_STATES})"""

#: What counts against an account's daily cap: jobs submitted since UTC midnight, plus the
#: ones claimed now (about to be submitted). A job requeued before submission does not count.
USED_TODAY_SQL = """(SELECT count(*) FROM dispatcher.dispatch_jobs j
                      WHERE j.account_id = a.id
                        AND (j.state = 'claimed'
                             OR j.submitted_at >= date_trunc('day', now() AT TIME ZONE 'UTC')
                                                  AT TIME ZONE 'UTC'))"""

_CLAIM_COLUMNS = """
    j.generation_id, j.provider_id, j.operation_type, j.account_id, j.attempt, j.submit_tries,
    j.request, j.cancel_requested, a.base_url, a.credentials_ciphertext
"""


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
    )


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


async def ingest(conn: AsyncConnection, event: GenerationRequested) -> bool:
    """Queue a requested generation; False when it was already known (a redelivery)."""
    result = await conn.execute(
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
            # Due from when the api accepted it (never later than now, whatever the clocks):
            # arrival order does not depend on when, or in which batch, it was ingested here.
            "arrived": event.occurred_at,
            "deadline": event.deadline_at,
        },
    )
    return bool(result.rowcount)


async def available_accounts(conn: AsyncConnection) -> list[AccountCandidate]:
    """Active accounts out of cooldown, with busy slots and today's use derived from jobs."""
    rows = await conn.execute(
        text(
            f"""
            SELECT a.id, a.provider_id, a.operations, a.max_concurrent, a.priority,
                   a.last_used_at, a.daily_cap, {BUSY_SQL} AS busy,
                   CASE WHEN a.daily_cap IS NULL THEN 0 ELSE {USED_TODAY_SQL} END AS used_today
              FROM dispatcher.provider_accounts a
             WHERE a.status = 'active'
               AND (a.cooldown_until IS NULL OR a.cooldown_until <= now())
            """
        )
    )
    return [
        AccountCandidate(
            id=r.id,
            provider_id=r.provider_id,
            operations=frozenset(r.operations) if r.operations is not None else None,
            max_concurrent=r.max_concurrent,
            priority=r.priority,
            busy=r.busy,
            last_used_at=r.last_used_at,
            daily_cap=r.daily_cap,
            used_today=r.used_today,
        )
        for r in rows
    ]


class Contended(Exception):
    """Every account that could take the job is being reserved by another replica right now."""


async def claim_next(conn: AsyncConnection, owner: str, lease_s: float) -> ClaimedJob | None:
    """Take the best queued job that some free account can serve and reserve that account's slot.

    Order: priority (higher first), then due time (`scheduled_at` or arrival), then arrival.
    Must run in a transaction that the caller commits.
    """
    candidates = await available_accounts(conn)
    any_op, pairs = servable_pairs(candidates)
    if not any_op and not pairs:
        return None
    job = (
        await conn.execute(
            text(
                """
                SELECT generation_id, provider_id, operation_type, request
                  FROM dispatcher.dispatch_jobs
                 WHERE state = 'queued' AND due_at <= now()
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
        if await _reserve_slot(conn, account.id):
            # One statement for both rows: the account's last use (for LRU) and the job.
            row = (
                await conn.execute(
                    text(
                        f"""
                        WITH a AS (
                            UPDATE dispatcher.provider_accounts SET last_used_at = now()
                             WHERE id = :a
                            RETURNING id, base_url, credentials_ciphertext)
                        UPDATE dispatcher.dispatch_jobs j
                           SET state = 'claimed', account_id = :a,
                               attempt = GREATEST(j.attempt, 1),
                               lease_owner = :owner,
                               lease_until = now() + make_interval(secs => :lease),
                               updated_at = now()
                          FROM a
                         WHERE j.generation_id = :g
                        RETURNING {_CLAIM_COLUMNS}
                        """
                    ),
                    {"a": account.id, "g": job.generation_id, "owner": owner, "lease": lease_s},
                )
            ).one()
            return _claimed(row)
    raise Contended()


async def _reserve_slot(conn: AsyncConnection, account_id: str) -> bool:
    """Lock the account row, then count its busy slots (and today's use) under the lock.

    The count is a separate statement on purpose: in READ COMMITTED each statement takes a fresh
    snapshot, so it sees every claim committed by whoever held the lock before us. Claims on this
    account cannot commit while we hold it, and releases only lower the count.
    """
    account = (
        await conn.execute(
            text(
                """
                SELECT max_concurrent, daily_cap FROM dispatcher.provider_accounts
                 WHERE id = :a AND status = 'active'
                   AND (cooldown_until IS NULL OR cooldown_until <= now())
                   FOR UPDATE SKIP LOCKED
                """
            ),
            {"a": account_id},
        )
    ).first()
    if account is None:
        return False
    counts = (
        await conn.execute(
            text(
                f"""
                SELECT {BUSY_SQL} AS busy,
                       CASE WHEN a.daily_cap IS NULL THEN 0 ELSE {USED_TODAY_SQL} END
                           AS used_today
                  FROM dispatcher.provider_accounts a
                 WHERE a.id = :a
                """
            ),
            {"a": account_id},
        )
    ).one()
    if counts.busy >= account.max_concurrent:
        return False
    return account.daily_cap is None or counts.used_today < account.daily_cap


async def recover_expired_lease(
    conn: AsyncConnection, owner: str, lease_s: float
) -> ClaimedJob | None:
    """Take over a claim whose holder stopped renewing it (it crashed). Its slot stays reserved."""
    row = (
        await conn.execute(
            text(
                f"""
                UPDATE dispatcher.dispatch_jobs j
                   SET lease_owner = :owner,
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
            {"owner": owner, "lease": lease_s},
        )
    ).first()
    return _claimed(row) if row else None


async def extend_lease(conn: AsyncConnection, claim: ClaimedJob, lease_s: float) -> None:
    await conn.execute(
        text(
            """
            UPDATE dispatcher.dispatch_jobs
               SET lease_until = now() + make_interval(secs => :lease),
                   submit_tries = :tries, updated_at = now()
             WHERE generation_id = :g AND state = 'claimed'
            """
        ),
        {"g": claim.generation_id, "lease": lease_s, "tries": claim.submit_tries},
    )


async def mark_submitted(
    conn: AsyncConnection, claim: ClaimedJob, provider_job_id: str
) -> bool | None:
    """claimed → submitted. Returns whether a cancel was requested; None if the CAS lost."""
    row = (
        await conn.execute(
            text(
                """
                UPDATE dispatcher.dispatch_jobs
                   SET state = 'submitted', provider_job_id = :pj, submitted_at = now(),
                       lease_owner = NULL, lease_until = NULL, updated_at = now()
                 WHERE generation_id = :g AND state = 'claimed' AND attempt = :attempt
                RETURNING cancel_requested
                """
            ),
            {"g": claim.generation_id, "pj": provider_job_id, "attempt": claim.attempt},
        )
    ).first()
    return None if row is None else bool(row.cancel_requested)


async def requeue(
    conn: AsyncConnection, claim: ClaimedJob, delay_s: float, error: dict[str, Any]
) -> bool:
    """claimed → queued, releasing the slot; dispatched again no sooner than `delay_s`."""
    result = await conn.execute(
        text(
            """
            UPDATE dispatcher.dispatch_jobs
               SET state = 'queued', account_id = NULL, lease_owner = NULL, lease_until = NULL,
                   due_at = now() + make_interval(secs => :delay),
                   last_error = CAST(:err AS jsonb), updated_at = now()
             WHERE generation_id = :g AND state = 'claimed'
            """
        ),
        {"g": claim.generation_id, "delay": delay_s, "err": _json(error)},
    )
    return bool(result.rowcount)


async def finish(
    conn: AsyncConnection,
    generation_id: UUID,
    state: JobState,
    error: dict[str, Any] | None = None,
    *,
    only_from: tuple[JobState, ...] | None = None,
) -> JobSnapshot | None:
    """Move a job to a terminal state, releasing its slot. None if it was already terminal.

    The first terminal state wins: this is the one place a slot is released, exactly once.
    """
    allowed = only_from or (JobState.QUEUED, JobState.CLAIMED, JobState.SUBMITTED)
    row = (
        await conn.execute(
            text(
                """
                UPDATE dispatcher.dispatch_jobs
                   SET state = :state, finished_at = now(), lease_owner = NULL,
                       lease_until = NULL, updated_at = now(),
                       last_error = COALESCE(CAST(:err AS jsonb), last_error)
                 WHERE generation_id = :g AND state = ANY(:allowed)
                RETURNING generation_id, state, account_id, provider_job_id, attempt, request
                """
            ),
            {
                "g": generation_id,
                "state": state.value,
                "err": _json(error) if error else None,
                "allowed": [s.value for s in allowed],
            },
        )
    ).first()
    if row is None:
        return None
    return JobSnapshot(
        generation_id=row.generation_id,
        state=JobState(row.state),
        account_id=row.account_id,
        provider_job_id=row.provider_job_id,
        attempt=row.attempt,
        request=dict(row.request),
        base_url=None,
        credentials_ciphertext=None,
    )


async def lock_job(conn: AsyncConnection, generation_id: UUID) -> JobSnapshot | None:
    row = (
        await conn.execute(
            text(
                """
                SELECT j.generation_id, j.state, j.account_id, j.provider_job_id, j.attempt,
                       j.request, a.base_url, a.credentials_ciphertext
                  FROM dispatcher.dispatch_jobs j
                  LEFT JOIN dispatcher.provider_accounts a ON a.id = j.account_id
                 WHERE j.generation_id = :g
                   FOR UPDATE OF j
                """
            ),
            {"g": generation_id},
        )
    ).first()
    if row is None:
        return None
    return JobSnapshot(
        generation_id=row.generation_id,
        state=JobState(row.state),
        account_id=row.account_id,
        provider_job_id=row.provider_job_id,
        attempt=row.attempt,
        request=dict(row.request),
        base_url=row.base_url,
        credentials_ciphertext=row.credentials_ciphertext,
    )


async def flag_cancel_requested(conn: AsyncConnection, generation_id: UUID) -> None:
    await conn.execute(
        text(
            "UPDATE dispatcher.dispatch_jobs SET cancel_requested = true, updated_at = now() "
            "WHERE generation_id = :g"
        ),
        {"g": generation_id},
    )


async def insert_cancelled_tombstone(
    conn: AsyncConnection, generation_id: UUID, request: dict[str, Any]
) -> bool:
    """Remember a cancel that arrived before its request, so the request is never dispatched."""
    result = await conn.execute(
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


async def overdue_queued(conn: AsyncConnection, limit: int = 500) -> list[UUID]:
    rows = await conn.execute(
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


async def cool_down(conn: AsyncConnection, account_id: str, seconds: float, reason: str) -> None:
    await conn.execute(
        text(
            """
            UPDATE dispatcher.provider_accounts
               SET cooldown_until = GREATEST(COALESCE(cooldown_until, now()),
                                             now() + make_interval(secs => :s)),
                   status_reason = :reason, updated_at = now()
             WHERE id = :a
            """
        ),
        {"a": account_id, "s": seconds, "reason": reason[:500]},
    )


async def set_account_status(
    conn: AsyncConnection, account_id: str, status: str, reason: str
) -> None:
    await conn.execute(
        text(
            "UPDATE dispatcher.provider_accounts SET status = :st, status_reason = :reason, "
            "updated_at = now() WHERE id = :a"
        ),
        {"a": account_id, "st": status, "reason": reason[:500]},
    )


async def mark_exhausted(conn: AsyncConnection, account_id: str, reason: str) -> None:
    """The provider says the account's credits are spent: record 0 credits, stop using it."""
    await conn.execute(
        text(
            "UPDATE dispatcher.provider_accounts SET status = 'exhausted', credits = 0, "
            "status_reason = :reason, updated_at = now() WHERE id = :a"
        ),
        {"a": account_id, "reason": reason[:500]},
    )


async def next_wake_at(conn: AsyncConnection) -> datetime | None:
    """The earliest future moment a queued job becomes due or an account leaves cooldown."""
    value = await conn.scalar(
        text(
            """
            SELECT LEAST(
                (SELECT min(due_at) FROM dispatcher.dispatch_jobs
                  WHERE state = 'queued' AND due_at > now()),
                (SELECT min(cooldown_until) FROM dispatcher.provider_accounts
                  WHERE status = 'active' AND cooldown_until > now()),
                (SELECT min(lease_until) FROM dispatcher.dispatch_jobs
                  WHERE state = 'claimed'))
            """
        )
    )
    return value if isinstance(value, datetime) else None


def _json(value: Any) -> str:

    return json.dumps(value, default=str)


@dataclass(frozen=True)
class QueueDepth:
    provider_id: str
    depth: int
    oldest_s: float


@dataclass(frozen=True)
class AccountSlots:
    id: str
    provider_id: str
    max_concurrent: int
    usable: bool
    busy: int


# The two gauge reads are cheap: the queue count uses the partial index on queued jobs, the
# slot count the one on slot-holding jobs.
async def queue_depths(conn: AsyncConnection) -> list[QueueDepth]:
    """Queued jobs per provider, and how long the oldest has waited."""
    rows = await conn.execute(
        text(
            """
            SELECT provider_id, count(*) AS depth,
                   EXTRACT(EPOCH FROM now() - min(created_at)) AS oldest_s
              FROM dispatcher.dispatch_jobs
             WHERE state = 'queued'
             GROUP BY provider_id
            """
        )
    )
    return [QueueDepth(r.provider_id, r.depth, float(r.oldest_s or 0)) for r in rows]


async def account_slots(conn: AsyncConnection) -> list[AccountSlots]:
    """Every account's cap, whether it may take work now, and its busy slots."""
    rows = await conn.execute(
        text(
            f"""
            SELECT a.id, a.provider_id, a.max_concurrent,
                   a.status = 'active' AND (a.cooldown_until IS NULL OR a.cooldown_until <= now())
                       AS usable,
                   {BUSY_SQL} AS busy
              FROM dispatcher.provider_accounts a
            """
        )
    )
    return [AccountSlots(r.id, r.provider_id, r.max_concurrent, r.usable, r.busy) for r in rows]

"""Claims on the dispatch queue: take a job with a fenced lease, renew it, record each try.

Every write on a claimed job checks its `lease_token` (`FENCE`): a holder whose lease was
recovered by someone else gets `LeaseLost` and records nothing.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Select, column, select, text

from genbus.dispatcher.adapters.accounts_store import AccountRepository
from genbus.dispatcher.adapters.job_rows import (
    CLAIM_COLUMNS,
    FENCE,
    Contended,
    JobQueries,
    LeaseLost,
    claimed_from_row,
    fence_params,
    json_param,
)
from genbus.dispatcher.adapters.tables import OUTBOX
from genbus.dispatcher.domain.model import ClaimedJob, rank_accounts, servable_pairs
from genbus.runtime.outbox import outbox_params, staging_after

_MARK_SUBMITTED = (
    """
    UPDATE dispatcher.dispatch_jobs
       SET state = 'submitted', provider_job_id = :pj, submitted_at = now(),
           lease_owner = NULL, lease_until = NULL, lease_token = NULL,
           submit_started_at = NULL, updated_at = now()
     WHERE """
    + FENCE
)


@functools.cache
def _mark_submitted_staging() -> Select[Any]:
    marked = (
        text(_MARK_SUBMITTED + " RETURNING cancel_requested")
        .columns(column("cancel_requested", Boolean))
        .cte("marked")
    )
    staged = staging_after(OUTBOX, marked)
    return select(
        marked.c.cancel_requested, select(staged.c.id).scalar_subquery().label("outbox_id")
    )


#: Lane heads considered per claim: a few, so that replicas claiming at once each find one
#: not locked by another (SKIP LOCKED) without walking more of the queue.
CANDIDATES = 4

#: The fair-share claim. Lanes (`dispatcher.user_lanes`: one per user and priority, kept by a
#: trigger) that have queued jobs and are under their user's cap are walked in index order
#: (priority DESC, the user's jobs in flight, last claimed); each gives its servable due head
#: jobs through `ix_dispatch_jobs_user_queue`, and the walk stops at the first `k` jobs found.
#: Its cost grows with the lanes passed over (users whose waiting jobs are not due or not
#: servable now), never with the number of queued jobs. A lane's n-th job ranks as if its user
#: had n more in flight, so two replicas claiming at once spread over users.
CLAIM_SQL = """
    WITH heads AS (
        SELECT h.generation_id, l.priority, l.in_flight + h.n AS load,
               l.last_claimed_at, l.user_id, h.due_at, h.seq
          FROM dispatcher.user_lanes l
         CROSS JOIN LATERAL (
               SELECT j.generation_id, j.due_at, j.seq,
                      row_number() OVER (ORDER BY j.due_at, j.seq) - 1 AS n
                 FROM dispatcher.dispatch_jobs j
                WHERE j.state = 'queued' AND j.user_id = l.user_id
                  AND j.priority = l.priority AND j.due_at <= now()
                  -- Past its deadline a job is failed by the reconciler, never submitted.
                  AND j.deadline_at > now()
                  AND (j.provider_id = ANY(:any_op)
                       OR (j.provider_id || ':' || j.operation_type) = ANY(:pairs))
                ORDER BY j.due_at, j.seq
                LIMIT :k) h
         WHERE l.queued > 0 AND (l.max_in_flight IS NULL OR l.in_flight < l.max_in_flight)
         ORDER BY l.priority DESC, l.in_flight, l.last_claimed_at NULLS FIRST, l.user_id
         LIMIT :k
    )
    SELECT j.generation_id, j.provider_id, j.operation_type, j.request
      FROM dispatcher.dispatch_jobs j
      JOIN heads h ON h.generation_id = j.generation_id
     WHERE j.state = 'queued'
     ORDER BY h.priority DESC, h.load, h.last_claimed_at NULLS FIRST, h.user_id, h.due_at, h.seq
     LIMIT 1
       FOR UPDATE OF j SKIP LOCKED
"""


class JobClaims(JobQueries):
    """Claiming queued jobs and recording what their holder did."""

    async def claim_next(
        self, owner: str, lease_s: float, *, skip_providers: Collection[str] = ()
    ) -> ClaimedJob | None:
        """Take the best queued job some free account can serve and reserve that account's slot.

        Order (fair share, `CLAIM_SQL`): priority (higher first); then the user with the
        fewest jobs in flight, ties to the user served longest ago; then that user's job due
        first (`scheduled_at` or arrival), then arrival. Users at their in-flight cap are
        passed over. Jobs of `skip_providers` (whose bulkhead is full) are left. The claim gets
        a fresh lease token.
        """
        accounts = AccountRepository(self._conn)
        candidates = [c for c in await accounts.available() if c.provider_id not in skip_providers]
        any_op, pairs = servable_pairs(candidates)
        if not any_op and not pairs:
            return None
        job = (
            await self._conn.execute(
                text(CLAIM_SQL), {"any_op": any_op, "pairs": pairs, "k": CANDIDATES}
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
                            RETURNING {CLAIM_COLUMNS}
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
                return claimed_from_row(row)
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
                    RETURNING {CLAIM_COLUMNS}
                    """
                ),
                {"owner": owner, "token": uuid.uuid4(), "lease": lease_s},
            )
        ).first()
        return claimed_from_row(row) if row else None

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
            + FENCE,
            {
                **fence_params(claim),
                "started": started,
                "tries": claim.submit_tries,
                "lease": lease_s,
            },
        )

    async def mark_submitted(self, claim: ClaimedJob, provider_job_id: str) -> bool:
        """claimed → submitted. Returns whether a cancel was requested meanwhile."""
        row = (
            await self._conn.execute(
                text(_MARK_SUBMITTED + " RETURNING cancel_requested"),
                {**fence_params(claim), "pj": provider_job_id},
            )
        ).first()
        if row is None:
            raise LeaseLost(str(claim.generation_id))
        return bool(row.cancel_requested)

    async def mark_submitted_staging(
        self, claim: ClaimedJob, provider_job_id: str, outbox_row: dict[str, Any]
    ) -> tuple[bool, int | None]:
        """`mark_submitted` and, in the same statement, the outbox row with `outbox_row`'s
        columns (`genbus.runtime.outbox.outbox_values`): whether a cancel was requested, and
        the row's id (None when its event id was staged already)."""
        row = (
            await self._conn.execute(
                _mark_submitted_staging(),
                {**fence_params(claim), "pj": provider_job_id, **outbox_params(outbox_row)},
            )
        ).first()
        if row is None:
            raise LeaseLost(str(claim.generation_id))
        return bool(row.cancel_requested), row.outbox_id

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
            + FENCE,
            {**fence_params(claim), "delay": delay_s, "err": json_param(error)},
        )

    async def expire_lease(self, claim: ClaimedJob) -> bool:
        """Give a claim up now (shutting down): another holder may recover it at once."""
        result = await self._conn.execute(
            text(
                "UPDATE dispatcher.dispatch_jobs SET lease_until = now(), updated_at = now() "
                "WHERE " + FENCE
            ),
            fence_params(claim),
        )
        return bool(result.rowcount)

    async def _fenced(self, statement: str, params: dict[str, Any]) -> None:
        result = await self._conn.execute(text(statement), params)
        if not result.rowcount:
            raise LeaseLost(str(params["g"]))

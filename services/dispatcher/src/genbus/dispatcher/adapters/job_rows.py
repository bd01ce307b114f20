"""Rows of the dispatch queue as the service layer sees them, and what every query shares.

`JobQueries` is the base of the parts of `JobRepository` (`uow.jobs`): each part holds one
transaction's connection and owns one concern (intake and endings, claims, sweeps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.dispatcher.domain.model import ClaimedJob, JobState
from genbus.runtime.rows import dataclass_from_row

CLAIM_COLUMNS = """
    j.generation_id, j.provider_id, j.operation_type, j.account_id, j.attempt, j.submit_tries,
    j.request, j.cancel_requested, j.lease_token, j.submit_started_at,
    a.base_url, a.credentials_ciphertext,
    (a.breaker_failures > 0 OR a.breaker_opened_count > 0) AS breaker_dirty
"""

#: A job with its account's address (base URL, credentials' ciphertext), for `snapshot_from_row`.
SNAPSHOT_SQL = """
    SELECT j.generation_id, j.state, j.account_id, j.provider_job_id, j.attempt,
           j.request, j.provider_id, a.base_url, a.credentials_ciphertext
      FROM dispatcher.dispatch_jobs j
      LEFT JOIN dispatcher.provider_accounts a ON a.id = j.account_id
"""

#: The fence of every write on a claimed job: still claimed, and by this holder.
FENCE = "generation_id = :g AND state = 'claimed' AND lease_token = :token"


class LeaseLost(Exception):
    """The claim was recovered by another holder: this one may record nothing about the job."""


class Contended(Exception):
    """Every account that could take the job is being reserved by another replica right now."""


def claimed_from_row(row: Any) -> ClaimedJob:
    """A claimed job as the claim statements return it (`CLAIM_COLUMNS`)."""
    return dataclass_from_row(ClaimedJob, row._mapping, request=dict(row.request))


def fence_params(claim: ClaimedJob) -> dict[str, Any]:
    """The parameters of `FENCE` for `claim`."""
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


def snapshot_from_row(row: Any) -> JobSnapshot:
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


def json_param(value: Any) -> str:
    """A JSON value as a statement parameter (cast to jsonb in SQL)."""
    return json.dumps(value, default=str)


class JobQueries:
    """One transaction's connection; the parts of `JobRepository` share it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

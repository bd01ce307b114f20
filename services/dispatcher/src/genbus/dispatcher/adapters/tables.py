"""The dispatcher's tables, in its own Postgres schema `dispatcher`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Identity, Index, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from genbus.runtime.outbox import outbox_table

SCHEMA = "dispatcher"


def _ts(nullable: bool = True, default_now: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True),
            nullable=nullable,
            server_default=func.now() if default_now else None,
        ),
    )


class ProviderAccount(SQLModel, table=True):
    """A paid provider account: its capacity and standing. Credentials are encrypted.

    `cooling_down` is not a stored status: it is an active account whose `cooldown_until` is in
    the future. Submissions per UTC day (for `daily_cap`) are counted from `dispatch_jobs`. The
    circuit breaker's state is derived from the `breaker_*` columns.
    """

    __tablename__ = "provider_accounts"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active', 'exhausted', 'disabled')", name="ck_provider_accounts_status"
        ),
        CheckConstraint("max_concurrent >= 1", name="ck_provider_accounts_max_concurrent"),
        CheckConstraint(
            "daily_cap IS NULL OR daily_cap >= 1", name="ck_provider_accounts_daily_cap"
        ),
        {"schema": SCHEMA},
    )

    id: str = Field(primary_key=True, max_length=64)
    provider_id: str = Field(max_length=32, index=True)
    label: str = Field(max_length=100, unique=True)
    base_url: str | None = Field(default=None, max_length=500)
    credentials_ciphertext: str
    #: The names (never the values) of the encrypted credentials, for operators.
    credential_names: list[str] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    max_concurrent: int = Field(ge=1)
    priority: int = 0
    status: str = Field(default="active", max_length=16)
    status_reason: str | None = Field(default=None, max_length=500)
    cooldown_until: datetime | None = _ts()
    #: Circuit breaker (see `domain.model.BreakerState`): transient failures in a row since the
    #: last success or trip, not used before `breaker_open_until`, trips in a row (0: closed).
    breaker_failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    breaker_open_until: datetime | None = _ts()
    breaker_opened_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    credits: int | None = None
    daily_cap: int | None = None
    operations: list[str] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    last_used_at: datetime | None = _ts()
    created_at: datetime | None = _ts(nullable=False, default_now=True)
    updated_at: datetime | None = _ts(nullable=False, default_now=True)


class DispatchJob(SQLModel, table=True):
    """One generation in the dispatch queue, from requested to terminal."""

    __tablename__ = "dispatch_jobs"
    __table_args__ = (
        # Claim order itself, across providers: the claim walks it and stops at the first job
        # a free account can serve, so its cost does not grow with the queue's length.
        Index(
            "ix_dispatch_jobs_queue_order",
            text("priority DESC"),
            "due_at",
            "seq",
            postgresql_where=text("state = 'queued'"),
        ),
        # Fair share: a user's queued jobs at one priority in claim order (a lane's head).
        Index(
            "ix_dispatch_jobs_user_queue",
            "user_id",
            "priority",
            "due_at",
            "seq",
            postgresql_where=text("state = 'queued'"),
        ),
        Index(
            "ix_dispatch_jobs_slots",
            "account_id",
            postgresql_where=text("state IN ('claimed', 'submitted')"),
        ),
        Index(
            "ix_dispatch_jobs_account_day",
            "account_id",
            "submitted_at",
            postgresql_where=text("submitted_at IS NOT NULL"),
        ),
        Index(
            "ix_dispatch_jobs_leases",
            "lease_until",
            postgresql_where=text("state = 'claimed'"),
        ),
        Index(
            "ix_dispatch_jobs_held_slots",
            "account_id",
            "slot_held_until",
            postgresql_where=text("slot_held_until IS NOT NULL"),
        ),
        Index(
            "ix_dispatch_jobs_finished",
            "finished_at",
            postgresql_where=text("state IN ('completed', 'failed', 'cancelled')"),
        ),
        Index(
            "ix_dispatch_jobs_submitted_deadline",
            "deadline_at",
            postgresql_where=text("state = 'submitted'"),
        ),
        {"schema": SCHEMA},
    )

    generation_id: UUID = Field(primary_key=True)
    seq: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(), nullable=False, unique=True)
    )
    user_id: str = Field(max_length=128)
    provider_id: str = Field(max_length=32)
    operation_type: str = Field(max_length=48)
    request: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    priority: int = 5
    scheduled_at: datetime | None = _ts()
    #: Not dispatched before this: `scheduled_at`, or a retry's backoff. Queue order after priority.
    due_at: datetime | None = _ts(nullable=False, default_now=True)
    deadline_at: datetime | None = _ts(nullable=False)
    state: str = Field(default="queued", max_length=16)
    attempt: int = 0
    submit_tries: int = 0
    account_id: str | None = Field(default=None, max_length=64)
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = _ts()
    #: The claim's fence: new on every claim and recovery, checked by every write on the job.
    lease_token: UUID | None = None
    #: A job-creating provider call may have reached the provider since then (cleared on answer).
    submit_started_at: datetime | None = _ts()
    #: Ended, but its provider job may still be running unfollowed: the slot stays busy until then.
    slot_held_until: datetime | None = _ts()
    provider_job_id: str | None = Field(default=None, max_length=256)
    cancel_requested: bool = False
    last_error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    #: Why it waits, as last told the api (`GenerationWaiting`), and how many times it was told.
    wait_reason: str | None = Field(default=None, max_length=32)
    wait_sequence: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime | None = _ts(nullable=False, default_now=True)
    updated_at: datetime | None = _ts(nullable=False, default_now=True)
    submitted_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()


class UserLane(SQLModel, table=True):
    """One user's queue at one priority, for fair share (kept by a trigger on `dispatch_jobs`,
    migration 0008): its queued jobs, the user's jobs in flight (the same on all its lanes),
    the user's in-flight cap (from its latest request) and when a job of the user was last
    claimed. The claim walks eligible lanes in `ix_user_lanes_claim_order`."""

    __tablename__ = "user_lanes"
    __table_args__ = (
        Index(
            "ix_user_lanes_claim_order",
            text("priority DESC"),
            "in_flight",
            text("last_claimed_at NULLS FIRST"),
            "user_id",
            postgresql_where=text(
                "queued > 0 AND (max_in_flight IS NULL OR in_flight < max_in_flight)"
            ),
        ),
        {"schema": SCHEMA},
    )

    user_id: str = Field(primary_key=True, max_length=128)
    priority: int = Field(primary_key=True)
    queued: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    in_flight: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    max_in_flight: int | None = None
    last_claimed_at: datetime | None = _ts()


OUTBOX = outbox_table(SQLModel.metadata, SCHEMA)
ACCOUNTS = ProviderAccount.__table__  # type: ignore[attr-defined]


class AdminAudit(SQLModel, table=True):
    """One admin change: who made it, what, when, and the target before and after (no secrets)."""

    __tablename__ = "admin_audit"
    __table_args__ = (Index("ix_admin_audit_target", "target", "id"), {"schema": SCHEMA})

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    at: datetime | None = _ts(nullable=False, default_now=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    target: str = Field(max_length=200)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))

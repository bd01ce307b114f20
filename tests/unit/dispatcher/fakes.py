"""In-memory stand-ins for the dispatcher's unit of work, its repositories and a provider.

`FakeStore` is "the database": committed jobs, accounts and outbox events, shared by every
`FakeUnitOfWork`. A unit of work copies the tables on begin and writes the rows it changed back
only on `commit()` (anything else is discarded, as a rollback would). Its repositories follow
the SQL of `JobRepository` and `AccountRepository` statement by statement: every write on a
claimed job is fenced by its `lease_token` (`LeaseLost` otherwise), the first terminal state
wins, busy slots are counted from the jobs holding one.

`store.journal` records, in order, each committed write (when its transaction commits) and each
call the `FakeAdapter` received, so a test can tell what was durable before a provider call.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.contracts import Event, EventBinding, GenerationRequested
from genbus.dispatcher.adapters.account_rows import MIN_CREDITS, BalanceTarget
from genbus.dispatcher.adapters.accounts_store import (
    AccountRepository,
    AccountSlots,
    AccountView,
    BreakerUpdate,
)
from genbus.dispatcher.adapters.audit_store import AuditEntry, AuditRepository
from genbus.dispatcher.adapters.repository import (
    Contended,
    JobRepository,
    JobSnapshot,
    LeaseLost,
    NotedWait,
    QueueDepth,
)
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.domain.model import (
    AccountCandidate,
    AccountStatus,
    BreakerState,
    ClaimedJob,
    JobState,
    account_status,
    breaker_pause_s,
    breaker_state,
    rank_accounts,
    servable_pairs,
)
from genbus.dispatcher.service_layer.held_claim import HeldClaim
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork
from genbus.providers import (
    AdapterFactory,
    AdapterRegistry,
    CredentialCipher,
    Credentials,
    JobStatus,
    ProviderAdapter,
    ProviderJobRef,
    SubmitGuarantees,
    SubmitRequest,
    SubmitResult,
    UnsupportedOperation,
)
from genbus.providers import JobState as ProviderJobState

PROVIDER = "acme"
OPERATION = "text_to_video"
OWNER = "replica-a"
ACCOUNT = "acc-1"
API_KEY = "secret-key-1"

#: What a provider like Pixverse or Replicate promises: nothing.
UNSAFE = SubmitGuarantees(idempotent=False, findable_by_reference=False)
#: What the sim promises: replays by key, lookups by reference.
SAFE = SubmitGuarantees(idempotent=True, findable_by_reference=True)
IDEMPOTENT_ONLY = SubmitGuarantees(idempotent=True, findable_by_reference=False)
FINDABLE_ONLY = SubmitGuarantees(idempotent=False, findable_by_reference=True)

E = TypeVar("E", bound=Event)

#: One entry of `FakeStore.journal`: (what, about what).
Entry = tuple[str, str]


# -- the tables -------------------------------------------------------------------------------


@dataclass
class JobRow:
    """A `dispatcher.dispatch_jobs` row."""

    generation_id: UUID
    seq: int
    user_id: str
    provider_id: str
    operation_type: str
    request: dict[str, Any]
    priority: int
    scheduled_at: datetime | None
    due_at: datetime
    deadline_at: datetime
    created_at: datetime
    updated_at: datetime
    state: JobState = JobState.QUEUED
    attempt: int = 0
    submit_tries: int = 0
    account_id: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    lease_token: UUID | None = None
    submit_started_at: datetime | None = None
    slot_held_until: datetime | None = None
    provider_job_id: str | None = None
    cancel_requested: bool = False
    last_error: dict[str, Any] | None = None
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    wait_reason: str | None = None
    wait_sequence: int = 0
    #: Not a column: when the job was last claimed (`user_lanes.last_claimed_at` of its user).
    claimed_at: datetime | None = None


@dataclass
class AccountRow:
    """A `dispatcher.provider_accounts` row."""

    id: str
    provider_id: str
    label: str
    credentials_ciphertext: str
    max_concurrent: int = 1
    priority: int = 0
    base_url: str | None = None
    status: AccountStatus = AccountStatus.ACTIVE
    status_reason: str | None = None
    cooldown_until: datetime | None = None
    breaker_failures: int = 0
    breaker_open_until: datetime | None = None
    breaker_opened_count: int = 0
    daily_cap: int | None = None
    credits: int | None = None
    operations: list[str] | None = None
    credential_names: list[str] | None = None
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class Tables:
    jobs: dict[UUID, JobRow] = field(default_factory=dict)
    accounts: dict[str, AccountRow] = field(default_factory=dict)

    def copy(self) -> Tables:
        """A snapshot: rows are copied; their dicts and lists are replaced, never mutated."""
        return Tables(
            {k: copy.copy(row) for k, row in self.jobs.items()},
            {k: copy.copy(row) for k, row in self.accounts.items()},
        )


class FakeStore:
    """The committed state every `FakeUnitOfWork` reads and writes back to."""

    def __init__(self) -> None:
        self.tables = Tables()
        #: The outbox: (binding, event) staged by committed units of work, in commit order.
        self.events: list[tuple[EventBinding[Event], Event]] = []
        #: Committed writes (on commit) and provider calls (as they happen), in order.
        self.journal: list[Entry] = []
        self.commits = 0
        self.rollbacks = 0
        #: Commits still to fail (the database unreachable for that many transactions).
        self.failing_commits = 0
        #: Added to the wall clock: `now()` as the database sees it.
        self.clock_offset = timedelta()
        self._seq = itertools.count(1)
        #: Committed audit entries, oldest first.
        self.audit: list[AuditEntry] = []

    @property
    def jobs(self) -> dict[UUID, JobRow]:
        return self.tables.jobs

    @property
    def accounts(self) -> dict[str, AccountRow]:
        return self.tables.accounts

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def next_seq(self) -> int:
        return next(self._seq)

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def job(self, generation_id: UUID) -> JobRow:
        return self.tables.jobs[generation_id]

    def account(self, account_id: str = ACCOUNT) -> AccountRow:
        return self.tables.accounts[account_id]

    def busy(self, account_id: str = ACCOUNT) -> int:
        """The account's busy slots: its jobs in a slot-holding state (as `BUSY_SQL`)."""
        return _busy(self.tables, account_id, self.now())

    def ops(self) -> list[str]:
        """What the journal holds, without the keys."""
        return [op for op, _ in self.journal]

    def events_of(self, binding: EventBinding[E]) -> list[E]:
        """The committed events of one binding (checked to be of its model)."""
        found = [event for b, event in self.events if b.name == binding.name]
        assert all(isinstance(event, binding.model) for event in found)
        return [event for event in found if isinstance(event, binding.model)]

    def add_account(
        self,
        ciphertext: str,
        *,
        account_id: str = ACCOUNT,
        provider_id: str = PROVIDER,
        max_concurrent: int = 1,
        priority: int = 0,
        base_url: str | None = "http://provider.test",
    ) -> AccountRow:
        row = AccountRow(
            id=account_id,
            provider_id=provider_id,
            label=account_id,
            credentials_ciphertext=ciphertext,
            max_concurrent=max_concurrent,
            priority=priority,
            base_url=base_url,
            credential_names=["api_key"],
            created_at=self.now(),
            updated_at=self.now(),
        )
        self.tables.accounts[account_id] = row
        return row

    def stall(self, generation_id: UUID) -> None:
        """The holder of this claim stopped renewing it: its lease has expired."""
        self.tables.jobs[generation_id].lease_until = self.now() - timedelta(seconds=1)


# -- shared rules of the SQL -------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A value as it comes back from a jsonb column (`_json` + CAST AS jsonb)."""
    return json.loads(json.dumps(value, default=str))


_SLOT_STATES = (JobState.CLAIMED, JobState.SUBMITTED)


def _busy(tables: Tables, account_id: str, now: datetime | None = None) -> int:
    """Claimed or submitted, or ended with its slot still held (as `BUSY_SQL`)."""
    now = now or datetime.now(UTC)
    return sum(
        1
        for j in tables.jobs.values()
        if j.account_id == account_id
        and (j.state in _SLOT_STATES or (j.slot_held_until is not None and j.slot_held_until > now))
    )


def _used_today(tables: Tables, account_id: str, now: datetime) -> int:
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return sum(
        1
        for j in tables.jobs.values()
        if j.account_id == account_id
        and (
            j.state is JobState.CLAIMED
            or (j.submitted_at is not None and j.submitted_at >= midnight)
        )
    )


def _usable(account: AccountRow, now: datetime) -> bool:
    """Active, out of cooldown, breaker not open, able to pay (as `reserve_slot`'s first
    statement)."""
    return (
        account.status is AccountStatus.ACTIVE
        and (account.credits is None or account.credits >= MIN_CREDITS)
        and (account.cooldown_until is None or account.cooldown_until <= now)
        and (account.breaker_open_until is None or account.breaker_open_until <= now)
    )


def _claimed_on(tables: Tables, account_id: str) -> int:
    return sum(
        1
        for j in tables.jobs.values()
        if j.account_id == account_id and j.state is JobState.CLAIMED
    )


def _breaker_lets_through(tables: Tables, account: AccountRow, now: datetime) -> bool:
    """Closed, or half-open with no job claimed (`BREAKER_LETS_THROUGH_SQL`)."""
    state = breaker_state(account.breaker_opened_count, account.breaker_open_until, now)
    if state is BreakerState.CLOSED:
        return True
    return state is BreakerState.HALF_OPEN and _claimed_on(tables, account.id) == 0


@dataclass
class _Guard:
    """Whether the repositories of a unit of work may be used (inside `async with`, uncommitted)."""

    open: bool


# -- repositories ------------------------------------------------------------------------------


class FakeAccountRepository(AccountRepository):
    """`AccountRepository` on the tables of one `FakeUnitOfWork`."""

    def __init__(self, tables: Tables, store: FakeStore, journal: list[Entry], guard: _Guard):
        super().__init__(cast(AsyncConnection, None))
        self._t = tables
        self._store = store
        self._journal = journal
        self._guard = guard

    def _now(self) -> datetime:
        assert self._guard.open, "repository used outside its unit of work"
        return self._store.now()

    def _view(self, a: AccountRow, now: datetime) -> AccountView:
        busy = _busy(self._t, a.id, now)
        claimed = sum(
            1 for j in self._t.jobs.values() if j.account_id == a.id and j.state is JobState.CLAIMED
        )
        return AccountView(
            id=a.id,
            provider_id=a.provider_id,
            label=a.label,
            base_url=a.base_url,
            max_concurrent=a.max_concurrent,
            priority=a.priority,
            status=account_status(a.status.value, a.cooldown_until, now),
            status_reason=a.status_reason,
            cooldown_until=a.cooldown_until,
            busy=busy,
            claimed=claimed,
            submitted=sum(
                1
                for j in self._t.jobs.values()
                if j.account_id == a.id and j.state is JobState.SUBMITTED
            ),
            daily_cap=a.daily_cap,
            used_today=_used_today(self._t, a.id, now),
            credits=a.credits,
            operations=a.operations,
            credential_names=a.credential_names,
            last_used_at=a.last_used_at,
            created_at=a.created_at,
            updated_at=a.updated_at,
            breaker=breaker_state(a.breaker_opened_count, a.breaker_open_until, now),
            breaker_open_until=a.breaker_open_until,
            breaker_failures=a.breaker_failures,
            breaker_opened_count=a.breaker_opened_count,
        )

    async def list_accounts(self) -> list[AccountView]:
        now = self._now()
        rows = sorted(self._t.accounts.values(), key=lambda a: (a.provider_id, a.label))
        return [self._view(a, now) for a in rows]

    async def get_account(self, account_id: str) -> AccountView | None:
        now = self._now()
        a = self._t.accounts.get(account_id)
        return self._view(a, now) if a else None

    async def lock_account(self, account_id: str) -> str | None:
        self._now()
        a = self._t.accounts.get(account_id)
        return a.provider_id if a else None

    async def set_status(
        self,
        account_id: str,
        status: AccountStatus,
        reason: str | None,
        *,
        clear_cooldown: bool = False,
    ) -> bool:
        now = self._now()
        if status is AccountStatus.COOLING_DOWN:
            raise ValueError("cooling_down is derived from cooldown_until, never stored")
        a = self._t.accounts.get(account_id)
        if a is None:
            return False
        a.status = status
        a.status_reason = reason[:500] if reason else None
        a.updated_at = now
        if clear_cooldown:
            a.cooldown_until = None
            a.breaker_failures = 0
            a.breaker_open_until = None
            a.breaker_opened_count = 0
        self._journal.append(("set_status", account_id))
        return True

    async def update_account(self, account_id: str, changes: Mapping[str, Any]) -> bool:
        now = self._now()
        a = self._t.accounts.get(account_id)
        if a is None:
            return False
        for column, value in changes.items():
            if not hasattr(a, column):
                raise AssertionError(f"no column {column}")
            setattr(a, column, value)
        a.updated_at = now
        self._journal.append(("update_account", account_id))
        return True

    async def credentials_for_update(self) -> list[tuple[str, str]]:
        self._now()
        return [(a.id, a.credentials_ciphertext) for _, a in sorted(self._t.accounts.items())]

    async def available(self) -> list[AccountCandidate]:
        now = self._now()
        return [
            AccountCandidate(
                id=a.id,
                provider_id=a.provider_id,
                operations=frozenset(a.operations) if a.operations is not None else None,
                max_concurrent=a.max_concurrent,
                priority=a.priority,
                busy=_busy(self._t, a.id, now),
                last_used_at=a.last_used_at,
                daily_cap=a.daily_cap,
                used_today=_used_today(self._t, a.id, now) if a.daily_cap is not None else 0,
            )
            for a in self._t.accounts.values()
            if _usable(a, now) and _breaker_lets_through(self._t, a, now)
        ]

    async def reserve_slot(self, account_id: str) -> bool:
        now = self._now()
        a = self._t.accounts.get(account_id)
        if a is None or not _usable(a, now):
            return False
        if _busy(self._t, account_id, self._now()) >= a.max_concurrent:
            return False
        if a.breaker_opened_count > 0 and _claimed_on(self._t, account_id) > 0:
            return False
        return a.daily_cap is None or _used_today(self._t, account_id, now) < a.daily_cap

    async def cool_down(self, account_id: str, seconds: float, reason: str) -> None:
        now = self._now()
        a = self._t.accounts.get(account_id)
        if a is None:
            return
        until = now + timedelta(seconds=seconds)
        a.cooldown_until = max(a.cooldown_until or now, until)
        a.status_reason = reason[:500]
        a.updated_at = now
        self._journal.append(("cool_down", account_id))

    async def record_breaker_failure(
        self, account_id: str, *, threshold: int, open_s: float, max_s: float
    ) -> BreakerUpdate | None:
        now = self._now()
        a = self._t.accounts.get(account_id)
        if a is None:
            return None
        half_open = a.breaker_opened_count > 0 and (
            a.breaker_open_until is None or a.breaker_open_until <= now
        )
        trips = half_open or (a.breaker_opened_count == 0 and a.breaker_failures + 1 >= threshold)
        if trips:
            a.breaker_opened_count += 1
            pause = breaker_pause_s(a.breaker_opened_count, open_s, max_s)
            a.breaker_open_until = now + timedelta(seconds=pause)
            a.breaker_failures = 0
        else:
            a.breaker_failures += 1
        a.updated_at = now
        self._journal.append(("breaker_failure", account_id))
        return BreakerUpdate(
            state=breaker_state(a.breaker_opened_count, a.breaker_open_until, now),
            tripped=trips,
            open_until=a.breaker_open_until,
            opened_count=a.breaker_opened_count,
        )

    async def record_breaker_success(self, account_id: str) -> bool:
        now = self._now()
        a = self._t.accounts.get(account_id)
        if a is None or (a.breaker_failures == 0 and a.breaker_opened_count == 0):
            return False
        a.breaker_failures = 0
        a.breaker_open_until = None
        a.breaker_opened_count = 0
        a.updated_at = now
        self._journal.append(("breaker_success", account_id))
        return True

    async def balance_targets(self) -> list[BalanceTarget]:
        return [
            BalanceTarget(a.id, a.provider_id, a.base_url, a.credentials_ciphertext)
            for a in sorted(self._t.accounts.values(), key=lambda a: a.id)
            if a.status in (AccountStatus.ACTIVE, AccountStatus.EXHAUSTED)
        ]

    async def record_balance(self, account_id: str, credits: int) -> bool:
        a = self._t.accounts.get(account_id)
        if a is None:
            return False
        a.credits = credits
        a.updated_at = self._now()
        if a.status is AccountStatus.EXHAUSTED and credits >= MIN_CREDITS:
            a.status, a.status_reason = AccountStatus.ACTIVE, None
        self._journal.append(("record_balance", account_id))
        return a.status is AccountStatus.ACTIVE

    async def mark_exhausted(self, account_id: str, reason: str) -> None:
        now = self._now()
        a = self._t.accounts.get(account_id)
        if a is None:
            return
        a.status = AccountStatus.EXHAUSTED
        a.credits = 0
        a.status_reason = reason[:500]
        a.updated_at = now
        self._journal.append(("mark_exhausted", account_id))

    async def slots(self) -> list[AccountSlots]:
        now = self._now()
        return [
            AccountSlots(
                a.id,
                a.provider_id,
                a.max_concurrent,
                _usable(a, now),
                _busy(self._t, a.id, now),
                a.breaker_opened_count > 0,
            )
            for a in self._t.accounts.values()
        ]


class FakeJobRepository(JobRepository):
    """`JobRepository` on the tables of one `FakeUnitOfWork`, with the SQL's semantics."""

    def __init__(self, tables: Tables, store: FakeStore, journal: list[Entry], guard: _Guard):
        super().__init__(cast(AsyncConnection, None))
        self._t = tables
        self._store = store
        self._journal = journal
        self._guard = guard
        self._accounts = FakeAccountRepository(tables, store, journal, guard)

    def _now(self) -> datetime:
        assert self._guard.open, "repository used outside its unit of work"
        return self._store.now()

    def _held(self, claim: ClaimedJob) -> JobRow:
        """The job if `claim` still holds it (`_FENCE`); LeaseLost otherwise."""
        job = self._t.jobs.get(claim.generation_id)
        if job is None or job.state is not JobState.CLAIMED or job.lease_token != claim.lease_token:
            raise LeaseLost(str(claim.generation_id))
        return job

    def _log(self, op: str, generation_id: UUID) -> None:
        self._journal.append((op, str(generation_id)))

    def _claimed(self, job: JobRow) -> ClaimedJob:
        assert job.account_id is not None
        assert job.lease_token is not None
        account = self._t.accounts[job.account_id]
        return ClaimedJob(
            generation_id=job.generation_id,
            provider_id=job.provider_id,
            operation_type=job.operation_type,
            account_id=job.account_id,
            attempt=job.attempt,
            submit_tries=job.submit_tries,
            request=copy.deepcopy(job.request),
            cancel_requested=job.cancel_requested,
            base_url=account.base_url,
            credentials_ciphertext=account.credentials_ciphertext,
            lease_token=job.lease_token,
            submit_started_at=job.submit_started_at,
            breaker_dirty=account.breaker_failures > 0 or account.breaker_opened_count > 0,
        )

    def _snapshot(self, job: JobRow, *, with_account: bool = True) -> JobSnapshot:
        account = self._t.accounts.get(job.account_id) if job.account_id and with_account else None
        return JobSnapshot(
            generation_id=job.generation_id,
            state=job.state,
            account_id=job.account_id,
            provider_job_id=job.provider_job_id,
            attempt=job.attempt,
            request=copy.deepcopy(job.request),
            base_url=account.base_url if account else None,
            credentials_ciphertext=account.credentials_ciphertext if account else None,
            provider_id=job.provider_id,
        )

    async def ingest(self, event: GenerationRequested) -> bool:
        now = self._now()
        if event.generation_id in self._t.jobs:
            return False
        self._t.jobs[event.generation_id] = JobRow(
            generation_id=event.generation_id,
            seq=self._store.next_seq(),
            user_id=event.user_id,
            provider_id=event.provider_id,
            operation_type=event.operation_type,
            request=json.loads(event.model_dump_json()),
            priority=event.priority,
            scheduled_at=event.scheduled_at,
            due_at=event.scheduled_at or min(event.occurred_at, now),
            deadline_at=event.deadline_at,
            created_at=now,
            updated_at=now,
        )
        self._log("ingest", event.generation_id)
        return True

    async def note_wait(
        self, generation_id: UUID, reason: str, *, repeat: bool = False
    ) -> NotedWait | None:
        job = self._t.jobs.get(generation_id)
        if job is None or job.state not in (JobState.QUEUED, JobState.CLAIMED):
            return None
        if not repeat and job.wait_reason == reason:
            return None
        job.wait_reason = reason
        job.wait_sequence += 1
        return NotedWait(job.wait_sequence, dict(job.request))

    async def reasons_at_intake(self, generation_ids: Sequence[UUID]) -> list[tuple[UUID, str]]:
        now = self._now()
        flying: dict[str, int] = {}
        for j in self._t.jobs.values():
            if j.state in (JobState.CLAIMED, JobState.SUBMITTED):
                flying[j.user_id] = flying.get(j.user_id, 0) + 1
        out = []
        for generation_id in generation_ids:
            job = self._t.jobs[generation_id]
            usable = any(
                a.provider_id == job.provider_id
                and a.status is AccountStatus.ACTIVE
                and (a.breaker_open_until is None or a.breaker_open_until <= now)
                for a in self._t.accounts.values()
            )
            cap = job.request.get("max_in_flight")
            if not usable:
                out.append((generation_id, "provider_unavailable"))
            elif cap is not None and flying.get(job.user_id, 0) >= cap:
                out.append((generation_id, "user_at_capacity"))
        return out

    async def lock_users(self, user_ids: Iterable[str]) -> None:
        """One process, one transaction at a time: nothing to lock."""

    async def lock_users_of(self, generation_ids: Iterable[UUID]) -> None:
        """One process, one transaction at a time: nothing to lock."""

    def _fair_order(
        self, queued: list[JobRow]
    ) -> tuple[list[JobRow], Callable[[JobRow], tuple[Any, ...]]]:
        """The real claim's order: priority, the user's jobs in flight, the user served longest
        ago, due, arrival; the jobs of users at their cap (from their latest request) are left
        out of the eligible ones."""
        flying: dict[str, int] = {}
        last: dict[str, datetime] = {}
        cap: dict[str, int | None] = {}
        for j in sorted(self._t.jobs.values(), key=lambda j: j.seq):
            cap[j.user_id] = j.request.get("max_in_flight")
            if j.state in (JobState.CLAIMED, JobState.SUBMITTED):
                flying[j.user_id] = flying.get(j.user_id, 0) + 1
            if j.claimed_at is not None:
                last[j.user_id] = max(j.claimed_at, last.get(j.user_id, j.claimed_at))
        capped = {u for u, c in cap.items() if c is not None and flying.get(u, 0) >= c}
        eligible = [j for j in queued if j.user_id not in capped]
        never = datetime.min.replace(tzinfo=UTC)
        return eligible, lambda j: (
            -j.priority,
            flying.get(j.user_id, 0),
            last.get(j.user_id, never),
            j.user_id,
            j.due_at,
            j.seq,
        )

    async def claim_next(
        self, owner: str, lease_s: float, *, skip_providers: Collection[str] = ()
    ) -> ClaimedJob | None:
        now = self._now()
        candidates = [
            c for c in await self._accounts.available() if c.provider_id not in skip_providers
        ]
        any_op, pairs = servable_pairs(candidates)
        if not any_op and not pairs:
            return None
        queued = [
            j
            for j in self._t.jobs.values()
            if j.state is JobState.QUEUED
            and j.due_at <= now
            and j.deadline_at > now
            and (j.provider_id in any_op or f"{j.provider_id}:{j.operation_type}" in pairs)
        ]
        if not queued:
            return None
        eligible, order = self._fair_order(queued)
        if not eligible:
            return None
        job = min(eligible, key=order)
        preferred = job.request.get("preferred_account_id")
        for account in rank_accounts(candidates, job.provider_id, job.operation_type, preferred):
            if await self._accounts.reserve_slot(account.id):
                self._t.accounts[account.id].last_used_at = now
                job.state = JobState.CLAIMED
                job.account_id = account.id
                job.attempt = max(job.attempt, 1)
                job.lease_owner = owner
                job.lease_token = uuid.uuid4()
                job.lease_until = now + timedelta(seconds=lease_s)
                job.submit_started_at = None
                job.updated_at = now
                job.claimed_at = now
                self._log("claim_next", job.generation_id)
                return self._claimed(job)
        raise Contended()

    async def recover_expired_lease(self, owner: str, lease_s: float) -> ClaimedJob | None:
        now = self._now()
        expired = [
            j
            for j in self._t.jobs.values()
            if j.state is JobState.CLAIMED
            and j.lease_until is not None
            and j.lease_until < now
            and j.account_id in self._t.accounts
        ]
        if not expired:
            return None
        job = min(expired, key=lambda j: cast(datetime, j.lease_until))
        job.lease_owner = owner
        job.lease_token = uuid.uuid4()
        job.lease_until = now + timedelta(seconds=lease_s)
        job.updated_at = now
        self._log("recover_expired_lease", job.generation_id)
        return self._claimed(job)

    async def renew_leases(self, claims: Sequence[ClaimedJob], lease_s: float) -> set[UUID]:
        now = self._now()
        renewed: set[UUID] = set()
        for claim in claims:
            job = self._t.jobs.get(claim.generation_id)
            if job and job.state is JobState.CLAIMED and job.lease_token == claim.lease_token:
                job.lease_until = now + timedelta(seconds=lease_s)
                renewed.add(job.generation_id)
        if renewed:
            self._journal.append(("renew_leases", ",".join(sorted(map(str, renewed)))))
        return renewed

    async def record_submit_started(self, claim: ClaimedJob, lease_s: float) -> None:
        self._record_try(claim, lease_s, started=True)
        self._log("record_submit_started", claim.generation_id)

    async def record_refusal(self, claim: ClaimedJob, lease_s: float) -> None:
        self._record_try(claim, lease_s, started=False)
        self._log("record_refusal", claim.generation_id)

    def _record_try(self, claim: ClaimedJob, lease_s: float, *, started: bool) -> None:
        now = self._now()
        job = self._held(claim)
        job.submit_started_at = now if started else None
        job.submit_tries = claim.submit_tries
        job.lease_until = now + timedelta(seconds=lease_s)
        job.updated_at = now

    async def mark_submitted(self, claim: ClaimedJob, provider_job_id: str) -> bool:
        now = self._now()
        job = self._held(claim)
        job.state = JobState.SUBMITTED
        job.provider_job_id = provider_job_id
        job.submitted_at = now
        job.lease_owner = None
        job.lease_until = None
        job.lease_token = None
        job.submit_started_at = None
        job.updated_at = now
        self._log("mark_submitted", claim.generation_id)
        return job.cancel_requested

    async def requeue(self, claim: ClaimedJob, delay_s: float, error: dict[str, Any]) -> None:
        now = self._now()
        job = self._held(claim)
        job.state = JobState.QUEUED
        job.account_id = None
        job.lease_owner = None
        job.lease_until = None
        job.lease_token = None
        job.submit_started_at = None
        job.submit_tries = 0
        job.due_at = now + timedelta(seconds=delay_s)
        job.last_error = _json(error)
        job.updated_at = now
        self._log("requeue", claim.generation_id)

    async def expire_lease(self, claim: ClaimedJob) -> bool:
        now = self._now()
        try:
            job = self._held(claim)
        except LeaseLost:
            return False
        job.lease_until = now
        job.updated_at = now
        self._log("expire_lease", claim.generation_id)
        return True

    async def fail_claimed(
        self, claim: ClaimedJob, error: dict[str, Any], *, hold_slot_s: float = 0.0
    ) -> JobSnapshot | None:
        job = self._end(
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
        self._log("fail_claimed", claim.generation_id)
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
        allowed = only_from or (JobState.QUEUED, JobState.CLAIMED, JobState.SUBMITTED)
        job = self._end(
            generation_id, state, error, allowed, None, hold_slot_s, (JobState.SUBMITTED,)
        )
        if job is not None:
            self._log("finish", generation_id)
        return job

    def _end(
        self,
        generation_id: UUID,
        state: JobState,
        error: dict[str, Any] | None,
        allowed: tuple[JobState, ...],
        lease_token: UUID | None,
        hold_slot_s: float = 0.0,
        hold_from: tuple[JobState, ...] = (),
    ) -> JobSnapshot | None:
        now = self._now()
        job = self._t.jobs.get(generation_id)
        if job is None or job.state not in allowed:
            return None
        if lease_token is not None and job.lease_token != lease_token:
            return None
        held = hold_slot_s > 0 and job.state in hold_from
        job.slot_held_until = now + timedelta(seconds=hold_slot_s) if held else None
        job.state = state
        job.finished_at = now
        job.lease_owner = None
        job.lease_until = None
        job.lease_token = None
        job.updated_at = now
        if error:
            job.last_error = _json(error)
        return self._snapshot(job, with_account=False)

    async def lock_job(self, generation_id: UUID) -> JobSnapshot | None:
        self._now()
        job = self._t.jobs.get(generation_id)
        return self._snapshot(job) if job else None

    async def flag_cancel_requested(self, generation_id: UUID) -> None:
        now = self._now()
        job = self._t.jobs.get(generation_id)
        if job is not None:
            job.cancel_requested = True
            job.updated_at = now
            self._log("flag_cancel_requested", generation_id)

    async def insert_cancelled_tombstone(
        self, generation_id: UUID, request: dict[str, Any]
    ) -> bool:
        now = self._now()
        if generation_id in self._t.jobs:
            return False
        self._t.jobs[generation_id] = JobRow(
            generation_id=generation_id,
            seq=self._store.next_seq(),
            user_id=request["user_id"],
            provider_id=request["provider_id"],
            operation_type=request["operation_type"],
            request=_json(request),
            priority=0,
            scheduled_at=None,
            due_at=now,
            deadline_at=now,
            created_at=now,
            updated_at=now,
            state=JobState.CANCELLED,
            cancel_requested=True,
            finished_at=now,
        )
        self._log("insert_cancelled_tombstone", generation_id)
        return True

    async def overdue_queued(self, limit: int = 500) -> list[UUID]:
        now = self._now()
        rows = [
            j for j in self._t.jobs.values() if j.state is JobState.QUEUED and j.deadline_at < now
        ]
        return [j.generation_id for j in sorted(rows, key=lambda j: j.deadline_at)[:limit]]

    async def overdue_submitted(self, grace_s: float, limit: int = 500) -> list[JobSnapshot]:
        now = self._now()
        cutoff = now - timedelta(seconds=grace_s)
        rows = [
            j
            for j in self._t.jobs.values()
            if j.state is JobState.SUBMITTED and j.deadline_at < cutoff
        ]
        return [self._snapshot(j) for j in sorted(rows, key=lambda j: j.deadline_at)[:limit]]

    async def next_wake_at(self) -> datetime | None:
        now = self._now()
        moments = [
            j.due_at for j in self._t.jobs.values() if j.state is JobState.QUEUED and j.due_at > now
        ]
        moments += [
            a.cooldown_until
            for a in self._t.accounts.values()
            if a.status is AccountStatus.ACTIVE
            and a.cooldown_until is not None
            and a.cooldown_until > now
        ]
        moments += [
            a.breaker_open_until
            for a in self._t.accounts.values()
            if a.status is AccountStatus.ACTIVE
            and a.breaker_open_until is not None
            and a.breaker_open_until > now
        ]
        moments += [
            j.lease_until
            for j in self._t.jobs.values()
            if j.state is JobState.CLAIMED and j.lease_until is not None
        ]
        return min(moments, default=None)

    async def queue_depth(self) -> list[QueueDepth]:
        now = self._now()
        by_provider: dict[str, list[JobRow]] = {}
        for j in self._t.jobs.values():
            if j.state is JobState.QUEUED:
                by_provider.setdefault(j.provider_id, []).append(j)
        depths = []
        for provider_id, jobs in sorted(by_provider.items()):
            due = [j for j in jobs if j.due_at <= now]
            oldest = min((j.scheduled_at or j.created_at for j in due), default=None)
            depths.append(
                QueueDepth(
                    provider_id,
                    len(jobs),
                    len(due),
                    (now - oldest).total_seconds() if oldest is not None else None,
                )
            )
        return depths


# -- the unit of work --------------------------------------------------------------------------


class FakeAuditRepository(AuditRepository):
    """Audit entries of one transaction, appended to the store's on commit."""

    def __init__(self, store: FakeStore, pending: list[AuditEntry]) -> None:
        self._store = store
        self._pending = pending

    async def append(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        entry_id = len(self._store.audit) + len(self._pending) + 1
        # A JSON round trip, as the jsonb columns do: what is stored is what could be encoded.
        stored = json.loads(json.dumps({"before": before, "after": after}, default=str))
        self._pending.append(
            AuditEntry(
                entry_id,
                self._store.now(),
                actor,
                action,
                target,
                stored["before"],
                stored["after"],
            )
        )

    async def entries(
        self, *, limit: int = 100, target: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        found = [
            e
            for e in reversed(self._store.audit)
            if (target is None or e.target == target) and (before_id is None or e.id < before_id)
        ]
        return found[:limit]


class FakeUnitOfWork(AbstractUnitOfWork):
    """One transaction on a `FakeStore`: its writes and events reach the store on commit only."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self._guard = _Guard(open=False)
        self._committed = False

    async def _begin(self) -> None:
        assert not self._guard.open, "a unit of work is entered once at a time"
        self._base = self._store.tables.copy()
        self._work = self._store.tables.copy()
        self._staged: list[tuple[EventBinding[Event], Event]] = []
        self._writes: list[Entry] = []
        self._committed = False
        self._guard = _Guard(open=True)
        self.jobs = FakeJobRepository(self._work, self._store, self._writes, self._guard)
        self.accounts = FakeAccountRepository(self._work, self._store, self._writes, self._guard)
        self._audit: list[AuditEntry] = []
        self.audit = FakeAuditRepository(self._store, self._audit)

    async def _end(self) -> None:
        self._guard.open = False
        if not self._committed:
            self._store.rollbacks += 1

    async def stage(self, binding: EventBinding[Event], event: Event) -> None:
        assert self._guard.open, "use inside `async with`"
        assert not self._committed, "staged after commit: it would never be published"
        self._staged.append((binding, event))

    async def commit(self) -> None:
        assert self._guard.open, "use inside `async with`"
        assert not self._committed, "committed twice"
        if self._store.failing_commits:
            self._store.failing_commits -= 1
            raise ConnectionResetError("the database connection was lost")
        _merge(self._store.tables.jobs, self._base.jobs, self._work.jobs)
        _merge(self._store.tables.accounts, self._base.accounts, self._work.accounts)
        self._store.events.extend(self._staged)
        self._store.journal.extend(self._writes)
        self._store.audit.extend(self._audit)
        self._store.commits += 1
        self._committed = True
        # Like a connection after COMMIT: nothing more is written by this unit of work.
        self._guard.open = False


def _merge(target: dict[Any, Any], base: Mapping[Any, Any], work: Mapping[Any, Any]) -> None:
    """Write back the rows this transaction changed; a row changed by both is a test bug."""
    for key, row in work.items():
        if key in base and base[key] == row:
            continue
        if target.get(key) != base.get(key):
            raise AssertionError(f"row {key} was changed by another transaction meanwhile")
        target[key] = copy.copy(row)


# -- a provider --------------------------------------------------------------------------------

#: What one scripted submit does: answer with a result, or raise.
Outcome = SubmitResult | BaseException
SubmitHook = Callable[[SubmitRequest], Awaitable[None]]


class FakeAdapter:
    """A scripted provider: each `submit` takes the next outcome of `submits` (after `on_submit`
    ran, e.g. to steal the lease or to hang); `find_by_reference` answers `found`."""

    def __init__(
        self,
        submits: Iterable[Outcome] = (),
        *,
        guarantees: SubmitGuarantees = UNSAFE,
        found: SubmitResult | BaseException | None = None,
        on_submit: SubmitHook | None = None,
        provider_id: str = PROVIDER,
    ) -> None:
        self.provider_id = provider_id
        self.submit_guarantees = guarantees
        self.script = list(submits)
        self.found = found
        self.on_submit = on_submit
        self.submits: list[SubmitRequest] = []
        self.lookups: list[SubmitRequest] = []
        self.cancels: list[ProviderJobRef] = []
        #: Set by `World`: the store's journal, so calls interleave with committed writes.
        self.journal: list[Entry] = []
        #: What `balance` answers, and the credentials it was asked with.
        self.balance_answer: int | BaseException | None = None
        self.balance_reads: list[Credentials] = []

    def supports(self, operation_type: str) -> bool:
        return True

    async def balance(self, credentials: Credentials, base_url: str | None = None) -> int | None:
        """`balance_answer` (an exception is raised), recorded in `balance_reads`."""
        self.balance_reads.append(credentials)
        if isinstance(self.balance_answer, BaseException):
            raise self.balance_answer
        return self.balance_answer

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        self.submits.append(request)
        self.journal.append(("submit", request.idempotency_key))
        if self.on_submit is not None:
            await self.on_submit(request)
        if not self.script:
            raise AssertionError(f"unexpected submit #{len(self.submits)}")
        outcome = self.script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def find_by_reference(self, request: SubmitRequest) -> SubmitResult | None:
        self.lookups.append(request)
        self.journal.append(("find_by_reference", request.idempotency_key))
        if not self.submit_guarantees.findable_by_reference:
            raise UnsupportedOperation("not findable")
        if isinstance(self.found, BaseException):
            raise self.found
        return self.found

    async def status(self, job: ProviderJobRef) -> JobStatus:
        return JobStatus(state=ProviderJobState.RUNNING)

    async def cancel(self, job: ProviderJobRef) -> None:
        self.cancels.append(job)
        self.journal.append(("cancel", job.provider_job_id))

    async def aclose(self) -> None:
        pass


def factory_of(adapter: ProviderAdapter) -> AdapterFactory:
    """An `AdapterFactory` that serves `adapter`."""

    def build(
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ProviderAdapter:
        return adapter

    return build


async def hang(_: SubmitRequest) -> None:
    """A provider that never answers."""
    await asyncio.Event().wait()


# -- building a world --------------------------------------------------------------------------


def result(provider_job_id: str = "pj-1", *, replayed: bool = False) -> SubmitResult:
    return SubmitResult(provider_job_id=provider_job_id, status="queued", replayed=replayed)


def requested(
    *,
    provider_id: str = PROVIDER,
    deadline_in_s: float = 600.0,
    generation_id: UUID | None = None,
) -> GenerationRequested:
    now = datetime.now(UTC)
    return GenerationRequested(
        event_id=uuid.uuid4(),
        occurred_at=now - timedelta(seconds=1),
        generation_id=generation_id or uuid.uuid4(),
        user_id="user-1",
        provider_id=provider_id,
        operation_type=OPERATION,
        params={"prompt": "a cat"},
        deadline_at=now + timedelta(seconds=deadline_in_s),
        reproducible_hash="0" * 64,
    )


@dataclass
class World:
    """Deps over a fake store with one account of `PROVIDER`, served by `adapter`."""

    store: FakeStore
    adapter: FakeAdapter
    deps: Deps

    @property
    def cipher(self) -> CredentialCipher:
        return self.deps.cipher

    async def queue(self, event: GenerationRequested | None = None) -> GenerationRequested:
        """Ingest a request, as `on_generations_requested` does."""
        event = event or requested()
        async with self.store.uow() as uow:
            assert await uow.jobs.ingest(event)
            await uow.commit()
        return event

    async def claim(self, owner: str = OWNER) -> HeldClaim:
        """Claim the next job as the scheduler does (`claim_next`), held by `owner`."""
        async with self.store.uow() as uow:
            claim = await uow.jobs.claim_next(owner, self.deps.settings.lease_s)
            await uow.commit()
        assert claim is not None, "nothing claimable"
        return HeldClaim(claim=claim, valid_until=time.monotonic() + self.deps.settings.lease_s)

    async def recover(self, owner: str = "replica-b") -> HeldClaim:
        """Another replica takes over an expired claim (`recover_expired_lease`)."""
        async with self.store.uow() as uow:
            claim = await uow.jobs.recover_expired_lease(owner, self.deps.settings.lease_s)
            await uow.commit()
        assert claim is not None, "no expired claim"
        return HeldClaim(claim=claim, valid_until=time.monotonic() + self.deps.settings.lease_s)

    async def steal(self, generation_id: UUID, owner: str = "replica-b") -> ClaimedJob:
        """The holder stalled past its lease and `owner` recovered the claim."""
        self.store.stall(generation_id)
        return (await self.recover(owner)).claim


def make_world(adapter: FakeAdapter | None = None, **settings: Any) -> World:
    """A world with small backoffs; `settings` override `DispatcherSettings` fields."""
    cipher = CredentialCipher([CredentialCipher.generate_key()])
    store = FakeStore()
    store.add_account(cipher.encrypt(Credentials(api_key=API_KEY)))
    adapter = adapter or FakeAdapter([result()])
    adapter.journal = store.journal
    values: dict[str, Any] = {"submit_backoff_base_s": 0, "submit_backoff_max_s": 0}
    values.update(settings)
    deps = Deps(
        settings=DispatcherSettings(**values),
        uow=store.uow,
        adapters=AdapterRegistry(factories={adapter.provider_id: factory_of(adapter)}),
        cipher=cipher,
        owner=OWNER,
    )
    return World(store=store, adapter=adapter, deps=deps)


async def claimed_job(
    adapter: FakeAdapter | None = None,
    event: GenerationRequested | None = None,
    **settings: Any,
) -> tuple[World, HeldClaim]:
    """A world holding one claimed job, as `claim_next` leaves it."""
    world = make_world(adapter, **settings)
    await world.queue(event)
    return world, await world.claim()

"""Dispatch jobs and provider accounts: states and the rules that choose an account. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from genbus.contracts import (
    ACCOUNT_CREDENTIALS_UNREADABLE,
    ACCOUNT_ENTRY_INVALID,
    ACCOUNT_UNKNOWN,
    DEADLINE_EXCEEDED,
    SUBMISSION_OUTCOME_UNKNOWN,
)


class JobState(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"  # an account slot is reserved; the submission is in hand
    SUBMITTED = "submitted"  # the provider has the job; the slot stays busy until completed
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Failures decided without the provider's word on a job that may have reached it: the provider
#: job may still be running, so its account slot stays busy for a while after the job ended.
UNFOLLOWED_FAILURES = frozenset(
    {
        SUBMISSION_OUTCOME_UNKNOWN.code,
        DEADLINE_EXCEEDED.code,
        ACCOUNT_UNKNOWN.code,
        ACCOUNT_CREDENTIALS_UNREADABLE.code,
        ACCOUNT_ENTRY_INVALID.code,
    }
)


def slot_hold_s(error_code: str | None, hold_s: float) -> float:
    """How long a job that ended with `error_code` keeps its slot: `hold_s` when its provider
    job may still be running unfollowed, else 0."""
    return hold_s if error_code in UNFOLLOWED_FAILURES else 0.0


class AccountStatus(StrEnum):
    ACTIVE = "active"
    COOLING_DOWN = "cooling_down"  # never stored: active with `cooldown_until` in the future
    EXHAUSTED = "exhausted"
    DISABLED = "disabled"


def account_status(stored: str, cooldown_until: datetime | None, now: datetime) -> AccountStatus:
    """The status shown to operators: an active account in cooldown is `cooling_down`."""
    status = AccountStatus(stored)
    if status is AccountStatus.ACTIVE and cooldown_until is not None and cooldown_until > now:
        return AccountStatus.COOLING_DOWN
    return status


class BreakerState(StrEnum):
    """An account's circuit breaker (derived from its row, never stored as such).

    closed: in use. open: repeated transient failures (timeouts, 5xx); not used before
    `breaker_open_until`. half_open: that pause is over; one probe submission at a time is let
    through (the account takes a claim only while none of its jobs is claimed): success closes
    the breaker, a failure opens it again for twice as long (capped).
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def breaker_state(opened_count: int, open_until: datetime | None, now: datetime) -> BreakerState:
    """The breaker of an account whose row says it tripped `opened_count` times in a row."""
    if opened_count <= 0:
        return BreakerState.CLOSED
    if open_until is not None and open_until > now:
        return BreakerState.OPEN
    return BreakerState.HALF_OPEN


def breaker_pause_s(opened_count: int, open_s: float, max_s: float) -> float:
    """How long the breaker stays open after its `opened_count`-th trip in a row (1-based)."""
    return min(open_s * 2.0 ** max(opened_count - 1, 0), max_s)


@dataclass(frozen=True)
class AccountCandidate:
    """An account as seen when choosing one for a job."""

    id: str
    provider_id: str
    operations: frozenset[str] | None  # None: every operation its provider supports
    max_concurrent: int
    priority: int  # higher is preferred
    busy: int
    last_used_at: datetime | None
    daily_cap: int | None = None  # submissions per UTC day; None: no cap
    used_today: int = 0  # submitted today (UTC) or claimed now

    @property
    def free_slots(self) -> int:
        """Jobs it can take now: free concurrency, bounded by what is left of its daily cap."""
        free = self.max_concurrent - self.busy
        if self.daily_cap is not None:
            free = min(free, self.daily_cap - self.used_today)
        return max(free, 0)

    def serves(self, provider_id: str, operation_type: str) -> bool:
        return self.provider_id == provider_id and (
            self.operations is None or operation_type in self.operations
        )


def rank_accounts(
    candidates: Iterable[AccountCandidate],
    provider_id: str,
    operation_type: str,
    preferred_account_id: str | None = None,
) -> list[AccountCandidate]:
    """Eligible accounts for a job, best first.

    The request's preferred account first when eligible, then higher priority, then fewest busy
    slots, then least recently used.
    """
    eligible = [c for c in candidates if c.free_slots > 0 and c.serves(provider_id, operation_type)]
    epoch = datetime.min

    def key(c: AccountCandidate) -> tuple[int, int, int, datetime]:
        last = c.last_used_at.replace(tzinfo=None) if c.last_used_at else epoch
        return (0 if c.id == preferred_account_id else 1, -c.priority, c.busy, last)

    return sorted(eligible, key=key)


def servable_pairs(candidates: Sequence[AccountCandidate]) -> tuple[list[str], list[str]]:
    """Which queued jobs could be served now: (providers serving any operation, "provider:op")."""
    any_op: set[str] = set()
    pairs: set[str] = set()
    for c in candidates:
        if c.free_slots <= 0:
            continue
        if c.operations is None:
            any_op.add(c.provider_id)
        else:
            pairs.update(f"{c.provider_id}:{op}" for op in c.operations)
    return sorted(any_op), sorted(pairs)


@dataclass(frozen=True)
class ClaimedJob:
    """A job whose slot is reserved on `account_id`, to be submitted as `attempt` by its holder."""

    generation_id: UUID
    provider_id: str
    operation_type: str
    account_id: str
    attempt: int
    submit_tries: int
    request: dict[str, object]
    cancel_requested: bool
    base_url: str | None
    credentials_ciphertext: str
    #: The fence of this claim: every write about the job checks it (see the repository).
    lease_token: UUID
    #: Set while a job-creating provider call may have reached the provider (an earlier holder's
    #: included): the outcome is then unknown until resolved with the provider.
    submit_started_at: datetime | None = None
    #: The account's breaker had recorded failures (or tripped) when the job was claimed: a
    #: success on this claim must close it (otherwise a success writes nothing to the account).
    breaker_dirty: bool = False

    @property
    def in_doubt(self) -> bool:
        """Whether a provider call of an earlier holder may have created the job."""
        return self.submit_started_at is not None

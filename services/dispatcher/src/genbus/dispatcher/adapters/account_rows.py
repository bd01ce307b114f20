"""Provider accounts as rows: the SQL every account query shares, and what it returns.

`AccountQueries` is the base of the parts of `AccountRepository` (`uow.accounts`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.contracts.admin_accounts import ACCOUNT_FIELDS, AccountField, FieldKind
from genbus.dispatcher.domain.model import (
    AccountStatus,
    BreakerState,
    account_status,
    breaker_state,
)

#: An account's busy slots (alias `a` for the account row): its jobs claimed or submitted, plus
#: the ended ones whose provider job may still be running unfollowed (`slot_held_until`, see
#: `JobRepository.finish`). Two counts, each served by its own partial index.
BUSY_SQL = """((SELECT count(*) FROM dispatcher.dispatch_jobs j
                 WHERE j.account_id = a.id AND j.state IN ('claimed', 'submitted'))
               + (SELECT count(*) FROM dispatcher.dispatch_jobs j
                   WHERE j.account_id = a.id AND j.slot_held_until > now()))"""

#: What counts against an account's daily cap: jobs submitted since UTC midnight, plus the
#: ones claimed now (about to be submitted). A job requeued before submission does not count.
USED_TODAY_SQL = """(SELECT count(*) FROM dispatcher.dispatch_jobs j
                      WHERE j.account_id = a.id
                        AND (j.state = 'claimed'
                             OR j.submitted_at >= date_trunc('day', now() AT TIME ZONE 'UTC')
                                                  AT TIME ZONE 'UTC'))"""

#: Whether the account's circuit breaker lets a claim through (alias `a`): closed, or half-open
#: (its pause is over) with none of its jobs claimed, so one probe at a time is in flight.
BREAKER_LETS_THROUGH_SQL = """(a.breaker_opened_count = 0
        OR ((a.breaker_open_until IS NULL OR a.breaker_open_until <= now())
            AND NOT EXISTS (SELECT 1 FROM dispatcher.dispatch_jobs j
                             WHERE j.account_id = a.id AND j.state = 'claimed')))"""

#: The breaker trips on this failure: half-open (its probe failed), or closed and this is the
#: `:n`-th failure in a row. Column references are the row before the UPDATE.
TRIPS_SQL = """((breaker_opened_count > 0
          AND (breaker_open_until IS NULL OR breaker_open_until <= now()))
         OR (breaker_opened_count = 0 AND breaker_failures + 1 >= :n))"""

_SLUG = re.compile(r"[^a-z0-9]+")

#: How an account's credentials are stored: encrypted, and their names for operators.
CREDENTIAL_COLUMNS = ("credentials_ciphertext", "credential_names")


def updatable_columns(fields: Sequence[AccountField] = ACCOUNT_FIELDS) -> frozenset[str]:
    """The columns an update may set: one per updatable field, credentials as they are stored."""
    columns = {f.name for f in fields if f.updatable and f.kind is not FieldKind.CREDENTIALS}
    if any(f.updatable and f.kind is FieldKind.CREDENTIALS for f in fields):
        columns.update(CREDENTIAL_COLUMNS)
    return frozenset(columns)


def json_columns(fields: Sequence[AccountField] = ACCOUNT_FIELDS) -> frozenset[str]:
    """The columns stored as jsonb: lists of names, and the credential names."""
    return frozenset({f.name for f in fields if f.kind is FieldKind.NAMES}) | {"credential_names"}


#: Columns an update may set; the values are always bound parameters.
UPDATABLE = updatable_columns()
JSON_COLUMNS = json_columns()


#: An account whose known balance (`credits`, read from the provider or set by an operator) is
#: below this cannot pay for a job: it is not offered work (unknown credits: it is).
MIN_CREDITS = 1
CAN_PAY_SQL = f"(a.credits IS NULL OR a.credits >= {MIN_CREDITS})"


@dataclass(frozen=True)
class BalanceTarget:
    """An account whose balance the refresher reads (its credentials still encrypted)."""

    id: str
    provider_id: str
    base_url: str | None
    credentials_ciphertext: str


@dataclass(frozen=True)
class AccountSlots:
    id: str
    provider_id: str
    max_concurrent: int
    usable: bool
    busy: int
    #: The circuit breaker is not closed (open, or half-open waiting for its probe to succeed).
    breaker_tripped: bool = False


@dataclass(frozen=True)
class BreakerUpdate:
    """An account's breaker after a failure was recorded on it."""

    state: BreakerState
    #: This failure opened it.
    tripped: bool
    open_until: datetime | None
    opened_count: int


class AccountExists(Exception):
    """Another account already has this label (or the id made from it)."""


@dataclass(frozen=True)
class AccountView:
    """An account as shown to operators: never its credentials, only their names."""

    id: str
    provider_id: str
    label: str
    base_url: str | None
    max_concurrent: int
    priority: int
    status: AccountStatus  # `cooling_down` when active with a cooldown in the future
    status_reason: str | None
    cooldown_until: datetime | None
    busy: int
    claimed: int
    submitted: int
    daily_cap: int | None
    used_today: int
    credits: int | None
    operations: list[str] | None
    credential_names: list[str] | None
    last_used_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    breaker: BreakerState = BreakerState.CLOSED
    breaker_open_until: datetime | None = None
    breaker_failures: int = 0
    breaker_opened_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider_id": self.provider_id,
            "label": self.label,
            "base_url": self.base_url,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "cooldown_until": iso_or_none(self.cooldown_until),
            "breaker": {
                "state": self.breaker.value,
                "open_until": iso_or_none(self.breaker_open_until),
                "failures": self.breaker_failures,
                "opened_count": self.breaker_opened_count,
            },
            "max_concurrent": self.max_concurrent,
            "busy": self.busy,
            "in_flight": {"claimed": self.claimed, "submitted": self.submitted},
            "priority": self.priority,
            "daily_cap": self.daily_cap,
            "used_today": self.used_today,
            "credits": self.credits,
            "operations": self.operations,
            "credential_names": self.credential_names,
            "last_used_at": iso_or_none(self.last_used_at),
            "created_at": iso_or_none(self.created_at),
            "updated_at": iso_or_none(self.updated_at),
        }


def account_id_for(label: str) -> str:
    return _SLUG.sub("-", label.lower()).strip("-")[:64] or "account"


VIEW_SQL = f"""
    SELECT a.id, a.provider_id, a.label, a.base_url, a.max_concurrent, a.priority,
           a.status, a.status_reason, a.cooldown_until, a.daily_cap, a.credits, a.operations,
           a.credential_names, a.last_used_at, a.created_at, a.updated_at, now() AS now,
           a.breaker_failures, a.breaker_open_until, a.breaker_opened_count,
           {BUSY_SQL} AS busy, {USED_TODAY_SQL} AS used_today,
           (SELECT count(*) FROM dispatcher.dispatch_jobs j
             WHERE j.account_id = a.id AND j.state = 'claimed') AS claimed,
           (SELECT count(*) FROM dispatcher.dispatch_jobs j
             WHERE j.account_id = a.id AND j.state = 'submitted') AS submitted
      FROM dispatcher.provider_accounts a
"""


def view_from_row(r: Any) -> AccountView:
    return AccountView(
        id=r.id,
        provider_id=r.provider_id,
        label=r.label,
        base_url=r.base_url,
        max_concurrent=r.max_concurrent,
        priority=r.priority,
        status=account_status(r.status, r.cooldown_until, r.now),
        status_reason=r.status_reason,
        cooldown_until=r.cooldown_until,
        busy=r.busy,
        claimed=r.claimed,
        submitted=r.submitted,
        daily_cap=r.daily_cap,
        used_today=r.used_today,
        credits=r.credits,
        operations=r.operations,
        credential_names=r.credential_names,
        last_used_at=r.last_used_at,
        created_at=r.created_at,
        updated_at=r.updated_at,
        breaker=breaker_state(r.breaker_opened_count, r.breaker_open_until, r.now),
        breaker_open_until=r.breaker_open_until,
        breaker_failures=r.breaker_failures,
        breaker_opened_count=r.breaker_opened_count,
    )


def row_params(
    account_id: str,
    *,
    provider_id: str,
    label: str,
    credentials_ciphertext: str,
    credential_names: Sequence[str],
    max_concurrent: int,
    priority: int,
    base_url: str | None,
    operations: Sequence[str] | None,
    daily_cap: int | None,
) -> dict[str, Any]:
    """The bind parameters of an account row, as `insert_account` and `upsert_account` write it."""
    return {
        "id": account_id,
        "p": provider_id,
        "label": label,
        "url": base_url,
        "cred": credentials_ciphertext,
        "names": json.dumps(sorted(credential_names)),
        "maxc": max_concurrent,
        "prio": priority,
        "ops": json.dumps(list(operations)) if operations is not None else None,
        "cap": daily_cap,
    }


def iso_or_none(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class AccountQueries:
    """One transaction's connection; the parts of `AccountRepository` share it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

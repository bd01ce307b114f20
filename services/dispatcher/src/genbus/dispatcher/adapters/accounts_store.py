"""Provider accounts' SQL (`uow.accounts`): operators' records and the scheduler's standing.

Views are built from the row plus derived state (busy slots, today's submissions) and never
show a secret; the ciphertext is read only by `credentials_for_update`, for re-encryption.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.contracts.admin_accounts import ACCOUNT_FIELDS, AccountField, FieldKind
from genbus.dispatcher.domain.model import (
    AccountCandidate,
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
_TRIPS_SQL = """((breaker_opened_count > 0
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
_JSON_COLUMNS = json_columns()


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
            "cooldown_until": _iso(self.cooldown_until),
            "breaker": {
                "state": self.breaker.value,
                "open_until": _iso(self.breaker_open_until),
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
            "last_used_at": _iso(self.last_used_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


def account_id_for(label: str) -> str:
    return _SLUG.sub("-", label.lower()).strip("-")[:64] or "account"


_VIEW_SQL = f"""
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


def _view(r: Any) -> AccountView:
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


def _row_params(
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class AccountRepository:
    """Provider accounts as operators manage them, in one transaction (`uow.accounts`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def list_accounts(self) -> list[AccountView]:
        rows = await self._conn.execute(text(f"{_VIEW_SQL} ORDER BY a.provider_id, a.label"))
        return [_view(r) for r in rows]

    async def get_account(self, account_id: str) -> AccountView | None:
        row = (
            await self._conn.execute(text(f"{_VIEW_SQL} WHERE a.id = :a"), {"a": account_id})
        ).first()
        return _view(row) if row else None

    async def insert_account(
        self,
        *,
        provider_id: str,
        label: str,
        credentials_ciphertext: str,
        credential_names: Sequence[str],
        max_concurrent: int,
        priority: int = 0,
        base_url: str | None = None,
        operations: Sequence[str] | None = None,
        daily_cap: int | None = None,
        credits: int | None = None,
    ) -> str:
        """Create an account; AccountExists when its label (or id) is taken. Returns its id."""
        account_id = account_id_for(label)
        result = await self._conn.execute(
            text(
                """
                INSERT INTO dispatcher.provider_accounts
                    (id, provider_id, label, base_url, credentials_ciphertext, credential_names,
                     max_concurrent, priority, status, operations, daily_cap, credits)
                VALUES (:id, :p, :label, :url, :cred, CAST(:names AS jsonb), :maxc, :prio, 'active',
                        CAST(:ops AS jsonb), :cap, :credits)
                ON CONFLICT DO NOTHING
                """
            ),
            {
                **_row_params(
                    account_id,
                    provider_id=provider_id,
                    label=label,
                    credentials_ciphertext=credentials_ciphertext,
                    credential_names=credential_names,
                    max_concurrent=max_concurrent,
                    priority=priority,
                    base_url=base_url,
                    operations=operations,
                    daily_cap=daily_cap,
                ),
                "credits": credits,
            },
        )
        if not result.rowcount:
            raise AccountExists(label)
        return account_id

    async def upsert_account(
        self,
        *,
        provider_id: str,
        label: str,
        credentials_ciphertext: str,
        credential_names: Sequence[str],
        max_concurrent: int,
        priority: int = 0,
        base_url: str | None = None,
        operations: Sequence[str] | None = None,
        daily_cap: int | None = None,
    ) -> str:
        """Create the account, or update the one with this label (bootstrap seeding); its id."""
        account_id = account_id_for(label)
        await self._conn.execute(
            text(
                """
                INSERT INTO dispatcher.provider_accounts
                    (id, provider_id, label, base_url, credentials_ciphertext, credential_names,
                     max_concurrent, priority, status, operations, daily_cap)
                VALUES (:id, :p, :label, :url, :cred, CAST(:names AS jsonb), :maxc, :prio, 'active',
                        CAST(:ops AS jsonb), :cap)
                ON CONFLICT (label) DO UPDATE
                   SET provider_id = EXCLUDED.provider_id, base_url = EXCLUDED.base_url,
                       credentials_ciphertext = EXCLUDED.credentials_ciphertext,
                       credential_names = EXCLUDED.credential_names,
                       max_concurrent = EXCLUDED.max_concurrent, priority = EXCLUDED.priority,
                       operations = EXCLUDED.operations, daily_cap = EXCLUDED.daily_cap,
                       updated_at = now()
                """
            ),
            _row_params(
                account_id,
                provider_id=provider_id,
                label=label,
                credentials_ciphertext=credentials_ciphertext,
                credential_names=credential_names,
                max_concurrent=max_concurrent,
                priority=priority,
                base_url=base_url,
                operations=operations,
                daily_cap=daily_cap,
            ),
        )
        return account_id

    async def lock_account(self, account_id: str) -> str | None:
        """Lock the account row for a change; its provider id, or None when there is no such row."""
        provider_id = await self._conn.scalar(
            text("SELECT provider_id FROM dispatcher.provider_accounts WHERE id = :a FOR UPDATE"),
            {"a": account_id},
        )
        return str(provider_id) if provider_id is not None else None

    async def update_account(self, account_id: str, changes: Mapping[str, Any]) -> bool:
        """Set `changes` (columns from `UPDATABLE`); False when there is no such account.

        AccountExists when a new label is taken by another account.
        """
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        if not changes:
            return await self.lock_account(account_id) is not None
        assignments = []
        params: dict[str, Any] = {"a": account_id}
        for column, value in changes.items():
            if column in _JSON_COLUMNS:
                assignments.append(f"{column} = CAST(:{column} AS jsonb)")
                params[column] = json.dumps(value) if value is not None else None
            else:
                assignments.append(f"{column} = :{column}")
                params[column] = value
        if "label" in changes:
            taken = await self._conn.scalar(
                text("SELECT 1 FROM dispatcher.provider_accounts WHERE label = :l AND id <> :a"),
                {"l": changes["label"], "a": account_id},
            )
            if taken:
                raise AccountExists(str(changes["label"]))
        result = await self._conn.execute(
            text(
                f"UPDATE dispatcher.provider_accounts SET {', '.join(assignments)}, "
                "updated_at = now() WHERE id = :a"
            ),
            params,
        )
        return bool(result.rowcount)

    async def set_status(
        self,
        account_id: str,
        status: AccountStatus,
        reason: str | None,
        *,
        clear_cooldown: bool = False,
    ) -> bool:
        """Set the stored status (active, exhausted, disabled); False when there is no account.

        `clear_cooldown` (an operator's enable) also closes the circuit breaker.
        """
        if status is AccountStatus.COOLING_DOWN:
            raise ValueError("cooling_down is derived from cooldown_until, never stored")
        result = await self._conn.execute(
            text(
                """
                UPDATE dispatcher.provider_accounts
                   SET status = :st, status_reason = :reason, updated_at = now(),
                       cooldown_until = CASE WHEN :clear THEN NULL ELSE cooldown_until END,
                       breaker_failures = CASE WHEN :clear THEN 0 ELSE breaker_failures END,
                       breaker_open_until = CASE WHEN :clear THEN NULL
                                                 ELSE breaker_open_until END,
                       breaker_opened_count = CASE WHEN :clear THEN 0
                                                   ELSE breaker_opened_count END
                 WHERE id = :a
                """
            ),
            {
                "a": account_id,
                "st": status.value,
                "reason": reason[:500] if reason else None,
                "clear": clear_cooldown,
            },
        )
        return bool(result.rowcount)

    async def credentials_for_update(self) -> list[tuple[str, str]]:
        """(id, ciphertext) of every account, rows locked until the transaction ends."""
        rows = await self._conn.execute(
            text(
                "SELECT id, credentials_ciphertext FROM dispatcher.provider_accounts "
                "ORDER BY id FOR UPDATE"
            )
        )
        return [(r.id, r.credentials_ciphertext) for r in rows]

    # -- standing, as the scheduler and submissions see it ---------------------------------

    async def available(self) -> list[AccountCandidate]:
        """Active accounts out of cooldown whose breaker lets a claim through, with busy slots
        and today's use derived from jobs."""
        rows = await self._conn.execute(
            text(
                f"""
                SELECT a.id, a.provider_id, a.operations, a.max_concurrent, a.priority,
                       a.last_used_at, a.daily_cap, {BUSY_SQL} AS busy,
                       CASE WHEN a.daily_cap IS NULL THEN 0 ELSE {USED_TODAY_SQL} END
                           AS used_today
                  FROM dispatcher.provider_accounts a
                 WHERE a.status = 'active'
                   AND (a.cooldown_until IS NULL OR a.cooldown_until <= now())
                   AND {BREAKER_LETS_THROUGH_SQL}
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

    async def reserve_slot(self, account_id: str) -> bool:
        """Lock the account row, then count its busy slots (and today's use) under the lock.

        The count is a separate statement on purpose: in READ COMMITTED each statement takes a
        fresh snapshot, so it sees every claim committed by whoever held the lock before us.
        Claims on this account cannot commit while we hold it, and releases only lower the count.
        A half-open breaker takes one claim at a time (its probe): none of its jobs may be claimed.
        """
        account = (
            await self._conn.execute(
                text(
                    """
                    SELECT max_concurrent, daily_cap, breaker_opened_count
                      FROM dispatcher.provider_accounts
                     WHERE id = :a AND status = 'active'
                       AND (cooldown_until IS NULL OR cooldown_until <= now())
                       AND (breaker_open_until IS NULL OR breaker_open_until <= now())
                       FOR UPDATE SKIP LOCKED
                    """
                ),
                {"a": account_id},
            )
        ).first()
        if account is None:
            return False
        counts = (
            await self._conn.execute(
                text(
                    f"""
                    SELECT {BUSY_SQL} AS busy,
                           CASE WHEN a.daily_cap IS NULL THEN 0 ELSE {USED_TODAY_SQL} END
                               AS used_today,
                           CASE WHEN a.breaker_opened_count = 0 THEN 0
                                ELSE (SELECT count(*) FROM dispatcher.dispatch_jobs j
                                       WHERE j.account_id = a.id AND j.state = 'claimed')
                           END AS claimed
                      FROM dispatcher.provider_accounts a
                     WHERE a.id = :a
                    """
                ),
                {"a": account_id},
            )
        ).one()
        if counts.busy >= account.max_concurrent:
            return False
        if account.breaker_opened_count > 0 and counts.claimed > 0:
            return False  # half-open: its probe is in flight
        return account.daily_cap is None or counts.used_today < account.daily_cap

    async def cool_down(self, account_id: str, seconds: float, reason: str) -> None:
        await self._conn.execute(
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

    async def record_breaker_failure(
        self, account_id: str, *, threshold: int, open_s: float, max_s: float
    ) -> BreakerUpdate | None:
        """A transient failure (timeout, 5xx, answer lost) on the account; None if no account.

        Closed: counted; the `threshold`-th in a row opens the breaker for `open_s`. Half-open
        (the probe, or anything else, failed): open again at once, each trip in a row doubling
        the pause up to `max_s`. Open: only counted.
        """
        row = (
            await self._conn.execute(
                text(
                    f"""
                    UPDATE dispatcher.provider_accounts
                       SET breaker_failures = CASE WHEN {_TRIPS_SQL} THEN 0
                                                   ELSE breaker_failures + 1 END,
                           breaker_open_until = CASE WHEN {_TRIPS_SQL}
                               THEN now() + make_interval(secs => LEAST(
                                   CAST(:max AS double precision),
                                   CAST(:open AS double precision)
                                       * power(2, breaker_opened_count)))
                               ELSE breaker_open_until END,
                           breaker_opened_count = breaker_opened_count
                               + CASE WHEN {_TRIPS_SQL} THEN 1 ELSE 0 END,
                           updated_at = now()
                     WHERE id = :a
                    RETURNING breaker_failures, breaker_open_until, breaker_opened_count,
                              now() AS now
                    """
                ),
                {"a": account_id, "n": threshold, "open": open_s, "max": max_s},
            )
        ).first()
        if row is None:
            return None
        return BreakerUpdate(
            state=breaker_state(row.breaker_opened_count, row.breaker_open_until, row.now),
            # A failure that does not trip leaves at least one failure counted.
            tripped=row.breaker_failures == 0,
            open_until=row.breaker_open_until,
            opened_count=row.breaker_opened_count,
        )

    async def record_breaker_success(self, account_id: str) -> bool:
        """The provider accepted a submission: the breaker closes. Whether it was not clean."""
        result = await self._conn.execute(
            text(
                """
                UPDATE dispatcher.provider_accounts
                   SET breaker_failures = 0, breaker_open_until = NULL,
                       breaker_opened_count = 0, updated_at = now()
                 WHERE id = :a AND (breaker_failures > 0 OR breaker_opened_count > 0)
                """
            ),
            {"a": account_id},
        )
        return bool(result.rowcount)

    async def mark_exhausted(self, account_id: str, reason: str) -> None:
        """The provider says the account's credits are spent: record 0 credits, stop using it."""
        await self._conn.execute(
            text(
                "UPDATE dispatcher.provider_accounts SET status = 'exhausted', credits = 0, "
                "status_reason = :reason, updated_at = now() WHERE id = :a"
            ),
            {"a": account_id, "reason": reason[:500]},
        )

    async def slots(self) -> list[AccountSlots]:
        """Every account's cap, whether it may take work now, and its busy slots (gauges)."""
        rows = await self._conn.execute(
            text(
                f"""
                SELECT a.id, a.provider_id, a.max_concurrent,
                       a.status = 'active'
                           AND (a.cooldown_until IS NULL OR a.cooldown_until <= now())
                           AND (a.breaker_open_until IS NULL OR a.breaker_open_until <= now())
                           AS usable,
                       a.breaker_opened_count > 0 AS breaker_tripped,
                       {BUSY_SQL} AS busy
                  FROM dispatcher.provider_accounts a
                """
            )
        )
        return [
            AccountSlots(r.id, r.provider_id, r.max_concurrent, r.usable, r.busy, r.breaker_tripped)
            for r in rows
        ]

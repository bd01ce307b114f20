"""Accounts as the scheduler sees them: which can take a job, slots, cooldowns, breakers."""

from __future__ import annotations

from sqlalchemy import text

from genbus.dispatcher.adapters.account_rows import (
    BREAKER_LETS_THROUGH_SQL,
    BUSY_SQL,
    CAN_PAY_SQL,
    MIN_CREDITS,
    TRIPS_SQL,
    USED_TODAY_SQL,
    AccountQueries,
    AccountSlots,
    BalanceTarget,
    BreakerUpdate,
)
from genbus.dispatcher.domain.model import (
    AccountCandidate,
    breaker_state,
)


class AccountStanding(AccountQueries):
    """Slot reservations and each account's standing with its provider."""

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
                   AND {CAN_PAY_SQL}
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
                    f"""
                    SELECT max_concurrent, daily_cap, breaker_opened_count
                      FROM dispatcher.provider_accounts
                     WHERE id = :a AND status = 'active'
                       AND (cooldown_until IS NULL OR cooldown_until <= now())
                       AND (breaker_open_until IS NULL OR breaker_open_until <= now())
                       AND (credits IS NULL OR credits >= {MIN_CREDITS})
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
                       SET breaker_failures = CASE WHEN {TRIPS_SQL} THEN 0
                                                   ELSE breaker_failures + 1 END,
                           breaker_open_until = CASE WHEN {TRIPS_SQL}
                               THEN now() + make_interval(secs => LEAST(
                                   CAST(:max AS double precision),
                                   CAST(:open AS double precision)
                                       * power(2, breaker_opened_count)))
                               ELSE breaker_open_until END,
                           breaker_opened_count = breaker_opened_count
                               + CASE WHEN {TRIPS_SQL} THEN 1 ELSE 0 END,
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

    async def balance_targets(self) -> list[BalanceTarget]:
        """Accounts whose balance is worth reading: active, or exhausted (they may have been
        topped up); disabled ones are left alone."""
        rows = await self._conn.execute(
            text(
                "SELECT id, provider_id, base_url, credentials_ciphertext "
                "FROM dispatcher.provider_accounts WHERE status IN ('active', 'exhausted') "
                "ORDER BY id"
            )
        )
        return [
            BalanceTarget(r.id, r.provider_id, r.base_url, r.credentials_ciphertext) for r in rows
        ]

    async def record_balance(self, account_id: str, credits: int) -> bool:
        """The provider's balance of the account; an exhausted account that can pay again is
        active again. Whether the account is active now."""
        result = await self._conn.execute(
            text(
                f"""
                UPDATE dispatcher.provider_accounts
                   SET credits = :c, updated_at = now(),
                       status = CASE WHEN status = 'exhausted' AND :c >= {MIN_CREDITS}
                                     THEN 'active' ELSE status END,
                       status_reason = CASE WHEN status = 'exhausted' AND :c >= {MIN_CREDITS}
                                            THEN NULL ELSE status_reason END
                 WHERE id = :a
             RETURNING (status = 'active') AS active
                """
            ),
            {"a": account_id, "c": credits},
        )
        row = result.first()
        return bool(row is not None and row.active)

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

"""The account a job runs on, or why the poller cannot use it.

Unreadable credentials and invalid entries never heal by themselves: the job fails at once.
An unknown account may be one the dispatcher has not written to the directory yet: it is
looked for again until the grace period after submission has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from genbus.contracts import (
    ACCOUNT_CREDENTIALS_UNREADABLE,
    ACCOUNT_ENTRY_INVALID,
    ACCOUNT_UNKNOWN,
    ErrorInfo,
    GenerationSubmitted,
)
from genbus.poller.adapters.account_directory import (
    AccountAccess,
    AccountCredentialsUnreadable,
    AccountEntryInvalid,
    AccountUnknown,
)
from genbus.poller.dependencies import Accounts
from genbus.poller.domain.timeline import age_s
from genbus.runtime.consumer import RedeliverLater

#: Wait between looks for an account the directory does not have yet.
UNKNOWN_ACCOUNT_RETRY_S = 1.0


@dataclass(frozen=True)
class Unusable:
    """The job must fail with `failure`; `reason` (safe to log) says why."""

    failure: ErrorInfo
    reason: str


async def account_for(
    directory: Accounts, event: GenerationSubmitted, grace_s: float, now: datetime
) -> AccountAccess | Unusable:
    """The job's account, or why it cannot be used; RedeliverLater while it may still appear."""
    try:
        access = await directory.get(event.account_id)
    except AccountCredentialsUnreadable as exc:
        return Unusable(ACCOUNT_CREDENTIALS_UNREADABLE, exc.reason)
    except AccountEntryInvalid as exc:
        return Unusable(ACCOUNT_ENTRY_INVALID, exc.reason)
    except AccountUnknown as exc:
        waited = age_s(event, now)
        if waited < grace_s:
            delay = min(UNKNOWN_ACCOUNT_RETRY_S, grace_s - waited)
            raise RedeliverLater(delay, "account not in the directory yet") from None
        return Unusable(ACCOUNT_UNKNOWN, f"{exc.reason} {waited:.0f} s after submission")
    # A disabled account's jobs in flight still finish; the status is sealed with the entry.
    if access.provider_id != event.provider_id:
        return Unusable(ACCOUNT_ENTRY_INVALID, "the account belongs to another provider")
    return access

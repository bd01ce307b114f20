"""Provider accounts' SQL (`uow.accounts`): operators' records and the scheduler's standing.

Views are built from the row plus derived state (busy slots, today's submissions) and never
show a secret; the ciphertext is read only by `credentials_for_update`, for re-encryption.
The repository is one object made of parts with one concern each: `AccountRecords` (what
operators do) and `AccountStanding` (what the scheduler does); shared SQL in `account_rows`.
"""

from __future__ import annotations

from genbus.dispatcher.adapters.account_records import AccountRecords
from genbus.dispatcher.adapters.account_rows import (
    UPDATABLE,
    AccountExists,
    AccountSlots,
    AccountView,
    BreakerUpdate,
    account_id_for,
    json_columns,
    updatable_columns,
)
from genbus.dispatcher.adapters.account_standing import AccountStanding

__all__ = [
    "UPDATABLE",
    "AccountExists",
    "AccountRepository",
    "AccountSlots",
    "AccountView",
    "BreakerUpdate",
    "account_id_for",
    "json_columns",
    "updatable_columns",
]


class AccountRepository(AccountRecords, AccountStanding):
    """Provider accounts, in one transaction (`uow.accounts`)."""

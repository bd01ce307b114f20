"""The api's tables as the fakes hold them (one transaction's copy, or the committed state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import cast
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.change_log import ChangeRecord
from genbus.api.adapters.idempotency import StoredKey
from genbus.api.domain.api_keys import ApiKey
from genbus.api.domain.model import Generation

#: What the fake repositories give their SQL base classes: they never use it.
NO_CONNECTION = cast(AsyncConnection, None)


@dataclass
class Tables:
    """The api's tables. Rows are immutable values: a write replaces the row, so a shallow copy
    of each table is a snapshot."""

    generations: dict[UUID, Generation] = field(default_factory=dict)
    idempotency_keys: dict[tuple[str, str], StoredKey] = field(default_factory=dict)
    change_log: list[ChangeRecord] = field(default_factory=list)
    #: id -> (key, digest of the secret).
    api_keys: dict[UUID, tuple[ApiKey, str]] = field(default_factory=dict)
    #: (user id, UTC day) -> generations created: the daily quota's counter.
    daily_usage: dict[tuple[str, date], int] = field(default_factory=dict)

    def copy(self) -> Tables:
        return Tables(
            dict(self.generations),
            dict(self.idempotency_keys),
            list(self.change_log),
            dict(self.api_keys),
            dict(self.daily_usage),
        )

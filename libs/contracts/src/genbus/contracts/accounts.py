"""The provider account directory: the dispatcher owns accounts, the poller reads this mirror.

It lives in a JetStream key-value bucket so the poller stays stateless and independent of the
dispatcher's database. Credentials in it are sealed together with the rest of the entry; only
holders of the key can read them, and only in the entry they were sealed for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from genbus.contracts.common import ContractModel, ProviderId

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class KvBinding(Generic[M]):
    bucket: str
    model: type[M]
    history: int = 1


class AccountDirectoryEntry(ContractModel):
    """What a service needs to call a provider on behalf of one account."""

    account_id: str = Field(min_length=1, max_length=64)
    provider_id: ProviderId
    base_url: str | None = Field(default=None, max_length=500)
    sealed_credentials: str = Field(
        description="The credentials JSON sealed (AES-GCM) with `bound_fields()` as associated "
        "data: an entry copied under another key or with any field edited does not open"
    )
    active: bool = True

    def bound_fields(self) -> bytes:
        """What the credentials are sealed together with: every other field, canonically."""
        fields = {
            "account_id": self.account_id,
            "provider_id": self.provider_id,
            "base_url": self.base_url,
            "active": self.active,
        }
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


ACCOUNT_DIRECTORY = KvBinding("genbus_provider_accounts", AccountDirectoryEntry)

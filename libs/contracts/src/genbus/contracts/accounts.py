"""The provider account directory: the dispatcher owns accounts, the poller reads this mirror.

It lives in a JetStream key-value bucket so the poller stays stateless and independent of the
dispatcher's database. Credentials in it are encrypted; only holders of the key can read them.
"""

from __future__ import annotations

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
    credentials_ciphertext: str = Field(description="Fernet token of the credentials JSON")
    active: bool = True


ACCOUNT_DIRECTORY = KvBinding("genbus_provider_accounts", AccountDirectoryEntry)

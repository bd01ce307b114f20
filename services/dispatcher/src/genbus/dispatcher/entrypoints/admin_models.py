"""Bodies the admin API accepts. Credential values are `SecretStr` and never echoed in errors."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from genbus.dispatcher.service_layer.accounts import AccountChanges, NewAccount
from genbus.providers import Credentials

_CONFIG = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

#: Fields of an update that may be null (meaning: clear it).
_NULLABLE = frozenset({"base_url", "operations", "daily_cap", "credits"})


def _credentials(values: dict[str, SecretStr]) -> Credentials:
    return Credentials({name: value.get_secret_value() for name, value in values.items()})


class AccountCreate(BaseModel):
    model_config = _CONFIG

    provider_id: str = Field(min_length=1, max_length=32)
    label: str = Field(min_length=1, max_length=100)
    max_concurrent: int = Field(ge=1, le=100_000)
    priority: int = Field(default=0, ge=-1000, le=1000)
    base_url: str | None = Field(default=None, max_length=500)
    operations: list[str] | None = Field(default=None, min_length=1)
    daily_cap: int | None = Field(default=None, ge=1)
    credits: int | None = Field(default=None, ge=0)
    #: Write-only: name → secret value. Responses show only the names.
    credentials: dict[str, SecretStr] = Field(min_length=1)

    def to_new_account(self) -> NewAccount:
        return NewAccount(
            provider_id=self.provider_id,
            label=self.label,
            credentials=_credentials(self.credentials),
            max_concurrent=self.max_concurrent,
            priority=self.priority,
            base_url=self.base_url,
            operations=self.operations,
            daily_cap=self.daily_cap,
            credits=self.credits,
        )


class AccountUpdate(BaseModel):
    """Only the fields sent change; null clears `base_url`, `operations`, `daily_cap`, `credits`."""

    model_config = _CONFIG

    label: str | None = Field(default=None, min_length=1, max_length=100)
    max_concurrent: int | None = Field(default=None, ge=1, le=100_000)
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    base_url: str | None = Field(default=None, max_length=500)
    operations: list[str] | None = Field(default=None, min_length=1)
    daily_cap: int | None = Field(default=None, ge=1)
    credits: int | None = Field(default=None, ge=0)
    #: Write-only: replaces the account's whole set of credentials.
    credentials: dict[str, SecretStr] | None = Field(default=None, min_length=1)

    def null_fields(self) -> list[str]:
        """Fields sent as null that cannot be cleared."""
        return sorted(
            name for name in self.model_fields_set - _NULLABLE if getattr(self, name) is None
        )

    def to_changes(self) -> AccountChanges:
        values: dict[str, Any] = {
            name: getattr(self, name) for name in self.model_fields_set if name != "credentials"
        }
        return AccountChanges(
            values=values,
            credentials=_credentials(self.credentials) if self.credentials else None,
        )


class DisableRequest(BaseModel):
    model_config = _CONFIG

    reason: str = Field(min_length=1, max_length=500)

"""Webhooks settings (env prefix GENBUS_WEBHOOKS_, plus the shared NATS/DB URLs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from genbus.runtime.settings import RuntimeSettings
from genbus.webhooks.domain.addresses import AddressPolicy
from genbus.webhooks.domain.retry import DEFAULT_SCHEDULE_S, DisablePolicy, RetryPolicy


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class WebhooksSettings(RuntimeSettings):
    model_config = SettingsConfigDict(env_prefix="GENBUS_WEBHOOKS_", extra="ignore")

    #: Fernet keys encrypting the endpoints' signing secrets, comma-separated: the first
    #: encrypts, all decrypt (rotation). Falls back to GENBUS_CREDENTIALS_KEYS.
    secret_keys: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("GENBUS_WEBHOOKS_SECRET_KEYS", "GENBUS_CREDENTIALS_KEYS"),
    )
    #: The api, asked who a bearer key belongs to (`GET /api/v1/me`).
    api_url: str = "http://127.0.0.1:8000"
    #: How long a key's answer from the api is reused (revoked keys work that much longer).
    auth_cache_s: float = Field(default=30.0, ge=0)
    auth_timeout_s: float = Field(default=3.0, gt=0)
    #: Networks (CIDR, or a single address) a delivery may reach although they are not public,
    #: comma-separated: e.g. `127.0.0.0/8,::1` for a receiver on this machine. Empty: public only.
    allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Seconds to wait after the 1st, 2nd, ... failed try, comma-separated; after the last one
    #: the delivery is failed (a replay sends it again).
    retry_schedule_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SCHEDULE_S)
    )
    retry_jitter: float = Field(default=0.2, ge=0, le=1)
    #: An endpoint is disabled after this many failed tries in a row, spread over at least
    #: `disable_after_s` seconds.
    disable_after_failures: int = Field(default=20, ge=1)
    disable_after_s: float = Field(default=24 * 3600.0, ge=0)
    #: Bounds of one attempt: connect + send + read, and the response bytes read.
    attempt_timeout_s: float = Field(default=15.0, gt=0)
    max_response_bytes: int = Field(default=64 * 1024, ge=0)
    #: How long a claimed delivery is held by this replica; above `attempt_timeout_s`.
    lease_s: float = Field(default=60.0, gt=0)
    #: Deliveries claimed at once, and sent concurrently, per replica.
    batch_size: int = Field(default=32, ge=1)
    #: Safety-net wake-up of the delivery worker when no event woke it.
    poll_interval_s: float = Field(default=1.0, gt=0)
    replica_id: str = ""

    @field_validator("allow_networks", "retry_schedule_s", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _csv(value)

    #: Finished deliveries (succeeded or failed) and their attempts are deleted this long after
    #: their last attempt, `purge_batch` rows at a time every `purge_interval_s`.
    retention_h: float = Field(default=30 * 24.0, gt=0)
    purge_interval_s: float = Field(default=300.0, gt=0)
    purge_batch: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> WebhooksSettings:
        if self.lease_s <= self.attempt_timeout_s:
            raise ValueError("lease_s must exceed attempt_timeout_s (a lease covers an attempt)")
        return self

    def address_policy(self) -> AddressPolicy:
        return AddressPolicy.from_strings(self.allow_networks)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(tuple(self.retry_schedule_s), self.retry_jitter)

    def disable_policy(self) -> DisablePolicy:
        return DisablePolicy(self.disable_after_failures, self.disable_after_s)

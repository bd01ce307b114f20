"""Poller settings (env prefix GENBUS_POLLER_, plus the shared NATS URL)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from genbus.runtime.settings import RuntimeSettings


class PollerSettings(RuntimeSettings):
    model_config = SettingsConfigDict(env_prefix="GENBUS_POLLER_", extra="ignore")

    credentials_keys: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("GENBUS_CREDENTIALS_KEYS", "GENBUS_POLLER_CREDENTIALS_KEYS"),
    )
    #: Delay before the second poll; each later one doubles, up to `poll_max_s`.
    poll_initial_s: float = 0.05
    poll_max_s: float = 5.0
    #: Messages fetched per pull; each is one provider job polled concurrently.
    batch_size: int = 256
    directory_ttl_s: float = 10.0

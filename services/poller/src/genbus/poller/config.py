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
    #: Bounds of the delay between polls of one job (a tenth of the job's age in between).
    poll_initial_s: float = 0.05
    poll_max_s: float = 2.0
    #: Messages fetched per pull. Each is one provider job, handled on its own as soon as it
    #: arrives (a slow one never holds back the next pull or its neighbours).
    batch_size: int = Field(default=256, ge=1)
    #: Bulkhead: jobs of one provider polled at once on a replica. A message whose provider is
    #: at the limit is nak'ed and offered again after `provider_busy_retry_s` (jittered).
    max_polls_per_provider: int = Field(default=64, ge=1)
    provider_busy_retry_s: float = Field(default=1.0, gt=0)
    #: How long a readable account stays cached (unusable ones are never cached).
    directory_ttl_s: float = 10.0
    #: How long after the submitted event's `occurred_at` an account missing from the directory
    #: is waited for (the dispatcher writes the directory every few seconds) before the job
    #: fails with `account_unknown`.
    account_unknown_grace_s: float = 60.0

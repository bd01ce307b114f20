"""Settings every service shares: where NATS and Postgres are, and how to log."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """Base settings of a genbus service. Services subclass it with their own prefix."""

    model_config = SettingsConfigDict(env_prefix="GENBUS_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "GENBUS_NATS_URL"),
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=AliasChoices("DATABASE_URL", "GENBUS_DATABASE_URL"),
    )
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    #: Seconds a service waits for in-hand work to finish on SIGTERM before it exits anyway.
    shutdown_grace_s: float = 20.0

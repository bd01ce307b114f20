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
    # Shared by every service whatever its own prefix, hence the explicit names.
    log_format: Literal["json", "console"] = Field(
        default="json", validation_alias=AliasChoices("GENBUS_LOG_FORMAT")
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("GENBUS_LOG_LEVEL"))
    #: Replicas of the streams and KV buckets: 1 on a single server, 3 on a NATS cluster.
    stream_replicas: int = Field(
        default=1, ge=1, le=5, validation_alias=AliasChoices("GENBUS_STREAM_REPLICAS")
    )
    #: Probes, metrics (and the dispatcher's admin API) of worker services; 0 disables.
    health_host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("GENBUS_HEALTH_HOST")
    )
    health_port: int = Field(default=0, ge=0, validation_alias=AliasChoices("GENBUS_HEALTH_PORT"))
    #: Seconds a service waits for in-hand work to finish on SIGTERM before it exits anyway.
    shutdown_grace_s: float = Field(
        default=20.0, validation_alias=AliasChoices("GENBUS_SHUTDOWN_GRACE_S")
    )

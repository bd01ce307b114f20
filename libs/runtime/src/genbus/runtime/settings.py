"""Settings every service shares: where NATS and Postgres are, and how to log."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Of `shutdown_grace_s`, the seconds kept for flushing and closing after in-hand work drained.
SHUTDOWN_CLOSE_RESERVE_S = 4.0


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
    #: Seconds from SIGTERM to exit: in-hand work gets all of it but `SHUTDOWN_CLOSE_RESERVE_S`
    #: (`drain_s`), which is kept for the last steps (flushing, closing connections). A pod's
    #: `terminationGracePeriodSeconds` must exceed it (tests/deploy checks the manifests).
    shutdown_grace_s: float = Field(
        default=20.0, gt=0, validation_alias=AliasChoices("GENBUS_SHUTDOWN_GRACE_S")
    )

    def drain_s(self) -> float:
        """How long in-hand work (messages, provider calls) may take to finish on SIGTERM."""
        return max(self.shutdown_grace_s - SHUTDOWN_CLOSE_RESERVE_S, 0.0)

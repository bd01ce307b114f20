"""Settings every service shares: where NATS and Postgres are, and how to log."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from genbus.contracts import DEAD_LETTER_STREAM, GENERATIONS_STREAM, StreamSpec
from genbus.runtime.db import DbTimeouts, create_engine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

#: Of `shutdown_grace_s`, the seconds kept for flushing and closing after in-hand work drained.
SHUTDOWN_CLOSE_RESERVE_S = 4.0


class RuntimeSettings(BaseSettings):
    """Base settings of a genbus service. Services subclass it with their own prefix."""

    model_config = SettingsConfigDict(env_prefix="GENBUS_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "GENBUS_NATS_URL"),
    )
    #: This service's NATS identity (see `genbus.contracts.permissions`); unset: the URL's
    #: `user:password@`, or none (a server without authentication).
    nats_user: str | None = Field(default=None, validation_alias=AliasChoices("GENBUS_NATS_USER"))
    nats_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GENBUS_NATS_PASSWORD")
    )
    #: The CA that signed the NATS server's certificate: set, every connection uses TLS and
    #: verifies the server against it. Unset: TLS only for `tls://` URLs, against system CAs.
    nats_tls_ca: str | None = Field(
        default=None, validation_alias=AliasChoices("GENBUS_NATS_TLS_CA")
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

    # Database bounds on every connection (`genbus.runtime.db.DbTimeouts`); 0 turns one off.
    db_statement_timeout_s: float = Field(
        default=15.0, ge=0, validation_alias=AliasChoices("GENBUS_DB_STATEMENT_TIMEOUT_S")
    )
    db_lock_timeout_s: float = Field(
        default=5.0, ge=0, validation_alias=AliasChoices("GENBUS_DB_LOCK_TIMEOUT_S")
    )
    db_idle_in_transaction_timeout_s: float = Field(
        default=30.0,
        ge=0,
        validation_alias=AliasChoices("GENBUS_DB_IDLE_IN_TRANSACTION_TIMEOUT_S"),
    )
    #: The client's wait for any one statement; keep it above the statement timeout.
    db_command_timeout_s: float = Field(
        default=20.0, gt=0, validation_alias=AliasChoices("GENBUS_DB_COMMAND_TIMEOUT_S")
    )
    db_connect_timeout_s: float = Field(
        default=5.0, gt=0, validation_alias=AliasChoices("GENBUS_DB_CONNECT_TIMEOUT_S")
    )
    #: Idle seconds before the server probes this session's socket (then every 10 s, 6 times).
    db_tcp_keepalives_idle_s: int = Field(
        default=60, ge=0, validation_alias=AliasChoices("GENBUS_DB_TCP_KEEPALIVES_IDLE_S")
    )
    #: Connections each of this service's engines keeps open. Work past them waits for one
    #: rather than opening more: a connection opened and closed per burst of work costs both
    #: sides a connect and Postgres a backend start (the throughput bench measured 6-11 % less
    #: CPU per generation without them).
    db_pool_size: int = Field(
        default=20, ge=1, validation_alias=AliasChoices("GENBUS_DB_POOL_SIZE")
    )
    #: The longest work waits for a pooled connection; then it fails as in a database outage
    #: (a request answers 503, a message is redelivered).
    db_pool_timeout_s: float = Field(
        default=10.0, gt=0, validation_alias=AliasChoices("GENBUS_DB_POOL_TIMEOUT_S")
    )
    #: Size bounds of the streams (bytes; -1 none); the oldest messages go first past them.
    stream_max_bytes: int = Field(
        default=GENERATIONS_STREAM.max_bytes,
        ge=-1,
        validation_alias=AliasChoices("GENBUS_STREAM_MAX_BYTES"),
    )
    stream_max_msgs: int = Field(
        default=GENERATIONS_STREAM.max_msgs,
        ge=-1,
        validation_alias=AliasChoices("GENBUS_STREAM_MAX_MSGS"),
    )
    dlq_max_bytes: int = Field(
        default=DEAD_LETTER_STREAM.max_bytes,
        ge=-1,
        validation_alias=AliasChoices("GENBUS_DLQ_MAX_BYTES"),
    )
    dlq_max_msgs: int = Field(
        default=DEAD_LETTER_STREAM.max_msgs,
        ge=-1,
        validation_alias=AliasChoices("GENBUS_DLQ_MAX_MSGS"),
    )

    def db_timeouts(self) -> DbTimeouts:
        """The bounds every engine of this service applies to its connections."""
        return DbTimeouts(
            statement_s=self.db_statement_timeout_s,
            lock_s=self.db_lock_timeout_s,
            idle_in_transaction_s=self.db_idle_in_transaction_timeout_s,
            command_timeout_s=self.db_command_timeout_s,
            connect_s=self.db_connect_timeout_s,
            tcp_keepalives_idle_s=self.db_tcp_keepalives_idle_s,
        )

    def db_engine(self, database_url: str, *, pool_size: int | None = None) -> AsyncEngine:
        """An engine with this service's pool and timeouts (`pool_size`: another pool size)."""
        return create_engine(
            database_url,
            pool_size=pool_size or self.db_pool_size,
            pool_timeout_s=self.db_pool_timeout_s,
            timeouts=self.db_timeouts(),
        )

    def streams(self) -> tuple[StreamSpec, StreamSpec]:
        """The event and dead-letter streams as the contracts state them, sized by this config."""
        return (
            replace(
                GENERATIONS_STREAM, max_bytes=self.stream_max_bytes, max_msgs=self.stream_max_msgs
            ),
            replace(DEAD_LETTER_STREAM, max_bytes=self.dlq_max_bytes, max_msgs=self.dlq_max_msgs),
        )

    def drain_s(self) -> float:
        """How long in-hand work (messages, provider calls) may take to finish on SIGTERM."""
        return max(self.shutdown_grace_s - SHUTDOWN_CLOSE_RESERVE_S, 0.0)

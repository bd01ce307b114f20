"""Database engines: one async SQLAlchemy engine per service, on asyncpg."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@dataclass(frozen=True)
class DbTimeouts:
    """Bounds on every connection of an engine, so an overloaded or hung database costs a quick
    error (a consumer naks and retries, a request answers 503) instead of a piled-up wait.

    Server side (Postgres session settings, sent at connect through asyncpg's
    `server_settings`; 0 turns one off):

    - `statement_s`: `statement_timeout`, any statement running longer is cancelled
      (`asyncpg.QueryCanceledError`, SQLSTATE 57014);
    - `lock_s`: `lock_timeout`, a statement waiting longer for a lock fails
      (`asyncpg.LockNotAvailableError`, 55P03);
    - `idle_in_transaction_s`: `idle_in_transaction_session_timeout`, a session left idle inside
      a transaction is ended by the server, releasing its locks;
    - `tcp_keepalives_idle_s`, `tcp_keepalives_interval_s`, `tcp_keepalives_count`: the server's
      keepalive probes on this session's socket, so the server notices a vanished client.

    Client side (asyncpg):

    - `command_timeout_s`: the longest the client waits for any one statement's answer
      (`TimeoutError`), also when the server or the network went silent; kept above
      `statement_s` so the server's cancellation, with its clear error, normally comes first;
    - `connect_s`: the longest a new connection may take to open.

    asyncpg has no client-side TCP keepalive option (libpq's `keepalives*` have no equivalent):
    a dead peer on an idle pooled connection shows as an error on its next statement, and on a
    busy one within `command_timeout_s`.
    """

    statement_s: float = 15.0
    lock_s: float = 5.0
    idle_in_transaction_s: float = 30.0
    command_timeout_s: float | None = 20.0
    connect_s: float = 5.0
    tcp_keepalives_idle_s: int = 60
    tcp_keepalives_interval_s: int = 10
    tcp_keepalives_count: int = 6

    @classmethod
    def unbounded(cls) -> DbTimeouts:
        """No statement, lock, idle or command bound: for migrations, whose DDL may take long
        and which wait on purpose for another replica's migration (an advisory lock)."""
        return cls(statement_s=0, lock_s=0, idle_in_transaction_s=0, command_timeout_s=None)

    def server_settings(self) -> dict[str, str]:
        return {
            "statement_timeout": _ms(self.statement_s),
            "lock_timeout": _ms(self.lock_s),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_s),
            "tcp_keepalives_idle": str(self.tcp_keepalives_idle_s),
            "tcp_keepalives_interval": str(self.tcp_keepalives_interval_s),
            "tcp_keepalives_count": str(self.tcp_keepalives_count),
        }

    def connect_args(self) -> dict[str, Any]:
        """asyncpg's `connect()` arguments carrying these bounds."""
        return {
            "server_settings": self.server_settings(),
            "command_timeout": self.command_timeout_s,
            "timeout": self.connect_s,
        }


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


def async_database_url(url: str) -> str:
    """`postgresql://…` as given by operators, turned into the asyncpg dialect URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 0,
    pool_timeout_s: float = 10.0,
    timeouts: DbTimeouts | None = None,
) -> AsyncEngine:
    """An engine whose every connection carries `timeouts` (default: `DbTimeouts()`; services
    pass `settings.db_timeouts()`, from `GENBUS_DB_*`).

    No `pool_pre_ping`: on asyncpg a ping is BEGIN, `;`, ROLLBACK, three round trips per
    checkout, which measured as the largest share of the services' database work (`bench/`).
    A connection that died meanwhile (Postgres restarted) fails its first statement instead;
    SQLAlchemy then invalidates the whole pool, so each process sees one failure per outage:
    a consumer's message is redelivered, an API request answers 503.

    No overflow by default: work past `pool_size` waits up to `pool_timeout_s` for a pooled
    connection (then `sqlalchemy.exc.TimeoutError`, handled as an outage). Overflow
    connections are closed when returned to a full pool, so under load they were opened and
    closed per request: a Postgres backend started each time.
    """
    return create_async_engine(
        async_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        pool_recycle=1800,
        connect_args=(timeouts or DbTimeouts()).connect_args(),
    )

"""Database engines: one async SQLAlchemy engine per service, on asyncpg."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_database_url(url: str) -> str:
    """`postgresql://…` as given by operators, turned into the asyncpg dialect URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """An engine without `pool_pre_ping`: on asyncpg a ping is BEGIN, `;`, ROLLBACK, three
    round trips per checkout, which measured as the largest share of the services' database
    work (`bench/`). A connection that died meanwhile (Postgres restarted) fails its first
    statement instead; SQLAlchemy then invalidates the whole pool, so each process sees one
    failure per outage: a consumer's message is redelivered, an API request answers 503.
    """
    return create_async_engine(
        async_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
    )

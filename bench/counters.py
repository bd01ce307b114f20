"""Work counters of the infrastructure, read before and after a load phase: database commits and
row changes and sessions opened (`pg_stat_database`: a pool that opens connections under load
shows there), NATS messages in and out (the monitor's `/varz`). Divided by
the generations completed meanwhile, they say how many round trips one generation costs."""

from __future__ import annotations

import asyncpg
import httpx

_PG_SQL = """
SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched,
       sessions
  FROM pg_stat_database WHERE datname = current_database()
"""


async def snapshot(database_url: str, nats_monitor_url: str | None) -> dict[str, float]:
    counters: dict[str, float] = {}
    conn = await asyncpg.connect(database_url)
    try:
        # The statistics collector reports with a delay; ask for a fresh snapshot.
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await conn.fetchrow(_PG_SQL)
    finally:
        await conn.close()
    if row is not None:
        counters.update({f"db_{key}": float(value) for key, value in row.items()})
    if nats_monitor_url is not None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            varz = (await client.get(f"{nats_monitor_url}/varz")).json()
        counters["nats_in_msgs"] = float(varz.get("in_msgs", 0))
        counters["nats_out_msgs"] = float(varz.get("out_msgs", 0))
    return counters


def per_generation(
    before: dict[str, float], after: dict[str, float], generations: int
) -> dict[str, float]:
    """(after - before) / generations for every counter present in both."""
    if generations <= 0:
        return {}
    return {
        key: (after[key] - before[key]) / generations
        for key in sorted(before.keys() & after.keys())
    }

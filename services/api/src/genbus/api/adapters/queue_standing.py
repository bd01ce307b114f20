"""Where a pending generation stands in its provider's queue, from the api's own tables.

The dispatcher's order is priority (higher first), then fair share between users (a freed slot
goes to the user with the fewest generations in flight), then due time. The api does not read
the dispatcher's schema, so it estimates that order from `api.generations`:

- ahead of a generation G of user U (pending, provider P, operation O, priority p) are every
  due pending generation of P/O at a higher priority, U's own pending ones at p that arrived
  before G (k of them), and, for each other user V with pending generations at p, those whose
  fair-share rank comes first: V's j-th waiting generation ranks `processing(V) + j`, G ranks
  `processing(U) + k`, so V has `clamp(rank(G) - processing(V), 0, pending(V))` ahead.
- Approximations: a generation the dispatcher claimed but the provider has not yet accepted
  still counts as pending here; ties in rank (the dispatcher gives them to the user served
  longest ago) count as behind; users capped by `max_in_flight` are not told apart; counts stop
  at `POSITION_CAP`.
- Cost: index ranges only (`ix_generations_pending_queue`, `ix_generations_processing_user`):
  the users with pending generations at p (a skip scan), and at most the generations ranked
  ahead, never the whole backlog.

The estimated start is now + (position + 1) / turnover, where turnover is the rate at which
P's generations end after reaching the provider (`turnover_rate`): P's generations in flight
over the mean time at the provider of its last n <= `TURNOVER_ENDS` ends within
`TURNOVER_WINDOW_S` (Little's law: right as soon as the slots fill, whatever the pace before);
with none in flight, those ends over the time from the first of them to now. Index ranges only:
`ix_generations_provider_turnover` read backwards, `ix_generations_processing_user`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.domain.model import Generation
from genbus.api.domain.status import GenerationStatus

POSITION_CAP = 10_000
TURNOVER_WINDOW_S = 60.0
TURNOVER_ENDS = 32

_STANDING_SQL = """
WITH RECURSIVE
mine AS (
    SELECT count(*) AS n FROM (
        SELECT 1 FROM api.generations
         WHERE status = 'pending' AND provider_id = :p AND operation_type = :o
           AND priority = :prio AND user_id = :u AND (created_at, id) < (:created, :id)
         LIMIT :cap) s),
my_flying AS (
    SELECT count(*) AS n FROM api.generations WHERE status = 'processing' AND user_id = :u),
higher AS (
    SELECT count(*) AS n FROM (
        SELECT 1 FROM api.generations
         WHERE status = 'pending' AND provider_id = :p AND operation_type = :o
           AND priority > :prio AND COALESCE(scheduled_at, created_at) <= :now
         LIMIT :cap) s),
users AS (
    (SELECT user_id FROM api.generations
      WHERE status = 'pending' AND provider_id = :p AND operation_type = :o AND priority = :prio
      ORDER BY user_id LIMIT 1)
    UNION ALL
    SELECT (SELECT g.user_id FROM api.generations g
             WHERE g.status = 'pending' AND g.provider_id = :p AND g.operation_type = :o
               AND g.priority = :prio AND g.user_id > users.user_id
             ORDER BY g.user_id LIMIT 1)
      FROM users WHERE users.user_id IS NOT NULL),
others AS (
    SELECT COALESCE(sum(ahead.n), 0) AS n
      FROM users u
     CROSS JOIN mine CROSS JOIN my_flying
     CROSS JOIN LATERAL (
           SELECT count(*) AS n FROM api.generations f
            WHERE f.status = 'processing' AND f.user_id = u.user_id) flying
     CROSS JOIN LATERAL (
           SELECT count(*) AS n FROM (
               SELECT 1 FROM api.generations q
                WHERE q.status = 'pending' AND q.provider_id = :p AND q.operation_type = :o
                  AND q.priority = :prio AND q.user_id = u.user_id
                  AND COALESCE(q.scheduled_at, q.created_at) <= :now
                LIMIT GREATEST(LEAST(my_flying.n + mine.n - flying.n, :cap), 0)) s) ahead
     WHERE u.user_id IS NOT NULL AND u.user_id <> :u),
recent_ends AS (
    SELECT submitted_at, completed_at FROM api.generations
     WHERE provider_id = :p AND submitted_at IS NOT NULL AND completed_at > :since
     ORDER BY completed_at DESC LIMIT :recent),
turnover AS (
    SELECT count(*) AS n, EXTRACT(EPOCH FROM :now - min(completed_at)) AS span_s,
           EXTRACT(EPOCH FROM avg(completed_at - submitted_at)) AS job_s
      FROM recent_ends),
provider_flying AS (
    SELECT count(*) AS n FROM (
        SELECT 1 FROM api.generations
         WHERE status = 'processing' AND provider_id = :p LIMIT :cap) s)
SELECT LEAST(higher.n + mine.n + others.n, :cap) AS position,
       turnover.n AS ended, turnover.span_s, turnover.job_s, provider_flying.n AS flying
  FROM higher, mine, others, turnover, provider_flying
"""


@dataclass(frozen=True)
class QueueStanding:
    position: int
    estimated_start_at: datetime | None


async def queue_standing(
    conn: AsyncConnection, g: Generation, now: datetime
) -> QueueStanding | None:
    """Its estimated place and start; None unless it is pending."""
    if g.status is not GenerationStatus.PENDING:
        return None
    row = (
        await conn.execute(
            text(_STANDING_SQL),
            {
                "p": g.provider_id,
                "o": g.operation_type,
                "prio": g.priority,
                "u": g.user_id,
                "created": g.created_at,
                "id": g.id,
                "now": now,
                "cap": POSITION_CAP,
                "since": now - timedelta(seconds=TURNOVER_WINDOW_S),
                "recent": TURNOVER_ENDS,
            },
        )
    ).one()
    rate = turnover_rate(
        ended=int(row.ended),
        span_s=_seconds(row.span_s),
        job_s=_seconds(row.job_s),
        flying=int(row.flying),
    )
    return standing_of(g, now, int(row.position), rate)


def turnover_rate(*, ended: int, span_s: float, job_s: float, flying: int) -> float | None:
    """Generations the provider ends per second (None: unknown): its jobs in flight over the
    recent jobs' mean time at the provider (Little's law: right as soon as the slots fill), else,
    with nothing in flight, the recent ends over the time since the first of them."""
    if flying > 0 and job_s > 0 and ended > 0:
        return flying / job_s
    if ended > 1 and span_s > 0:
        return ended / span_s
    return None


def _seconds(value: Decimal | float | None) -> float:
    return float(value) if value is not None else 0.0


def standing_of(g: Generation, now: datetime, position: int, rate: float | None) -> QueueStanding:
    """The estimated start from the position and the provider's turnover (generations ended
    per second; None: unknown)."""
    start: datetime | None = None
    if rate:
        start = now + timedelta(seconds=(position + 1) / rate)
        if g.scheduled_at is not None and g.scheduled_at > start:
            start = g.scheduled_at
    return QueueStanding(position, start)

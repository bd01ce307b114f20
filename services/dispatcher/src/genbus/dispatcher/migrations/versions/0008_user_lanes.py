"""Fair share between users: per (user, priority) lanes with the user's jobs in flight; the
wait reason last reported for a job (`wait_reason`, `wait_sequence`).

`dispatcher.user_lanes` holds, for each user and priority (0..10), how many of the user's jobs
wait queued at that priority, how many of the user's jobs are in flight (claimed or submitted,
the same number on every lane of the user), the user's in-flight cap (from its latest request)
and when a job of the user was last claimed. A trigger on `dispatch_jobs` keeps it current on
every insert, state change and delete, so no writer can forget it. The claim walks the lanes
that have queued jobs and are under their cap in (priority DESC, in_flight, last_claimed_at)
order, and takes each lane's head job through `ix_dispatch_jobs_user_queue`.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The advisory lock class of a user's lanes (`pg_advisory_xact_lock(class, hashtext(user))`).
LANES_LOCK = 727_011

TRACK_FUNCTION = """
CREATE OR REPLACE FUNCTION dispatcher.track_user_lanes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_queued int := 0;
    new_queued int := 0;
    old_flying int := 0;
    new_flying int := 0;
    cap integer;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_queued := (OLD.state = 'queued')::int;
        old_flying := (OLD.state IN ('claimed', 'submitted'))::int;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_queued := (NEW.state = 'queued')::int;
        new_flying := (NEW.state IN ('claimed', 'submitted'))::int;
    END IF;
    IF TG_OP = 'INSERT' OR old_flying <> new_flying OR old_queued <> new_queued
       OR (TG_OP = 'UPDATE' AND new_queued = 1 AND NEW.priority <> OLD.priority) THEN
        -- One writer of a user's lanes at a time: writers that touch several users take
        -- these locks up front in user order (`lock_users`), so they never deadlock.
        PERFORM pg_advisory_xact_lock(LANES_LOCK, hashtext(COALESCE(NEW.user_id, OLD.user_id)));
    END IF;
    IF TG_OP = 'INSERT' THEN
        cap := CAST(NEW.request ->> 'max_in_flight' AS integer);
        -- Every lane of a user exists from its first job on, so its in-flight count is on all.
        PERFORM 1 FROM dispatcher.user_lanes WHERE user_id = NEW.user_id AND priority = 0;
        IF NOT FOUND THEN
            INSERT INTO dispatcher.user_lanes (user_id, priority, max_in_flight)
            SELECT NEW.user_id, p, cap FROM generate_series(0, 10) AS p
            ON CONFLICT DO NOTHING;
        END IF;
        IF new_queued = 1 THEN
            -- The user's latest request sets its cap.
            UPDATE dispatcher.user_lanes SET max_in_flight = cap
             WHERE user_id = NEW.user_id AND max_in_flight IS DISTINCT FROM cap;
        END IF;
    END IF;
    IF old_flying <> new_flying THEN
        UPDATE dispatcher.user_lanes
           SET in_flight = in_flight + new_flying - old_flying,
               last_claimed_at = CASE WHEN new_flying > old_flying THEN now()
                                      ELSE last_claimed_at END
         WHERE user_id = COALESCE(NEW.user_id, OLD.user_id);
    END IF;
    IF TG_OP <> 'INSERT' AND old_queued = 1 AND (new_queued = 0 OR NEW.priority <> OLD.priority)
    THEN
        UPDATE dispatcher.user_lanes SET queued = queued - 1
         WHERE user_id = OLD.user_id AND priority = OLD.priority;
    END IF;
    IF new_queued = 1 AND (old_queued = 0 OR NEW.priority <> OLD.priority) THEN
        UPDATE dispatcher.user_lanes SET queued = queued + 1
         WHERE user_id = NEW.user_id AND priority = NEW.priority;
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGER = """
CREATE TRIGGER tr_dispatch_jobs_user_lanes
AFTER INSERT OR DELETE OR UPDATE OF state, priority ON dispatcher.dispatch_jobs
FOR EACH ROW EXECUTE FUNCTION dispatcher.track_user_lanes()
"""

BACKFILL = """
INSERT INTO dispatcher.user_lanes (user_id, priority, queued, in_flight, max_in_flight)
SELECT u.user_id, p,
       (SELECT count(*) FROM dispatcher.dispatch_jobs j
         WHERE j.user_id = u.user_id AND j.priority = p AND j.state = 'queued'),
       (SELECT count(*) FROM dispatcher.dispatch_jobs j
         WHERE j.user_id = u.user_id AND j.state IN ('claimed', 'submitted')),
       NULL
  FROM (SELECT DISTINCT user_id FROM dispatcher.dispatch_jobs
         WHERE state IN ('queued', 'claimed', 'submitted')) u,
       generate_series(0, 10) AS p
"""


def upgrade() -> None:
    # What the dispatcher last told the api about why the job waits (`GenerationWaiting`).
    op.add_column(
        "dispatch_jobs",
        sa.Column("wait_reason", sa.String(length=32), nullable=True),
        schema="dispatcher",
    )
    op.add_column(
        "dispatch_jobs",
        sa.Column("wait_sequence", sa.Integer(), server_default="0", nullable=False),
        schema="dispatcher",
    )
    op.create_table(
        "user_lanes",
        sa.Column("user_id", sa.String(length=128), primary_key=True),
        sa.Column("priority", sa.Integer(), primary_key=True),
        sa.Column("queued", sa.Integer(), server_default="0", nullable=False),
        sa.Column("in_flight", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_in_flight", sa.Integer(), nullable=True),
        sa.Column("last_claimed_at", sa.DateTime(timezone=True), nullable=True),
        schema="dispatcher",
    )
    op.create_index(
        "ix_user_lanes_claim_order",
        "user_lanes",
        [
            sa.literal_column("priority DESC"),
            "in_flight",
            sa.literal_column("last_claimed_at NULLS FIRST"),
            "user_id",
        ],
        unique=False,
        schema="dispatcher",
        postgresql_where=sa.text(
            "queued > 0 AND (max_in_flight IS NULL OR in_flight < max_in_flight)"
        ),
    )
    op.create_index(
        "ix_dispatch_jobs_user_queue",
        "dispatch_jobs",
        ["user_id", "priority", "due_at", "seq"],
        unique=False,
        schema="dispatcher",
        postgresql_where=sa.text("state = 'queued'"),
    )
    op.execute(BACKFILL)
    op.execute(TRACK_FUNCTION.replace("LANES_LOCK", str(LANES_LOCK)))
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER tr_dispatch_jobs_user_lanes ON dispatcher.dispatch_jobs")
    op.execute("DROP FUNCTION dispatcher.track_user_lanes()")
    op.drop_index("ix_dispatch_jobs_user_queue", table_name="dispatch_jobs", schema="dispatcher")
    op.drop_index("ix_user_lanes_claim_order", table_name="user_lanes", schema="dispatcher")
    op.drop_table("user_lanes", schema="dispatcher")
    op.drop_column("dispatch_jobs", "wait_sequence", schema="dispatcher")
    op.drop_column("dispatch_jobs", "wait_reason", schema="dispatcher")

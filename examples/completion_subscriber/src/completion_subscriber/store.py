"""The subscriber's own state: the notices it recorded (its effect) and the events it has
processed (its dedup record), in one SQLite database, written in one transaction.

Because the effect and the dedup record commit together, a crash leaves either both or
neither: a redelivered event whose notice exists is recognised by its `event_id` and skipped,
and one whose notice does not exist is applied. A real service whose effect lives elsewhere
(an email, a call to another API) would put the dedup record next to that effect, or make the
effect idempotent by `event_id` itself.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from genbus.contracts import GenerationCompleted

#: A notice's asset URL must fit this: a longer one makes the event a poison message.
MAX_URL_CHARS = 2048

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS processed_events (
    event_id TEXT PRIMARY KEY,
    processed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- The effect. No unique key on event_id on purpose: only processed_events keeps it single.
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    generation_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    asset_url TEXT CHECK (asset_url IS NULL OR length(asset_url) <= {MAX_URL_CHARS}),
    error_code TEXT
);
"""


class PoisonEvent(Exception):
    """The event can never be applied (retrying cannot help)."""


@dataclass(frozen=True)
class Counts:
    processed: int
    notices: int


class NoticeStore:
    """One connection, used from one thread at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Durable at commit: a notice recorded is never lost to a crash of the machine.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def record_once(self, event: GenerationCompleted) -> bool:
        """Record the event's notice unless this event was processed already; True if it was
        recorded now. Both rows commit together or not at all."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seen = db.execute(
                "INSERT OR IGNORE INTO processed_events (event_id) VALUES (?)",
                (str(event.event_id),),
            )
            if seen.rowcount == 0:
                db.execute("ROLLBACK")
                return False
            db.execute(
                "INSERT INTO notices (event_id, generation_id, user_id, status, asset_url,"
                " error_code) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    str(event.event_id),
                    str(event.generation_id),
                    event.user_id,
                    event.status.value,
                    str(event.asset.url) if event.asset else None,
                    event.error.code if event.error else None,
                ),
            )
            db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK")
            raise PoisonEvent(f"notice refused by the database: {exc}") from exc
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    def counts(self) -> Counts:
        (processed,) = self._db.execute("SELECT count(*) FROM processed_events").fetchone()
        (notices,) = self._db.execute("SELECT count(*) FROM notices").fetchone()
        return Counts(processed, notices)

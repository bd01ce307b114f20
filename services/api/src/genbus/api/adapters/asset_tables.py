"""Stored copies of generations' outputs (`generation_assets`), one row per output.

`status`: `pending` (to copy; `next_attempt_at` says when), `stored` (in the object store under
`object_key`, with `size`, `sha256`, `media_type`), `failed` (past its budget or refused:
`error_code` is `asset_archive_failed`, `error_detail` says why).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlmodel import SQLModel

SCHEMA = "api"
PENDING, STORED, FAILED = "pending", "stored", "failed"
ARCHIVE_FAILED = "asset_archive_failed"

generation_assets = Table(
    "generation_assets",
    SQLModel.metadata,
    Column("generation_id", Uuid, nullable=False),
    Column("n", SmallInteger, nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("source_url", Text, nullable=False),
    Column("expected_media_type", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", SmallInteger, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("object_key", String(512), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("media_type", String(100), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_detail", String(500), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("generation_id", "n", name="pk_generation_assets"),
    # What the archiver claims: copies still to make, soonest first.
    Index(
        "ix_generation_assets_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
    schema=SCHEMA,
)

#: Files users uploaded to use as generation inputs, stored under `object_key`
#: (`uploads/<user>/<id>`): their size, sha256 and the media type their bytes showed.
uploads = Table(
    "uploads",
    SQLModel.metadata,
    Column("id", Uuid, nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("object_key", String(512), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("filename", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("id", name="pk_uploads"),
    # A user's uploads newest first (lists, quota sums); retention scans by age.
    Index("ix_uploads_user_created", "user_id", "created_at"),
    Index("ix_uploads_created", "created_at"),
    schema=SCHEMA,
)

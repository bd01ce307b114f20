"""The data-scale bench's bulk rows: generations and queued jobs, COPYed in chunks."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

#: Who anonymous requests act as (the api's `default_user_id`).
BENCH_USER = "local"
CHUNK = 20_000
OTHER_USERS = 1_000


async def table_columns(conn: asyncpg.Connection, schema: str, table: str) -> dict[str, bool]:
    """Column name → required (NOT NULL without a default)."""
    rows = await conn.fetch(
        """SELECT column_name, is_nullable, column_default, is_identity
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2""",
        schema,
        table,
    )
    return {
        r["column_name"]: r["is_nullable"] == "NO"
        and r["column_default"] is None
        and r["is_identity"] == "NO"
        for r in rows
    }


def usable_row(
    available: dict[str, bool], row: dict[str, Any], table: str
) -> tuple[list[str], Callable[[dict[str, Any]], tuple[Any, ...]]]:
    """The columns to COPY: ours that exist; fail clearly on a required column we do not know."""
    unknown = [c for c, required in available.items() if required and c not in row]
    if unknown:
        raise RuntimeError(f"{table} has required columns the bench does not fill: {unknown}")
    columns = [c for c in row if c in available]
    return columns, lambda r: tuple(r[c] for c in columns)


def generation_rows(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = timedelta(days=180)
    for i in range(count):
        created = now - span + span * (i / count) + timedelta(milliseconds=rng.random() * 500)
        user = BENCH_USER if rng.random() < 0.1 else f"user-{rng.randrange(OTHER_USERS):04d}"
        roll = rng.random()
        status = "completed" if roll < 0.9 else "failed" if roll < 0.98 else "cancelled"
        gid = uuid.UUID(int=rng.getrandbits(128), version=4)
        prompt = f"a cinematic shot of scene {i} with soft light, slow dolly in"
        params = {"prompt": prompt, "quality": "720p"}
        canonical = {**params, "aspect_ratio": "16:9", "duration": 5}
        done = created + timedelta(seconds=20 + rng.random() * 60)
        asset = (
            json.dumps(
                {
                    "url": f"https://assets.example/{gid.hex}.mp4",
                    "media_type": "video/mp4",
                    "width": 1280,
                    "height": 720,
                    "duration_s": 5.0,
                }
            )
            if status == "completed"
            else None
        )
        error = (
            json.dumps({"code": "provider_failed", "message": "failed", "retryable": False})
            if status == "failed"
            else None
        )
        yield {
            "id": gid,
            "user_id": user,
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "status": status,
            "params": json.dumps(params),
            "canonical_params": json.dumps(canonical),
            "inputs": "[]",
            "canonical_inputs": "[]",
            "priority": 5,
            "scheduled_at": None,
            "deadline_at": created + timedelta(hours=1),
            "reproducible_hash": f"{rng.getrandbits(256):064x}",
            "name": None,
            "metadata": "{}",
            "attempt": 1 if status != "cancelled" else 0,
            "account_id": "bench-account" if status != "cancelled" else None,
            "provider_job_id": gid.hex if status != "cancelled" else None,
            "asset": asset,
            "error": error,
            "created_at": created,
            "updated_at": done,
            "submitted_at": created + timedelta(seconds=1) if status != "cancelled" else None,
            "completed_at": done,
            "parent_generation_id": None,
            "prompt_version_id": None,
        }


def job_rows(count: int, request: str, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for _ in range(count):
        gid = uuid.UUID(int=rng.getrandbits(128), version=4)
        arrived = now - timedelta(seconds=rng.random() * 3600)
        yield {
            "generation_id": gid,
            "user_id": f"user-{rng.randrange(OTHER_USERS):04d}",
            "provider_id": "sim",
            "operation_type": "text_to_video",
            "request": request.replace("00000000-0000-4000-8000-000000000000", str(gid)),
            "priority": rng.choice((5, 5, 5, 5, 0, 3, 7, 10)),
            "scheduled_at": None,
            "due_at": arrived,
            "deadline_at": now + timedelta(hours=1),
            "state": "queued",
            "attempt": 0,
            "submit_tries": 0,
            "cancel_requested": False,
            "created_at": arrived,
            "updated_at": arrived,
        }


def request_template() -> str:
    from genbus.contracts import GenerationRequested

    now = datetime.now(UTC)
    return GenerationRequested(
        event_id=uuid.uuid4(),
        occurred_at=now,
        generation_id=uuid.UUID("00000000-0000-4000-8000-000000000000"),
        user_id="bench",
        provider_id="sim",
        operation_type="text_to_video",
        params={"prompt": "bench", "quality": "720p"},
        deadline_at=now + timedelta(hours=1),
        reproducible_hash="0" * 64,
    ).model_dump_json()


async def copy_rows(
    conn: asyncpg.Connection, schema: str, table: str, rows: Iterator[dict[str, Any]]
) -> float:
    """COPY `rows` in chunks; seconds taken."""
    started = time.monotonic()
    available = await table_columns(conn, schema, table)
    chunk: list[dict[str, Any]] = []
    columns: list[str] | None = None
    values: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
    for row in rows:
        if columns is None:
            columns, values = usable_row(available, row, f"{schema}.{table}")
        chunk.append(row)
        if len(chunk) >= CHUNK:
            await flush_rows(conn, schema, table, columns, values, chunk)
    if chunk and columns is not None:
        await flush_rows(conn, schema, table, columns, values, chunk)
    await conn.execute(f"ANALYZE {schema}.{table}")
    return time.monotonic() - started


async def flush_rows(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: list[str],
    values: Callable[[dict[str, Any]], tuple[Any, ...]] | None,
    chunk: list[dict[str, Any]],
) -> None:
    assert values is not None
    await conn.copy_records_to_table(
        table, schema_name=schema, columns=columns, records=[values(r) for r in chunk]
    )
    chunk.clear()


# -- timing ------------------------------------------------------------------------------------

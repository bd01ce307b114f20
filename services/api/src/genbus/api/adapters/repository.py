"""SQL for generations. Every status change is a compare-and-set: `UPDATE … WHERE id = … AND
status IN (…)`, where the allowed statuses come from the domain's state machine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    delete,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.queue_standing import QueueStanding, queue_standing
from genbus.api.adapters.tables import generations
from genbus.api.domain.listing import Cursor, GenerationFilter, Page
from genbus.api.domain.model import Generation
from genbus.api.domain.status import (
    CANCELLABLE_AT_ONCE,
    NON_TERMINAL,
    RESUBMITTABLE,
    TERMINAL,
    GenerationStatus,
    sources_of,
)
from genbus.contracts import Asset, ErrorInfo
from genbus.runtime.rows import dataclass_from_row

_t = generations


def _status_in(statuses: Iterable[GenerationStatus]) -> ColumnElement[bool]:
    """`status IN (…)` with the statuses (constants of the state machine) written into the
    SQL: no list parameter to expand into the statement at each execution."""
    return _t.c.status.in_([literal_column(f"'{s.value}'") for s in sorted(statuses)])


def writing_transaction_id() -> ColumnElement[Any]:
    # xid8 (64 bits, never wraps); as text, since drivers differ on how they decode xid8.
    return func.pg_current_xact_id().cast(Text)


class GenerationRepository:
    """Reads and compare-and-set writes of generations, inside the caller's transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, generation: Generation) -> int:
        """Insert `generation`; returns the id of the writing transaction (admission control
        compares it with a backlog read's snapshot to tell whether the read counted the row)."""
        written = (
            _t.insert().values(**generation_row(generation)).returning(writing_transaction_id())
        )
        return int((await self._conn.execute(written)).scalar_one())

    async def get(self, generation_id: UUID, *, user_id: str | None = None) -> Generation | None:
        """The generation, or None when missing (or not `user_id`'s, when given)."""
        query = select(_t).where(_t.c.id == generation_id)
        if user_id is not None:
            query = query.where(_t.c.user_id == user_id)
        row = (await self._conn.execute(query)).mappings().first()
        return _to_domain(row) if row is not None else None

    async def list_page(
        self, user_id: str, where: GenerationFilter, *, after: Cursor | None, limit: int
    ) -> Page:
        """Up to `limit` of `user_id`'s generations matching `where`, newest first, strictly
        after `after`; `next_cursor` is set when more may follow."""
        query = select(_t).where(_t.c.user_id == user_id)
        if where.statuses:
            query = query.where(_t.c.status.in_(sorted(where.statuses)))
        if where.operation_types:
            query = query.where(_t.c.operation_type.in_(sorted(where.operation_types)))
        if where.provider_ids:
            query = query.where(_t.c.provider_id.in_(sorted(where.provider_ids)))
        if where.created_after is not None:
            query = query.where(_t.c.created_at >= where.created_after)
        if where.created_before is not None:
            query = query.where(_t.c.created_at < where.created_before)
        if after is not None:
            query = query.where(tuple_(_t.c.created_at, _t.c.id) < (after.created_at, after.id))
        query = query.order_by(_t.c.created_at.desc(), _t.c.id.desc()).limit(limit + 1)
        rows = (await self._conn.execute(query)).mappings().all()
        items = [_to_domain(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = items[-1] if items else None
        cursor = Cursor(last.created_at, last.id) if more and last is not None else None
        return Page(items=items, next_cursor=cursor)

    async def delete_terminal(self, generation_id: UUID, *, user_id: str) -> Generation | None:
        """Delete `user_id`'s generation if it is terminal; None when it was not deleted."""
        result = await self._conn.execute(
            delete(_t)
            .where(
                _t.c.id == generation_id,
                _t.c.user_id == user_id,
                _status_in(TERMINAL),
            )
            .returning(*_t.c)
        )
        row = result.mappings().first()
        return _to_domain(row) if row is not None else None

    async def get_many(self, ids: Iterable[UUID], *, user_id: str) -> dict[UUID, Generation]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        query = select(_t).where(_t.c.id.in_(wanted), _t.c.user_id == user_id)
        rows = (await self._conn.execute(query)).mappings().all()
        return {row["id"]: _to_domain(row) for row in rows}

    async def record_submission(
        self,
        generation_id: UUID,
        *,
        attempt: int,
        account_id: str,
        provider_job_id: str,
        submitted_at: datetime,
        now: datetime,
        cost: float | None = None,
    ) -> Generation | None:
        """pending → processing; or a later attempt's details on a processing generation
        (`cost`, when the provider's submit answer told it, is the attempt's actual cost)."""
        allowed = or_(
            _status_in(sources_of(GenerationStatus.PROCESSING)),
            and_(_status_in(RESUBMITTABLE), _t.c.attempt < attempt),
        )
        return await self._compare_and_set(
            generation_id,
            allowed,
            status=GenerationStatus.PROCESSING,
            attempt=attempt,
            account_id=account_id,
            provider_job_id=provider_job_id,
            submitted_at=submitted_at,
            updated_at=now,
            **({"actual_cost": cost} if cost is not None else {}),
        )

    async def record_late_submission(
        self,
        generation_id: UUID,
        *,
        attempt: int,
        account_id: str,
        provider_job_id: str,
        submitted_at: datetime,
        now: datetime,
        cost: float | None = None,
    ) -> Generation | None:
        """The submission of the attempt that already ended the generation (its completed event
        arrived first): fill in what only the submission tells, leave the outcome alone."""
        allowed = and_(
            _status_in(TERMINAL),
            _t.c.attempt == attempt,
            _t.c.submitted_at.is_(None),
        )
        return await self._compare_and_set(
            generation_id,
            allowed,
            submitted_at=submitted_at,
            account_id=func.coalesce(_t.c.account_id, account_id),
            provider_job_id=func.coalesce(_t.c.provider_job_id, provider_job_id),
            updated_at=now,
            actual_cost=func.coalesce(_t.c.actual_cost, cost),
        )

    async def record_outcome(
        self,
        generation_id: UUID,
        status: GenerationStatus,
        *,
        asset: Asset | None,
        error: ErrorInfo | None,
        completed_at: datetime,
        now: datetime,
        attempt: int | None = None,
        account_id: str | None = None,
        provider_job_id: str | None = None,
        cost: float | None = None,
    ) -> Generation | None:
        """Move to terminal `status` unless already terminal (the first terminal state wins)."""
        values: dict[str, Any] = {
            "status": status,
            "asset": asset.model_dump(mode="json") if asset else None,
            "error": error.model_dump(mode="json") if error else None,
            "completed_at": completed_at,
            "updated_at": now,
        }
        if attempt:
            values["attempt"] = attempt
        if account_id is not None:
            values["account_id"] = account_id
        if provider_job_id is not None:
            values["provider_job_id"] = provider_job_id
        if cost is not None:
            values["actual_cost"] = cost
        return await self._compare_and_set(generation_id, _status_in(sources_of(status)), **values)

    async def note_asset_stored(
        self, generation_id: UUID, *, sha256: str, size_bytes: int, media_type: str, now: datetime
    ) -> Generation | None:
        """Note on the generation's asset that genbus holds a copy (the media type its bytes
        showed); None when the generation is gone or has no asset."""
        patch = func.jsonb_build_object(
            "stored", True, "sha256", sha256, "size_bytes", size_bytes, "media_type", media_type
        )
        return await self._compare_and_set(
            generation_id, _t.c.asset.is_not(None), asset=_t.c.asset.op("||")(patch), updated_at=now
        )

    async def queue_standing(self, g: Generation, now: datetime) -> QueueStanding | None:
        """Where a pending generation stands in its provider's queue (`queue_standing`)."""
        return await queue_standing(self._conn, g, now)

    async def record_wait(
        self,
        generation_id: UUID,
        *,
        reason: str,
        next_attempt_at: datetime | None,
        sequence: int,
        now: datetime,
    ) -> Generation | None:
        """The dispatcher's latest reason for holding a pending generation back; an older
        report (lower `sequence`) or one about a generation no longer pending changes nothing."""
        return await self._compare_and_set(
            generation_id,
            and_(_t.c.status == GenerationStatus.PENDING, _t.c.wait_sequence < sequence),
            dispatch_wait=reason,
            next_attempt_at=next_attempt_at,
            wait_sequence=sequence,
            updated_at=now,
        )

    async def cancel_at_once(self, generation_id: UUID, *, at: datetime) -> Generation | None:
        """pending → cancelled, only while still pending."""
        return await self._compare_and_set(
            generation_id,
            _status_in(CANCELLABLE_AT_ONCE),
            status=GenerationStatus.CANCELLED,
            completed_at=at,
            updated_at=at,
        )

    async def fail_overdue(
        self, *, due_before: datetime, error: ErrorInfo, at: datetime, limit: int
    ) -> list[Generation]:
        """Fail up to `limit` non-terminal generations whose deadline is before `due_before`.

        Rows another replica is updating right now are skipped, not waited for.
        """
        open_statuses = list(NON_TERMINAL)
        overdue = (
            select(_t.c.id)
            .where(_status_in(open_statuses), _t.c.deadline_at < due_before)
            .order_by(_t.c.deadline_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        result = await self._conn.execute(
            update(_t)
            .where(_t.c.id.in_(overdue), _status_in(open_statuses))
            .values(
                status=GenerationStatus.FAILED,
                error=error.model_dump(mode="json"),
                completed_at=at,
                updated_at=at,
            )
            .returning(*_t.c)
        )
        return [_to_domain(row) for row in result.mappings().all()]

    async def _compare_and_set(
        self, generation_id: UUID, allowed: ColumnElement[bool], **values: Any
    ) -> Generation | None:
        """Apply `values` if the row is still in an allowed state; None when it was not."""
        result = await self._conn.execute(
            update(_t).where(_t.c.id == generation_id, allowed).values(**values).returning(*_t.c)
        )
        row = result.mappings().first()
        return _to_domain(row) if row is not None else None


def generation_row(g: Generation) -> dict[str, Any]:
    """The generation's columns."""
    return {
        "id": g.id,
        "user_id": g.user_id,
        "operation_type": g.operation_type,
        "provider_id": g.provider_id,
        "status": g.status,
        "params": g.params,
        "canonical_params": g.canonical_params,
        "inputs": g.inputs,
        "canonical_inputs": g.canonical_inputs,
        "priority": g.priority,
        "scheduled_at": g.scheduled_at,
        "deadline_at": g.deadline_at,
        "reproducible_hash": g.reproducible_hash,
        "name": g.name,
        "metadata": g.metadata,
        "attempt": g.attempt,
        "account_id": g.account_id,
        "provider_job_id": g.provider_job_id,
        "asset": g.asset.model_dump(mode="json") if g.asset else None,
        "error": g.error.model_dump(mode="json") if g.error else None,
        "created_at": g.created_at,
        "updated_at": g.updated_at,
        "submitted_at": g.submitted_at,
        "completed_at": g.completed_at,
        "parent_generation_id": g.parent_generation_id,
        "prompt_version_id": g.prompt_version_id,
        "estimated_cost": g.estimated_cost,
        "actual_cost": g.actual_cost,
        "dispatch_wait": g.dispatch_wait,
        "next_attempt_at": g.next_attempt_at,
        "wait_sequence": g.wait_sequence,
    }


def _to_domain(row: Mapping[Any, Any]) -> Generation:
    return dataclass_from_row(
        Generation,
        row,
        status=GenerationStatus(row["status"]),
        asset=Asset.model_validate(row["asset"]) if row["asset"] is not None else None,
        error=ErrorInfo.model_validate(row["error"]) if row["error"] is not None else None,
    )


_UUID_FIELDS = ("id", "parent_generation_id")
_TIME_FIELDS = (
    "scheduled_at",
    "deadline_at",
    "created_at",
    "updated_at",
    "submitted_at",
    "completed_at",
    "next_attempt_at",
)


def generation_snapshot(g: Generation) -> dict[str, Any]:
    """The generation as a JSON object (what a change-log row keeps); see `from_snapshot`."""
    row = generation_row(g)
    for name in _UUID_FIELDS:
        row[name] = str(row[name]) if row[name] is not None else None
    for name in _TIME_FIELDS:
        row[name] = row[name].isoformat() if row[name] is not None else None
    row["status"] = str(row["status"])
    return row


def generation_from_snapshot(snapshot: Mapping[str, Any]) -> Generation:
    row = dict(snapshot)
    for name in _UUID_FIELDS:
        row[name] = UUID(row[name]) if row.get(name) is not None else None
    for name in _TIME_FIELDS:
        row[name] = datetime.fromisoformat(row[name]) if row.get(name) is not None else None
    return _to_domain(row)

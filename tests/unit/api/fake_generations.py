"""An in-memory `GenerationRepository`, statement by statement like its SQL: every status
change is the same compare-and-set as `UPDATE ... WHERE status IN (...)`, with the allowed
statuses taken from the domain. It works on one transaction's copy of the tables."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from genbus.api.adapters.queue_standing import QueueStanding, standing_of
from genbus.api.adapters.repository import GenerationRepository
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

from .fake_tables import NO_CONNECTION, Tables


class FakeGenerationRepository(GenerationRepository):
    def __init__(self, tables: Tables) -> None:
        super().__init__(NO_CONNECTION)
        self._t = tables

    async def add(self, generation: Generation) -> int:
        if generation.id in self._t.generations:
            raise AssertionError(f"duplicate key: generation {generation.id}")
        self._t.generations[generation.id] = generation
        return len(self._t.generations)

    async def get(self, generation_id: UUID, *, user_id: str | None = None) -> Generation | None:
        g = self._t.generations.get(generation_id)
        return g if g is not None and user_id in (None, g.user_id) else None

    async def list_page(
        self, user_id: str, where: GenerationFilter, *, after: Cursor | None, limit: int
    ) -> Page:
        def matches(g: Generation) -> bool:
            return (
                g.user_id == user_id
                and (not where.statuses or g.status in where.statuses)
                and (not where.operation_types or g.operation_type in where.operation_types)
                and (not where.provider_ids or g.provider_id in where.provider_ids)
                and (where.created_after is None or g.created_at >= where.created_after)
                and (where.created_before is None or g.created_at < where.created_before)
                and (after is None or (g.created_at, g.id) < (after.created_at, after.id))
            )

        found = sorted(
            filter(matches, self._t.generations.values()),
            key=lambda g: (g.created_at, g.id),
            reverse=True,
        )
        items = found[:limit]
        more = len(found) > limit
        cursor = Cursor(items[-1].created_at, items[-1].id) if more and items else None
        return Page(items=items, next_cursor=cursor)

    async def delete_terminal(self, generation_id: UUID, *, user_id: str) -> Generation | None:
        g = await self.get(generation_id, user_id=user_id)
        if g is None or g.status not in TERMINAL:
            return None
        return self._t.generations.pop(generation_id)

    async def get_many(self, ids: Iterable[UUID], *, user_id: str) -> dict[UUID, Generation]:
        found = {i: await self.get(i, user_id=user_id) for i in set(ids)}
        return {i: g for i, g in found.items() if g is not None}

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
        return self._cas(
            generation_id,
            lambda g: (
                g.status in sources_of(GenerationStatus.PROCESSING)
                or (g.status in RESUBMITTABLE and g.attempt < attempt)
            ),
            status=GenerationStatus.PROCESSING,
            attempt=attempt,
            account_id=account_id,
            provider_job_id=provider_job_id,
            submitted_at=submitted_at,
            updated_at=now,
            **({"actual_cost": cost} if cost is not None else {}),
        )

    async def queue_standing(self, g: Generation, now: datetime) -> QueueStanding | None:
        """Arrival order among pending generations of the same provider and operation (the
        fair-share estimate is SQL, tested against Postgres); no turnover known."""
        if g.status is not GenerationStatus.PENDING:
            return None
        ahead = [
            o
            for o in self._t.generations.values()
            if o.status is GenerationStatus.PENDING
            and (o.provider_id, o.operation_type) == (g.provider_id, g.operation_type)
            and (-o.priority, o.created_at, o.id) < (-g.priority, g.created_at, g.id)
        ]
        return standing_of(g, now, len(ahead), None)

    async def record_wait(
        self,
        generation_id: UUID,
        *,
        reason: str,
        next_attempt_at: datetime | None,
        sequence: int,
        now: datetime,
    ) -> Generation | None:
        return self._cas(
            generation_id,
            lambda g: g.status is GenerationStatus.PENDING and g.wait_sequence < sequence,
            dispatch_wait=reason,
            next_attempt_at=next_attempt_at,
            wait_sequence=sequence,
            updated_at=now,
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
        current = self._t.generations.get(generation_id)
        if current is None:
            return None
        return self._cas(
            generation_id,
            lambda g: g.status in TERMINAL and g.attempt == attempt and g.submitted_at is None,
            submitted_at=submitted_at,
            account_id=current.account_id if current.account_id is not None else account_id,
            provider_job_id=(
                current.provider_job_id if current.provider_job_id is not None else provider_job_id
            ),
            updated_at=now,
            actual_cost=current.actual_cost if current.actual_cost is not None else cost,
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
        values: dict[str, Any] = {
            "status": status,
            "asset": asset,
            "error": error,
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
        return self._cas(generation_id, lambda g: g.status in sources_of(status), **values)

    async def note_asset_stored(
        self, generation_id: UUID, *, sha256: str, size_bytes: int, media_type: str, now: datetime
    ) -> Generation | None:
        current = self._t.generations.get(generation_id)
        if current is None or current.asset is None:
            return None
        stored = current.asset.model_copy(
            update={
                "stored": True,
                "sha256": sha256,
                "size_bytes": size_bytes,
                "media_type": media_type,
            }
        )
        return self._cas(generation_id, lambda g: g.asset is not None, asset=stored, updated_at=now)

    async def cancel_at_once(self, generation_id: UUID, *, at: datetime) -> Generation | None:
        return self._cas(
            generation_id,
            lambda g: g.status in CANCELLABLE_AT_ONCE,
            status=GenerationStatus.CANCELLED,
            completed_at=at,
            updated_at=at,
        )

    async def fail_overdue(
        self, *, due_before: datetime, error: ErrorInfo, at: datetime, limit: int
    ) -> list[Generation]:
        overdue = sorted(
            (
                g
                for g in self._t.generations.values()
                if g.status in NON_TERMINAL and g.deadline_at < due_before
            ),
            key=lambda g: g.deadline_at,
        )[:limit]
        failed = [
            dataclasses.replace(
                g, status=GenerationStatus.FAILED, error=error, completed_at=at, updated_at=at
            )
            for g in overdue
        ]
        self._t.generations.update((g.id, g) for g in failed)
        return failed

    def _cas(
        self, generation_id: UUID, allowed: Callable[[Generation], bool], **values: Any
    ) -> Generation | None:
        current = self._t.generations.get(generation_id)
        if current is None or not allowed(current):
            return None
        updated = dataclasses.replace(current, **values)
        self._t.generations[generation_id] = updated
        return updated

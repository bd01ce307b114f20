"""The audit log's SQL (`uow.audit`): appended in the change's transaction, read newest first."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
        }


class AuditRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def append(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        await self._conn.execute(
            text(
                """
                INSERT INTO dispatcher.admin_audit (actor, action, target, before, after)
                VALUES (:actor, :action, :target, CAST(:before AS jsonb), CAST(:after AS jsonb))
                """
            ),
            {
                "actor": actor[:200],
                "action": action[:64],
                "target": target[:200],
                "before": None if before is None else json.dumps(before, default=str),
                "after": None if after is None else json.dumps(after, default=str),
            },
        )

    async def entries(
        self, *, limit: int = 100, target: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        """Newest first; `before_id` pages on (entries older than that one)."""
        rows = await self._conn.execute(
            text(
                """
                SELECT id, at, actor, action, target, before, after
                  FROM dispatcher.admin_audit
                 WHERE (CAST(:target AS text) IS NULL OR target = :target)
                   AND (CAST(:before_id AS bigint) IS NULL OR id < :before_id)
                 ORDER BY id DESC
                 LIMIT :limit
                """
            ),
            {"target": target, "before_id": before_id, "limit": limit},
        )
        return [
            AuditEntry(r.id, r.at, r.actor, r.action, r.target, r.before, r.after) for r in rows
        ]

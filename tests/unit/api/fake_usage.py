"""The usage repository on the fakes' tables: the daily counter, and sums over generations."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from genbus.api.adapters.usage import GroupBy, UsageRepository
from genbus.api.domain.model import Generation
from genbus.api.domain.status import GenerationStatus
from genbus.api.domain.usage import UsageRow

from .fake_tables import NO_CONNECTION, Tables


class FakeUsageRepository(UsageRepository):
    def __init__(self, tables: Tables) -> None:
        super().__init__(NO_CONNECTION)
        self._t = tables

    async def count_creation(self, user_id: str, day: date, *, quota: int | None) -> int | None:
        count = self._t.daily_usage.get((user_id, day), 0)
        if quota is not None and count >= quota:
            return None
        self._t.daily_usage[(user_id, day)] = count + 1
        return count + 1

    async def purge(self, *, before: date, limit: int) -> int:
        old = [key for key in self._t.daily_usage if key[1] < before][:limit]
        for key in old:
            del self._t.daily_usage[key]
        return len(old)

    async def created_on(self, user_id: str, day: date) -> int:
        return self._t.daily_usage.get((user_id, day), 0)

    async def summarise(
        self, *, start: datetime, end: datetime, group_by: GroupBy, user_id: str | None = None
    ) -> list[UsageRow]:
        groups: dict[str | None, list[Generation]] = defaultdict(list)
        for g in self._t.generations.values():
            if start <= g.created_at < end and user_id in (None, g.user_id):
                key = {"user": g.user_id, "account": g.account_id, "provider": g.provider_id}
                groups[key[group_by]].append(g)
        return [
            UsageRow(
                key=key,
                generations=len(items),
                completed=sum(g.status is GenerationStatus.COMPLETED for g in items),
                estimated_cost=sum(g.estimated_cost or 0 for g in items),
                actual_cost=sum(g.actual_cost or 0 for g in items),
                with_actual_cost=sum(g.actual_cost is not None for g in items),
            )
            for key, items in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ]

"""Query parameters of the list routes, parsed once for `/generations` and `/jobs`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query
from pydantic import AfterValidator, AwareDatetime, StringConstraints

from genbus.api.domain.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    GenerationFilter,
)
from genbus.api.domain.params import OperationType
from genbus.api.domain.status import GenerationStatus


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of the supported range of dates") from None


Timestamp = Annotated[AwareDatetime, AfterValidator(_in_utc)]
ProviderIdQuery = Annotated[str, StringConstraints(min_length=1, max_length=64)]


@dataclass(frozen=True)
class ListQuery:
    where: GenerationFilter
    after: Cursor | None
    limit: int


async def list_query(
    status: Annotated[
        list[GenerationStatus] | None,
        Query(description="only these statuses (repeat the parameter for several)"),
    ] = None,
    operation_type: Annotated[
        list[OperationType] | None, Query(description="only these operation types")
    ] = None,
    provider_id: Annotated[
        list[ProviderIdQuery] | None, Query(description="only these providers")
    ] = None,
    created_after: Annotated[
        Timestamp | None, Query(description="created at or after this time (with a timezone)")
    ] = None,
    created_before: Annotated[
        Timestamp | None, Query(description="created before this time (with a timezone)")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="page size")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`next_cursor` of the previous page; omit for the first"),
    ] = None,
) -> ListQuery:
    return ListQuery(
        where=GenerationFilter(
            statuses=frozenset(status or ()),
            operation_types=frozenset(str(o) for o in operation_type or ()),
            provider_ids=frozenset(provider_id or ()),
            created_after=created_after,
            created_before=created_before,
        ),
        after=Cursor.decode(cursor) if cursor is not None else None,
        limit=limit,
    )


ListQueryDep = Annotated[ListQuery, Depends(list_query)]

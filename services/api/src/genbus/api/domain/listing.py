"""Listing generations: filters, and keyset pages newest first with an opaque cursor.

Pages are ordered by (created_at, id), both descending; a cursor names the last row of a page
and the next page starts strictly after it, so rows inserted meanwhile (which are newer) never
shift a later page: nothing is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from genbus.api.domain.errors import InvalidRequest
from genbus.api.domain.model import Generation
from genbus.api.domain.status import GenerationStatus
from genbus.runtime.problems import FieldError

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
_MAX_CURSOR_LENGTH = 200


@dataclass(frozen=True)
class GenerationFilter:
    """Every given criterion must hold; an empty set means "any". `created_after` is
    inclusive, `created_before` exclusive."""

    statuses: frozenset[GenerationStatus] = frozenset()
    operation_types: frozenset[str] = frozenset()
    provider_ids: frozenset[str] = frozenset()
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, order=True)
class Cursor:
    """The position just after one row: (created_at, id) of the last row of a page."""

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        raw = json.dumps({"t": self.created_at.isoformat(), "i": str(self.id)}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor this api produced; anything else is a 422 naming `cursor`."""
        try:
            if len(text) > _MAX_CURSOR_LENGTH:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = json.loads(raw)
            created_at = datetime.fromisoformat(data["t"])
            if created_at.tzinfo is None:
                raise ValueError("naive timestamp")
            created_at = created_at.astimezone(UTC)
            return cls(created_at=created_at, id=UUID(data["i"]))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, binascii.Error):
            raise InvalidRequest(
                [FieldError("cursor", "invalid_cursor", "not a cursor this api returned")]
            ) from None


@dataclass(frozen=True)
class Page:
    items: list[Generation] = field(default_factory=list)
    next_cursor: Cursor | None = None

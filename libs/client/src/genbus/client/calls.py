"""What each API call sends and how its answer is read: shared by the sync and async clients,
which only differ in how they send."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict

from genbus.client.errors import error_from_response
from genbus.client.models import GenerationCreate, GenerationPage, GenerationPublic

PREFIX = "/api/v1/generations"
#: The longest `Prefer: wait` the API applies (it clamps longer ones to this).
MAX_WAIT_S = 60
#: Statuses a request that is safe to send again is retried on (with the same idempotency key).
RETRIED_STATUSES = frozenset({502, 503, 504})
#: How long a stream read may wait: well over the API's keep-alive interval (15 s).
STREAM_READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: tuple[tuple[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds; None: the client's default.
    timeout_s: float | None = None
    #: Whether sending it twice has the effect of sending it once (GET, or an idempotency key).
    resendable: bool = False


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def _wait_headers(wait: float | None) -> dict[str, str]:
    if wait is None:
        return {}
    seconds = max(0, min(MAX_WAIT_S, int(wait)))
    return {"Prefer": f"wait={seconds}"}


def _wait_timeout(wait: float | None, timeout_s: float) -> float | None:
    """A request that waits must be allowed to: the wait plus the usual timeout."""
    return None if wait is None else min(MAX_WAIT_S, max(0.0, wait)) + timeout_s


def create(
    request: GenerationCreate | Mapping[str, Any],
    *,
    idempotency_key: str | None,
    wait: float | None,
    timeout_s: float,
) -> Call:
    body = (
        request
        if isinstance(request, GenerationCreate)
        else GenerationCreate.model_validate(request)
    )
    key = idempotency_key or new_idempotency_key()
    return Call(
        "POST",
        PREFIX,
        json=body.model_dump(mode="json", exclude_unset=True),
        headers={"Idempotency-Key": key, **_wait_headers(wait)},
        timeout_s=_wait_timeout(wait, timeout_s),
        resendable=True,
    )


def get(generation_id: UUID | str, *, wait: float | None, timeout_s: float) -> Call:
    return Call(
        "GET",
        f"{PREFIX}/{generation_id}",
        headers=_wait_headers(wait),
        timeout_s=_wait_timeout(wait, timeout_s),
        resendable=True,
    )


def list_page(
    *,
    status: Iterable[str] = (),
    operation_type: Iterable[str] = (),
    provider_id: Iterable[str] = (),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call:
    params: list[tuple[str, str]] = []
    for name, values in (
        ("status", status),
        ("operation_type", operation_type),
        ("provider_id", provider_id),
    ):
        params += [(name, str(v)) for v in ([values] if isinstance(values, str) else values)]
    for name, moment in (("created_after", created_after), ("created_before", created_before)):
        if moment is not None:
            params.append((name, moment.isoformat()))
    if limit is not None:
        params.append(("limit", str(limit)))
    if cursor is not None:
        params.append(("cursor", cursor))
    return Call("GET", PREFIX, params=tuple(params), resendable=True)


def cancel(generation_id: UUID | str) -> Call:
    return Call("POST", f"{PREFIX}/{generation_id}/cancel")


def retry(generation_id: UUID | str, *, idempotency_key: str | None) -> Call:
    key = idempotency_key or new_idempotency_key()
    return Call(
        "POST",
        f"{PREFIX}/{generation_id}/retry",
        headers={"Idempotency-Key": key},
        resendable=True,
    )


def delete(generation_id: UUID | str) -> Call:
    return Call("DELETE", f"{PREFIX}/{generation_id}")


def ok(response: httpx.Response) -> httpx.Response:
    """`response`, or the typed error it carries."""
    if response.is_error:
        response.read()
        raise error_from_response(response)
    return response


def generation(response: httpx.Response) -> GenerationPublic:
    return GenerationPublic.model_validate_json(ok(response).content)


def page(response: httpx.Response) -> GenerationPage:
    return GenerationPage.model_validate_json(ok(response).content)


# Live status (Server-Sent Events).


class GenerationDeleted(BaseModel):
    """The data of a `generation.deleted` event."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    deleted_at: AwareDatetime


@dataclass(frozen=True)
class StreamEvent:
    """One change: `generation` (the generation as of that change) or `deleted`."""

    id: int
    event: str
    generation: GenerationPublic | None = None
    deleted: GenerationDeleted | None = None

    @property
    def ends_generation(self) -> bool:
        """Whether nothing can follow it for this generation (terminal, or deleted)."""
        if self.deleted is not None:
            return True
        return self.generation is not None and self.generation.status.value in TERMINAL


TERMINAL = frozenset({"completed", "failed", "cancelled"})
DELETED_EVENT = "generation.deleted"


def stream_event(event: str, data: str, event_id: str) -> StreamEvent | None:
    """The event of one SSE message (None for a kind this client does not know, such as the
    id-less `queue` events)."""
    if event == DELETED_EVENT:
        deleted = GenerationDeleted.model_validate(json.loads(data))
        return StreamEvent(int(event_id), event, deleted=deleted)
    if event == "generation":
        generation = GenerationPublic.model_validate_json(data)
        return StreamEvent(int(event_id), event, generation=generation)
    return None


def stream_headers(last_event_id: int | None) -> dict[str, str]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return headers


def stream_timeout(connect_s: float) -> httpx.Timeout:
    return httpx.Timeout(connect_s, read=STREAM_READ_TIMEOUT_S)

"""The asyncio client: `AsyncGenbusClient`, the same calls as `GenbusClient`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx
from httpx_sse import aconnect_sse

from genbus.client import calls
from genbus.client.calls import Call, StreamEvent
from genbus.client.errors import StreamError, error_from_response
from genbus.client.models import GenerationCreate, GenerationPage, GenerationPublic
from genbus.client.settings import ClientSettings


class AsyncGenbusClient:
    """The genbus HTTP API. `api_key` is sent as `Authorization: Bearer ...`.

    Creating and retrying carry an `Idempotency-Key` (a fresh one unless given), so a request
    whose answer was lost (a connection error, 502/503/504) is sent again, up to `max_retries`
    times, without creating twice. `wait=N` on `create` and `get` is sync mode: the answer comes
    once the generation is terminal or after N seconds (at most 60).
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8000",
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = ClientSettings(base_url, api_key, timeout_s, max_retries, backoff_s)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            base_url=base_url, headers=self.settings.headers(), timeout=timeout_s
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # Generations.

    async def create(
        self,
        request: GenerationCreate | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        wait: float | None = None,
    ) -> GenerationPublic:
        call = calls.create(
            request, idempotency_key=idempotency_key, wait=wait, timeout_s=self.settings.timeout_s
        )
        return calls.generation(await self._send(call))

    async def get(
        self, generation_id: UUID | str, *, wait: float | None = None
    ) -> GenerationPublic:
        call = calls.get(generation_id, wait=wait, timeout_s=self.settings.timeout_s)
        return calls.generation(await self._send(call))

    async def list(
        self,
        *,
        status: Iterable[str] = (),
        operation_type: Iterable[str] = (),
        provider_id: Iterable[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> GenerationPage:
        """One page, newest first; pass the page's `next_cursor` as `cursor` for the next."""
        call = calls.list_page(
            status=status,
            operation_type=operation_type,
            provider_id=provider_id,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
        return calls.page(await self._send(call))

    async def iter_all(self, **filters: Any) -> AsyncIterator[GenerationPublic]:
        """Every generation matching `filters` (those of `list`), page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(**filters, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def cancel(self, generation_id: UUID | str) -> GenerationPublic:
        return calls.generation(await self._send(calls.cancel(generation_id)))

    async def retry(
        self, generation_id: UUID | str, *, idempotency_key: str | None = None
    ) -> GenerationPublic:
        call = calls.retry(generation_id, idempotency_key=idempotency_key)
        return calls.generation(await self._send(call))

    async def delete(self, generation_id: UUID | str) -> None:
        calls.ok(await self._send(calls.delete(generation_id)))

    # Live status.

    def events(
        self, generation_id: UUID | str, *, last_event_id: int | None = None
    ) -> AsyncIterator[StreamEvent]:
        """The generation's changes after `last_event_id` (all of them without it) until it
        ends; a dropped or closed stream is resumed with `Last-Event-ID`, losing nothing."""
        return self._follow(f"{calls.PREFIX}/{generation_id}/events", last_event_id, until_end=True)

    def all_events(self, *, last_event_id: int | None = None) -> AsyncIterator[StreamEvent]:
        """Every change of any of your generations from now on (or after `last_event_id`);
        endless, resumed across disconnects. Stop iterating to stop."""
        return self._follow("/api/v1/events", last_event_id, until_end=False)

    async def _follow(
        self, path: str, last: int | None, *, until_end: bool
    ) -> AsyncIterator[StreamEvent]:
        failures = 0
        while True:
            try:
                async with aconnect_sse(
                    self._http,
                    "GET",
                    path,
                    headers=calls.stream_headers(last),
                    timeout=calls.stream_timeout(self.settings.timeout_s),
                ) as source:
                    response = source.response
                    if response.status_code == 204:
                        return
                    if response.is_error:
                        await response.aread()
                        raise error_from_response(response)
                    async for message in source.aiter_sse():
                        event = calls.stream_event(message.event, message.data, message.id)
                        if event is None:
                            continue
                        failures = 0
                        last = event.id
                        yield event
                        if until_end and event.ends_generation:
                            return
            except httpx.TransportError as exc:
                failures += 1
                if failures > self.settings.max_retries:
                    raise StreamError(f"stream {path} lost {failures} times: {exc!r}") from exc
                await asyncio.sleep(self.settings.backoff(failures))
            # A stream the server closed (its time limit) is resumed at once.

    # Sending.

    async def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params,
                    headers=call.headers,
                    timeout=call.timeout_s
                    if call.timeout_s is not None
                    else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError:
                if not call.resendable or attempt > self.settings.max_retries:
                    raise
            else:
                if (
                    response.status_code not in calls.RETRIED_STATUSES
                    or not call.resendable
                    or attempt > self.settings.max_retries
                ):
                    return response
            await asyncio.sleep(self.settings.backoff(attempt))

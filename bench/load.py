"""Load generators driving the public API: open loop at a fixed rate, closed loop with N clients.

One `httpx.AsyncClient` (HTTP/1.1, keep-alive, a connection per concurrent client). A closed-loop
client posts a generation, waits for its GenerationCompleted on the recorder, and posts the next:
the end-to-end capacity is what these clients sustain together.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.recorder import Recorder

CREATE_PATH = "/api/v1/generations"
_POST_TIMEOUT_S = 30.0


@dataclass
class LoadRun:
    """What one load phase did (wall-clock UTC seconds)."""

    started_at: float
    ended_at: float = 0.0
    generation_ids: list[str] = field(default_factory=list)
    #: Generations whose completion did not arrive within the closed loop's timeout.
    lost: int = 0
    #: Open loop only: the largest delay of a POST behind its schedule.
    max_schedule_lag_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at


class ApiClient:
    """POSTs generations; counts response codes and transport errors."""

    def __init__(self, base_url: str, recorder: Recorder, connections: int = 256) -> None:
        self.recorder = recorder
        self.client = httpx.AsyncClient(
            base_url=base_url,
            http1=True,
            http2=False,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(_POST_TIMEOUT_S),
        )
        self.status_codes: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.rejections: list[str] = []
        #: 429 and 503 answers that came without a `Retry-After` (a client could not pace).
        self.throttled_without_retry_after = 0
        self._numbers = itertools.count()

    async def close(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def create(self) -> str | None:
        """POST one generation; its id, or None when it was not accepted."""
        body: dict[str, Any] = {
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "params": {"prompt": f"bench generation {next(self._numbers)}"},
        }
        post_at = time.time()
        try:
            response = await self.client.post(CREATE_PATH, json=body)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            return None
        accepted_at = time.time()
        self.status_codes[response.status_code] += 1
        if response.status_code != 201:
            if response.status_code in (429, 503) and "Retry-After" not in response.headers:
                self.throttled_without_retry_after += 1
            if len(self.rejections) < 5:
                self.rejections.append(f"{response.status_code}: {response.text[:300]}")
            return None
        generation_id: str = response.json()["id"]
        self.recorder.posted(generation_id, post_at, accepted_at)
        return generation_id

    def report(self) -> dict[str, Any]:
        return {
            "status_codes": {str(k): v for k, v in sorted(self.status_codes.items())},
            "transport_errors": dict(self.errors),
            "first_rejections": self.rejections,
            "throttled_without_retry_after": self.throttled_without_retry_after,
        }


async def open_loop(api: ApiClient, rate: float, duration_s: float) -> LoadRun:
    """POST at `rate`/s for `duration_s` whatever the responses do (arrivals never wait)."""
    run = LoadRun(started_at=time.time())
    count = max(1, int(rate * duration_s))
    start = time.monotonic()
    tasks: set[asyncio.Task[str | None]] = set()
    results: list[asyncio.Task[str | None]] = []
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            run.max_schedule_lag_s = max(run.max_schedule_lag_s, -delay)
        task = asyncio.create_task(api.create())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        results.append(task)
    await asyncio.gather(*results)
    run.generation_ids = [gid for task in results if (gid := task.result()) is not None]
    run.ended_at = time.time()
    return run


class LoadStalled(RuntimeError):
    """The system under load completed nothing for longer than a completion may take."""


@dataclass
class _Progress:
    """When a closed loop last saw a completion: a loop whose POSTs are all refused, or whose
    completions never arrive, stops with the answers it got instead of spinning."""

    completed: int
    at: float

    def check(self, completed: int, now: float, stall_s: float, api: ApiClient) -> None:
        if completed != self.completed:
            self.completed, self.at = completed, now
        elif now - self.at > stall_s:
            raise LoadStalled(
                f"no completion for {stall_s:.0f} s ({completed} so far); answers "
                f"{dict(api.status_codes)}, transport errors {dict(api.errors)}, "
                f"first refusals {api.rejections[:2]}"
            )


async def closed_loop(
    api: ApiClient,
    clients: int,
    duration_s: float,
    *,
    stop_after_completions: int | None = None,
    completion_timeout_s: float = 60.0,
) -> LoadRun:
    """`clients` concurrent clients, each: POST, wait for its completion, repeat; for
    `duration_s` or until the recorder has counted `stop_after_completions` completions."""
    recorder = api.recorder
    run = LoadRun(started_at=time.time())
    deadline = time.monotonic() + duration_s
    progress = _Progress(recorder.completed_count, time.monotonic())

    def more() -> bool:
        now = time.monotonic()
        if now >= deadline:
            return False
        progress.check(recorder.completed_count, now, completion_timeout_s, api)
        return stop_after_completions is None or recorder.completed_count < stop_after_completions

    async def client() -> None:
        while more():
            generation_id = await api.create()
            if generation_id is None:
                await asyncio.sleep(0.05)
                continue
            run.generation_ids.append(generation_id)
            if await recorder.completion(generation_id, completion_timeout_s) is None:
                run.lost += 1

    try:
        # A TaskGroup: one client's LoadStalled stops the others.
        async with asyncio.TaskGroup() as clients_group:
            for _ in range(clients):
                clients_group.create_task(client())
    except* LoadStalled as stalled:
        raise stalled.exceptions[0] from None
    run.ended_at = time.time()
    return run

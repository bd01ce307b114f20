"""The api's FastAPI application: routers, error translation, body limit, and a lifespan that
runs the broker, consumers, outbox relay and reconciler alongside HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from genbus.api.bootstrap import ApiRuntime, bootstrap
from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.body_limit import BodySizeLimit
from genbus.api.entrypoints.http.key_concurrency import KeyConcurrency
from genbus.api.entrypoints.http.problems import install_problem_handlers
from genbus.api.entrypoints.http.request_bodies import PRIORITY_DOC
from genbus.api.entrypoints.http.request_deadline import RequestDeadline
from genbus.api.entrypoints.http.routes import (
    assets,
    events,
    generations,
    health,
    jobs,
    me,
    uploads,
    usage,
)
from genbus.runtime.instrumentation import instrument_fastapi
from genbus.runtime.problems import document_problems_as_problem_json

TITLE = "genbus api"
VERSION = "0.2.0"

DESCRIPTION = f"""
Create AI media generations (text-to-video, image-to-video, ...), watch them live, list,
cancel, retry and delete them.

## Authentication
Every `/api/v1` route needs an API key: `Authorization: Bearer gbk_...`. Keys are created and
revoked with the `genbus-api keys` CLI, stored only as a SHA-256 digest, and shown once. Each key
belongs to one user: every read, list, stream and action sees only that user's generations —
another user's generation is `404`, never `403`, and never appears in a list or stream.
**Admin keys** (`keys create --admin`) may also *read* any user's generation
(`GET /api/v1/generations/{{id}}`, `GET /api/v1/jobs/{{id}}` and its event stream); lists,
`/api/v1/events` and every action stay scoped to the admin's own user.

## Rate limits and overload
Per API key, per api replica: by default 20 requests/s sustained with bursts of 40, and at most
32 requests in progress at once. Over either: `429` `rate_limited` with `Retry-After` (seconds).
A replica with too many requests in progress in all answers the excess `429` `overloaded` at
once, whatever the route.

When the backlog of generations waiting to start (or of events not yet delivered) is past its
bound, requests that create a generation (`POST /api/v1/generations`, `.../retry`,
`POST /api/v1/jobs`) are refused at once with `429` `overloaded` and `Retry-After` (1..60 s,
from how fast the backlog drains), instead of being accepted into a long queue; reads, cancels
and streams are unaffected, and the replay of an already accepted request (same
`Idempotency-Key` and body) is always answered. Live-status streams are limited per API key
(20 by default) and per server: past it, `429` `too_many_streams`.

## Priority
{PRIORITY_DOC}

## Idempotency
`POST /api/v1/generations`, `POST /api/v1/jobs` and `POST .../retry` accept an
`Idempotency-Key` header. The same key with the same body returns the generation the first
request created — `200` with `Idempotent-Replayed: true` (the first request answered `201`) —
and creates nothing. The same key with a different body is `409` `idempotency_key_reused`.
Keys are scoped to your user and remembered for 24 hours (deleting a generation forgets its key).

## Lists
`GET /api/v1/generations` pages newest first with an opaque `cursor` (pass the previous page's
`next_cursor`). Pages are keyset-based: creating generations while paging neither skips nor
repeats any.

## Live status (Server-Sent Events)
`GET /api/v1/generations/{{id}}/events` streams one generation's status changes (its history
first) and ends after its terminal state; `GET /api/v1/events` streams every change of all
your generations. Reconnect with `Last-Event-ID` to resume without loss or repeats (a stream
is also closed after at most 15 minutes by default: reconnect the same way). Streams need the
`Authorization` header like every route: in a browser use a fetch-based SSE client, which also
resends `Last-Event-ID` (the native `EventSource` cannot send headers). While
`pending`, a generation's `wait_reason` says why: `scheduled`, `retrying`, `provider_unavailable`,
`user_at_capacity` or `waiting_for_account`; `GET` of one also estimates its `queue_position` and
`estimated_start_at`.

## Sync mode
`POST /api/v1/generations` and `GET /api/v1/generations/{{id}}` accept `Prefer: wait=N`
(RFC 7240; N from 0 to 60 seconds, more counts as 60; a value that is not a number of seconds
is `422`): the answer comes as soon as the generation is terminal, or after N seconds with its
state then. The status code does not change (`201`/`200` on create, `200` on read): look at
`status`. `Preference-Applied: wait=N` confirms the wait; a server at its bound of waiting
requests answers at once without it. Waiting holds no polling loop: it wakes on the same change
notifications as the live-status streams.

## CORS
Off unless origins are configured (`GENBUS_API_CORS_ALLOW_ORIGINS`, an explicit list): then
browsers on those origins may call every route, sending `Authorization`, `Idempotency-Key`,
`Last-Event-ID` and `Prefer`, and read `Location`, `Retry-After`, `Preference-Applied` and
`Idempotent-Replayed`.

## Errors
Every error is `application/problem+json` (RFC 9457) with a stable `code`; a `422` lists each
field at fault in `errors` (unknown fields included: a misspelt option is never ignored).
Provider-specific options go in `params.provider_options`, checked by that provider's adapter.
Bodies over the size limit are `413`. If the database is unreachable, or a request cannot be
answered within its deadline (10 s by default): `503` `service_unavailable` with `Retry-After`,
at once; retry a create with the same `Idempotency-Key`.
"""

TAGS = [
    {"name": "generations", "description": "Create, list, read, cancel, retry and delete."},
    {"name": "live status", "description": "Server-Sent Events of status changes."},
    {"name": "jobs (legacy)", "description": "The old system's routes, aliases of generations."},
    {"name": "uploads", "description": "Files stored once, used as generation inputs."},
    {"name": "identity", "description": "Who the caller's API key belongs to."},
    {"name": "health", "description": "Liveness and readiness probes (no authentication)."},
]


def create_app(settings: ApiSettings, runtime: ApiRuntime | None = None) -> FastAPI:
    """The app; `runtime` (default: `bootstrap(settings)`) starts and stops with its lifespan."""
    runtime = runtime if runtime is not None else bootstrap(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.include_router(generations.router)
    app.include_router(assets.router)
    app.include_router(uploads.router)
    app.include_router(events.router)
    app.include_router(jobs.router)
    app.include_router(me.router)
    app.include_router(usage.router)
    app.include_router(health.router)
    install_problem_handlers(app)
    # An upload's body and time are bounded by its route (`GENBUS_API_UPLOAD_*`).
    own_limits = frozenset({("POST", uploads.PATH)})
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, own_limits=own_limits)
    app.add_middleware(RequestDeadline, timeout_s=settings.request_timeout_s, own_limits=own_limits)
    app.add_middleware(
        KeyConcurrency,
        limit=settings.max_inflight_per_key,
        total=settings.max_inflight_requests,
    )
    instrument_fastapi(app)
    if settings.cors_allow_origins:
        # Added last, so outermost: preflights are answered before any other middleware.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=settings.cors_allow_methods,
            allow_headers=settings.cors_allow_headers,
            expose_headers=settings.cors_expose_headers,
            max_age=settings.cors_max_age_s,
        )

    document_problems_as_problem_json(app)
    return app

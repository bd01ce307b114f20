"""What each console page shows, gathered from the service layer, the read queries and
JetStream. Plain data for the templates; nothing here renders or changes anything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from nats.js import JetStreamContext

from genbus.dispatcher.adapters.console_reads import ConsoleReads, JobFilter
from genbus.dispatcher.service_layer import accounts
from genbus.dispatcher.service_layer.dead_letters import DeadLetters
from genbus.dispatcher.service_layer.dispatch_status import dispatch_status
from genbus.dispatcher.service_layer.unit_of_work import UowFactory
from genbus.runtime.stream_state import consumer_states, dead_letter_count

#: Minutes of throughput the overview charts.
CHART_MINUTES = 15
STATES = ("queued", "claimed", "submitted", "completed", "failed", "cancelled")


@dataclass
class Views:
    uow: UowFactory
    reads: ConsoleReads
    dead_letters: DeadLetters
    js: Callable[[], JetStreamContext]

    async def overview(self) -> dict[str, Any]:
        status, minutes, in_flight, streams = await asyncio.gather(
            dispatch_status(self.uow()),
            self.reads.throughput(CHART_MINUTES),
            self.reads.in_flight(),
            self._streams(),
        )
        providers = sorted(
            {q["provider_id"] for q in status["queues"]}
            | set(status["accounts"]["by_provider"])
            | {m["provider_id"] for m in minutes}
        )
        queues = {q["provider_id"]: q for q in status["queues"]}
        return {
            "providers": [
                {
                    "provider_id": p,
                    "queue": queues.get(p, {"queued": 0, "due": 0, "oldest_waiting_s": None}),
                    "slots": status["accounts"]["by_provider"].get(p, {}),
                    "in_flight": in_flight.get(p, 0),
                    "series": _series(minutes, p),
                }
                for p in providers
            ],
            "breakers": [a for a in status["in_flight"] if a["breaker"] != "closed"],
            "accounts": status["accounts"],
            **streams,
        }

    async def _streams(self) -> dict[str, Any]:
        js = self.js()
        states = await consumer_states(js)
        consumers = [state for state in states if not state.get("missing")]
        dead = await dead_letter_count(js)
        return {"consumers": consumers, "dead_letter_count": dead}

    async def accounts(self) -> list[dict[str, Any]]:
        return [view.as_dict() for view in await accounts.list_accounts(self.uow())]

    async def letters(self) -> list[dict[str, Any]]:
        return await self.dead_letters.letters()

    async def generations(self, query: Mapping[str, str]) -> dict[str, Any]:
        where, problems = job_filter(query)
        rows = [] if problems else await self.reads.search(where)
        return {"rows": rows, "problems": problems, "query": dict(query), "states": STATES}

    async def timeline(self, generation_id: UUID) -> dict[str, Any] | None:
        job = await self.reads.job(generation_id)
        if job is None:
            return None
        return {"job": job, "events": timeline_of(job)}


def _series(minutes: list[Mapping[str, Any]], provider: str) -> list[tuple[int, int]]:
    """(completed, failed) for each of the last CHART_MINUTES minutes, oldest first."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    counts = {
        m["minute"]: (m["completed"], m["failed"]) for m in minutes if m["provider_id"] == provider
    }
    return [
        counts.get(now - timedelta(minutes=back), (0, 0))
        for back in range(CHART_MINUTES - 1, -1, -1)
    ]


def job_filter(query: Mapping[str, str]) -> tuple[JobFilter, list[str]]:
    """The search form's fields as a filter, and what was wrong with them."""
    problems: list[str] = []
    generation_id = None
    if raw := query.get("id", "").strip():
        try:
            generation_id = UUID(raw)
        except ValueError:
            problems.append(f"not a generation id: {raw[:64]!r}")
    state = query.get("status", "").strip() or None
    if state is not None and state not in STATES:
        problems.append(f"unknown status {state[:32]!r}")
    after = _time(query.get("after", ""), "after", problems)
    before = _time(query.get("before", ""), "before", problems)
    return (
        JobFilter(
            generation_id=generation_id,
            user_id=query.get("user", "").strip() or None,
            state=state,
            provider_id=query.get("provider", "").strip() or None,
            created_after=after,
            created_before=before,
        ),
        problems,
    )


def _time(raw: str, name: str, problems: list[str]) -> datetime | None:
    if not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        problems.append(f"{name}: not a time (YYYY-MM-DDTHH:MM)")
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _later(value: datetime | None, than: datetime | None) -> datetime | None:
    return value if value is not None and than is not None and value > than else None


def timeline_of(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The dispatcher's record of a generation as events in time order."""
    error = job.get("last_error") or {}
    candidates = [
        (
            "queued at the dispatcher",
            job.get("created_at"),
            f"priority {job['priority']}, {job['operation_type']}",
        ),
        ("scheduled for", job.get("scheduled_at"), ""),
        (
            "due again (after a retry's backoff)",
            None
            if job.get("due_at") == job.get("scheduled_at")
            else _later(job.get("due_at"), job.get("created_at")),
            "",
        ),
        (
            "submitting",
            job.get("submit_started_at"),
            f"to account {job.get('account_id')}",
        ),
        (
            "submitted",
            job.get("submitted_at"),
            f"account {job.get('account_id')}, provider job {job.get('provider_job_id')}, "
            f"attempt {job.get('attempt')}",
        ),
        (
            job["state"],
            job.get("finished_at"),
            f"{error.get('code', '')} {error.get('message', '')}".strip(),
        ),
    ]
    events = [
        {"what": what, "at": at, "detail": detail}
        for what, at, detail in candidates
        if at is not None
    ]
    if job["state"] not in ("completed", "failed", "cancelled"):
        events.append({"what": f"now {job['state']}", "at": job.get("updated_at"), "detail": ""})
    return sorted(events, key=lambda e: e["at"])

"""The console's pure parts: secrets redacted from dead-letter payloads, the search form's
filter, a generation's timeline, and the throughput chart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from genbus.dispatcher.entrypoints.console.charts import bars
from genbus.dispatcher.entrypoints.console.views import job_filter, timeline_of
from genbus.dispatcher.service_layer.dead_letters import REDACTED, shown_payload
from genbus.runtime.deadletter import DeadLetter


def _letter(payload: bytes) -> DeadLetter:
    return DeadLetter(1, "c", "s", "r", 1, "", payload, {})


def test_secret_looking_keys_are_redacted_at_any_depth() -> None:
    payload = {
        "params": {"prompt": "a cat", "api_key": "sk-1", "nested": [{"Authorization": "B x"}]},
        "credentials": {"token": "t"},
        "idempotencyKey": "k",
        "user_id": "u",
    }
    shown = json.loads(shown_payload(_letter(json.dumps(payload).encode())))
    assert shown["params"]["prompt"] == "a cat"
    assert shown["params"]["api_key"] == REDACTED
    assert shown["params"]["nested"][0]["Authorization"] == REDACTED
    assert shown["credentials"] == REDACTED
    assert shown["idempotencyKey"] == REDACTED
    assert shown["user_id"] == "u"
    assert "not shown" in shown_payload(_letter(b"\x00binary api_key=sk"))


def test_the_search_form_becomes_a_filter_and_bad_fields_are_named() -> None:
    gid = uuid4()
    where, problems = job_filter(
        {"id": str(gid), "user": " u1 ", "status": "failed", "after": "2026-01-02T03:04"}
    )
    assert problems == []
    assert (where.generation_id, where.user_id, where.state) == (gid, "u1", "failed")
    assert where.created_after == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    _, problems = job_filter({"id": "nope", "status": "lost", "before": "yesterday"})
    assert len(problems) == 3


def test_a_generations_timeline_is_in_time_order_with_its_account_and_error() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    job = {
        "priority": 5,
        "operation_type": "text_to_video",
        "state": "failed",
        "created_at": t0,
        "scheduled_at": None,
        "due_at": t0 + timedelta(seconds=4),
        "submit_started_at": t0 + timedelta(seconds=5),
        "submitted_at": t0 + timedelta(seconds=6),
        "finished_at": t0 + timedelta(seconds=9),
        "account_id": "acc-1",
        "provider_job_id": "pj-1",
        "attempt": 2,
        "last_error": {"code": "provider_failed", "message": "boom"},
        "updated_at": t0 + timedelta(seconds=9),
    }
    events = timeline_of(job)
    assert [e["what"] for e in events] == [
        "queued at the dispatcher",
        "due again (after a retry's backoff)",
        "submitting",
        "submitted",
        "failed",
    ]
    assert "pj-1" in events[3]["detail"]
    assert events[-1]["detail"] == "provider_failed boom"


def test_the_chart_draws_one_bar_per_minute_with_counts() -> None:
    svg = str(bars([(0, 0), (3, 1), (1, 0)], label="sim"))
    assert svg.startswith("<svg")
    assert svg.count('class="ok"') == 2
    assert svg.count('class="bad"') == 1
    assert "<title>3 completed</title>" in svg
    assert 'aria-label="sim"' in svg

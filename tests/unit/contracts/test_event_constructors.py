"""The event constructors: ids derived exactly as before (JetStream de-duplicates on them and
consumers recognise replays by them), envelopes copied from the event each one follows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from genbus.contracts import (
    DEADLINE_EXCEEDED,
    Asset,
    CompletionStatus,
    Event,
    GenerationCancelRequested,
    GenerationCompleted,
    GenerationRequested,
    GenerationSubmitted,
    InputRef,
    derive_event_id,
)

GID = UUID("0b9c2f4e-1d3a-4f5b-8c6d-7e8f9a0b1c2d")
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEADLINE = AT + timedelta(hours=1)
ROOT = Path(__file__).resolve().parents[3]

# Pinned: published events carry these ids, so changing how they are derived would let a replay
# after an upgrade through JetStream's de-duplication and past the consumers' idempotency.
REQUESTED_ID = UUID("4709ae2a-4fa8-5e13-850d-7f542b8cc6a5")
CANCEL_REQUESTED_ID = UUID("23ff8897-7e27-50d3-b8a9-4204848fb4a2")
SUBMITTED_2_ID = UUID("cbfbaae1-b95a-584e-9bde-013398c78348")
COMPLETED_2_ID = UUID("0aa5af6a-3dc7-5a21-8537-eb9429c106ef")
COMPLETED_0_ID = UUID("8e2cf8b2-c755-5189-82c2-88a35306462f")


def _requested() -> GenerationRequested:
    return GenerationRequested.new(
        generation_id=GID,
        user_id="u1",
        provider_id="sim",
        operation_type="text_to_video",
        params={"prompt": "a cat"},
        inputs=[InputRef(role="first_frame", url="https://example.com/a.png")],  # type: ignore[arg-type]
        priority=7,
        scheduled_at=AT,
        deadline_at=DEADLINE,
        reproducible_hash="a" * 64,
        preferred_account_id="acc-1",
        occurred_at=AT,
    )


def _submitted(attempt: int = 2) -> GenerationSubmitted:
    return GenerationSubmitted.following(
        _requested(), account_id="acc-2", provider_job_id="job-9", attempt=attempt
    )


def _envelope(event: Event) -> tuple[UUID, str, str, str]:
    return (event.generation_id, event.user_id, event.provider_id, event.operation_type)


def test_pinned_ids_are_what_derive_event_id_gives() -> None:
    assert derive_event_id(GID, "generation.requested") == REQUESTED_ID
    assert derive_event_id(GID, "generation.cancel_requested") == CANCEL_REQUESTED_ID
    assert derive_event_id(GID, "generation.submitted", 2) == SUBMITTED_2_ID
    assert derive_event_id(GID, "generation.completed", 2) == COMPLETED_2_ID
    assert derive_event_id(GID, "generation.completed", 0) == COMPLETED_0_ID


def test_requested_derives_its_id_and_keeps_every_field() -> None:
    event = _requested()
    assert event.event_id == REQUESTED_ID
    assert (event.occurred_at, event.schema_version) == (AT, 1)
    assert _envelope(event) == (GID, "u1", "sim", "text_to_video")
    assert (event.priority, event.scheduled_at, event.deadline_at) == (7, AT, DEADLINE)
    assert (event.reproducible_hash, event.preferred_account_id) == ("a" * 64, "acc-1")
    assert event.params == {"prompt": "a cat"}
    assert [str(i.url) for i in event.inputs] == ["https://example.com/a.png"]


def test_cancel_requested_derives_its_id() -> None:
    event = GenerationCancelRequested.new(
        generation_id=GID,
        user_id="u1",
        provider_id="sim",
        operation_type="text_to_video",
        reason="changed my mind",
        occurred_at=AT,
    )
    assert event.event_id == CANCEL_REQUESTED_ID
    assert (_envelope(event), event.reason, event.occurred_at) == (
        (GID, "u1", "sim", "text_to_video"),
        "changed my mind",
        AT,
    )


def test_submitted_follows_the_request() -> None:
    before = datetime.now(UTC)
    event = _submitted()
    assert event.event_id == SUBMITTED_2_ID
    assert _envelope(event) == (GID, "u1", "sim", "text_to_video")
    assert (event.account_id, event.provider_job_id, event.attempt) == ("acc-2", "job-9", 2)
    assert event.deadline_at == DEADLINE
    assert before <= event.occurred_at <= datetime.now(UTC)


def test_completed_has_one_id_per_attempt_whoever_reports_it() -> None:
    # The dispatcher ends a job from its request, the poller from its submitted event: for the
    # same generation and attempt both must carry one id, so JetStream keeps only the first.
    by_dispatcher = GenerationCompleted.following(
        _requested(),
        status=CompletionStatus.FAILED,
        attempt=2,
        error=DEADLINE_EXCEEDED,
        account_id="acc-2",
        provider_job_id="job-9",
    )
    asset = Asset(url="https://cdn.example.com/v.mp4", media_type="video/mp4")  # type: ignore[arg-type]
    by_poller = GenerationCompleted.following(
        _submitted(),
        status=CompletionStatus.COMPLETED,
        attempt=2,
        asset=asset,
        account_id="acc-2",
        provider_job_id="job-9",
    )
    assert by_dispatcher.event_id == by_poller.event_id == COMPLETED_2_ID
    assert _envelope(by_dispatcher) == _envelope(by_poller) == (GID, "u1", "sim", "text_to_video")
    assert (by_dispatcher.error, by_dispatcher.asset) == (DEADLINE_EXCEEDED, None)
    assert (by_poller.asset, by_poller.error) == (asset, None)
    assert (by_poller.account_id, by_poller.provider_job_id) == ("acc-2", "job-9")


def test_completed_before_any_submission_is_attempt_zero() -> None:
    cancel = GenerationCancelRequested.new(
        generation_id=GID,
        user_id="u1",
        provider_id="sim",
        operation_type="text_to_video",
        reason="x",
    )
    ended = GenerationCompleted.following(cancel, status=CompletionStatus.CANCELLED, attempt=0)
    assert (ended.event_id, ended.attempt, ended.status) == (
        COMPLETED_0_ID,
        0,
        CompletionStatus.CANCELLED,
    )
    assert (ended.account_id, ended.provider_job_id) == (None, None)


def test_completed_still_checks_its_outcome() -> None:
    with pytest.raises(ValueError, match="carries an error"):
        GenerationCompleted.following(_requested(), status=CompletionStatus.FAILED, attempt=1)


def test_no_service_builds_an_event_envelope_by_hand() -> None:
    """Ids are derived in the contracts only: a service deriving one could drift from them."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "services").rglob("*.py"))
        if re.search(r"derive_event_id\(|\bevent_id=", path.read_text())
    ]
    assert offenders == []


def test_no_service_defines_a_failure_of_its_own() -> None:
    """Failure codes and `retryable` live in `genbus.contracts.failures`, once."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "services").rglob("*.py"))
        if re.search(r"ErrorInfo\(\s*code=\"", path.read_text())
    ]
    assert offenders == []

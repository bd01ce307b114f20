"""Events: consumers ignore unknown fields, producers send only declared ones, ids are stable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from genbus.contracts import (
    COMPLETED,
    REQUESTED,
    CompletionStatus,
    GenerationCompleted,
    GenerationRequested,
)
from genbus.contracts.bindings import binding_for_subject
from genbus.contracts.ids import derive_event_id, provider_idempotency_key


def _requested(**overrides: object) -> GenerationRequested:
    generation_id = uuid4()
    fields: dict[str, object] = {
        "event_id": derive_event_id(generation_id, "generation.requested"),
        "occurred_at": datetime.now(UTC),
        "generation_id": generation_id,
        "user_id": "u1",
        "provider_id": "sim",
        "operation_type": "text_to_video",
        "params": {"prompt": "a cat"},
        "deadline_at": datetime.now(UTC) + timedelta(hours=1),
        "reproducible_hash": "0" * 64,
    }
    fields.update(overrides)
    return GenerationRequested.model_validate(fields)


def test_unknown_fields_are_ignored_by_consumers() -> None:
    event = _requested()
    payload = json.loads(event.model_dump_json())
    payload["added_by_a_newer_producer"] = {"x": 1}
    assert GenerationRequested.model_validate(payload) == event


def test_producers_send_only_declared_fields() -> None:
    payload = json.loads(_requested().model_dump_json())
    assert set(payload) == set(GenerationRequested.model_fields)


def test_event_id_is_deterministic_per_generation_type_and_attempt() -> None:
    gid = uuid4()
    assert derive_event_id(gid, "generation.completed", 1) == derive_event_id(
        gid, "generation.completed", 1
    )
    assert derive_event_id(gid, "generation.completed", 1) != derive_event_id(
        gid, "generation.completed", 2
    )
    assert derive_event_id(gid, "generation.completed", 1) != derive_event_id(
        gid, "generation.submitted", 1
    )
    assert provider_idempotency_key(gid, 1) != provider_idempotency_key(gid, 2)


def test_completed_requires_the_outcome_of_its_status() -> None:
    base = {
        "event_id": uuid4(),
        "occurred_at": datetime.now(UTC),
        "generation_id": uuid4(),
        "user_id": "u1",
        "provider_id": "sim",
        "operation_type": "text_to_video",
    }
    with pytest.raises(ValidationError, match="asset"):
        GenerationCompleted.model_validate({**base, "status": "completed"})
    with pytest.raises(ValidationError, match="error"):
        GenerationCompleted.model_validate({**base, "status": "failed"})
    cancelled = GenerationCompleted.model_validate({**base, "status": "cancelled"})
    assert cancelled.status is CompletionStatus.CANCELLED


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        _requested(occurred_at=datetime.now())


def test_subjects_bind_event_type_and_provider() -> None:
    assert REQUESTED.subject("sim") == "generations.requested.sim"
    assert COMPLETED.wildcard == "generations.completed.*"
    assert binding_for_subject("generations.completed.pixverse") is COMPLETED
    assert binding_for_subject("generations.completed") is None
    with pytest.raises(ValueError, match="provider id"):
        REQUESTED.subject("Bad.Provider")

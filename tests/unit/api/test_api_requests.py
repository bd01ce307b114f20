"""Validating a whole generation request: provider support, inputs, schedule, metadata."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from genbus.api.domain.errors import (
    InvalidRequest,
    UnsupportedOperation,
    UnsupportedProvider,
)
from genbus.api.domain.hashing import reproducible_hash
from genbus.api.domain.model import Generation
from genbus.api.domain.requests import (
    GenerationDraft,
    InputSpec,
    RequestLimits,
    ValidRequest,
    canonical_inputs,
    stored_asset_key,
    stored_input_keys,
    validate_request,
)
from genbus.api.domain.status import GenerationStatus
from genbus.contracts import Asset
from genbus.runtime.problems import FieldError

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = RequestLimits(default_deadline=timedelta(hours=1))


class Catalog:
    def is_known(self, provider_id: str) -> bool:
        return provider_id in {"sim", "images_only"}

    def supports(self, provider_id: str, operation_type: str) -> bool:
        if provider_id == "images_only":
            return operation_type.endswith("_image")
        return provider_id == "sim"

    def provider_options_problems(
        self, provider_id: str, operation_type: str, options: Mapping[str, Any]
    ) -> list[FieldError]:
        """The sim's adapter (here) knows one option, `motion` (0..10)."""
        problems = [
            FieldError(k, "unknown_field", "no such option") for k in options if k != "motion"
        ]
        if "motion" in options and options["motion"] not in range(11):
            problems.append(FieldError("motion", "out_of_range", "0..10"))
        return problems


def _draft(**changes: Any) -> GenerationDraft:
    base = GenerationDraft(
        operation_type="text_to_video", provider_id="sim", params={"prompt": "p"}
    )
    return dataclasses.replace(base, **changes)


def _validate(**changes: Any) -> ValidRequest:
    return validate_request(_draft(**changes), Catalog(), LIMITS, NOW)


def _errors(**changes: Any) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        _validate(**changes)
    return {e.field: e.code for e in caught.value.errors}


def test_a_minimal_request_gets_the_default_deadline() -> None:
    valid = _validate()
    assert valid.deadline_at == NOW + timedelta(hours=1)
    assert valid.scheduled_at is None
    assert valid.canonical_params["duration"] == 5


def test_unknown_provider() -> None:
    with pytest.raises(UnsupportedProvider) as caught:
        _validate(provider_id="nope")
    assert caught.value.code == "unsupported_provider"
    assert [e.field for e in caught.value.errors] == ["provider_id"]


def test_provider_without_the_operation() -> None:
    with pytest.raises(UnsupportedOperation) as caught:
        _validate(provider_id="images_only")
    assert caught.value.code == "unsupported_operation"
    assert [e.field for e in caught.value.errors] == ["operation_type"]


def test_unknown_operation_type() -> None:
    assert _errors(operation_type="text_to_song") == {"operation_type": "invalid_choice"}


@pytest.mark.parametrize(
    ("operation", "role"),
    [("image_to_video", "image"), ("image_to_image", "image"), ("video_extend", "video")],
)
def test_media_operations_need_their_input(operation: str, role: str) -> None:
    assert _errors(operation_type=operation, params={}) == {"inputs": "required_input"}
    url = InputSpec(role=role, url="https://example.com/in")
    assert _validate(operation_type=operation, params={}, inputs=[url]).inputs == (url,)


def test_image_url_param_stands_in_for_an_image_input() -> None:
    valid = _validate(operation_type="image_to_video", params={"image_url": "https://x.io/a.png"})
    assert valid.inputs == (InputSpec(role="image", url="https://x.io/a.png"),)
    both = {
        "operation_type": "image_to_video",
        "params": {"image_url": "https://x.io/a.png"},
        "inputs": [InputSpec(role="image", url="https://x.io/b.png")],
    }
    assert _errors(**both) == {"params.image_url": "conflict"}


def test_params_errors_and_other_errors_are_reported_together() -> None:
    assert _errors(params={"prompt": "p", "fps": 1}, priority=11, name="a\x00b") == {
        "params.fps": "unknown_field",
        "priority": "out_of_range",
        "name": "invalid_character",
    }


def test_deadline_must_be_in_the_future_and_within_a_week() -> None:
    assert _errors(deadline=NOW) == {"deadline": "in_past"}
    assert _errors(deadline=NOW - timedelta(days=1)) == {"deadline": "in_past"}
    assert _errors(deadline=NOW + timedelta(days=8)) == {"deadline": "out_of_range"}
    later = NOW + timedelta(minutes=5)
    assert _validate(deadline=later).deadline_at == later


def test_extreme_datetimes_are_refused_not_overflowed() -> None:
    far = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5)))
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    assert _errors(deadline=far, scheduled_at=far) == {
        "deadline": "out_of_range",
        "scheduled_at": "out_of_range",
    }
    assert _errors(deadline=early) == {"deadline": "in_past"}


def test_times_are_normalised_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    valid = _validate(deadline=datetime(2030, 1, 1, 15, 0, tzinfo=plus2))
    assert valid.deadline_at == datetime(2030, 1, 1, 13, 0, tzinfo=UTC)
    assert valid.deadline_at.utcoffset() == timedelta(0)


def test_schedule_moves_the_default_deadline_and_must_precede_a_given_one() -> None:
    at = NOW + timedelta(hours=3)
    assert _validate(scheduled_at=at).deadline_at == at + timedelta(hours=1)
    assert _errors(scheduled_at=at, deadline=NOW + timedelta(hours=2)) == {
        "deadline": "out_of_range"
    }
    # A past schedule means "as soon as possible".
    assert _validate(scheduled_at=NOW - timedelta(days=1)).deadline_at == NOW + timedelta(hours=1)


def test_metadata_must_be_small_and_storable() -> None:
    assert _validate(metadata={"campaign": "x", "n": [1, 2.5, None, True]}).draft.metadata
    assert _errors(metadata={"blob": "x" * 5000}) == {"metadata": "too_large"}
    assert _errors(metadata={"a": {"b": "\x00"}}) == {"metadata.a.b": "invalid_character"}
    assert _errors(metadata={"\x00": 1}) == {"metadata": "invalid_key"}
    assert _errors(metadata={"x": float("-inf")}) == {"metadata.x": "invalid_number"}


def _generation(status: GenerationStatus, asset: Asset | None) -> Generation:
    return Generation(
        id=uuid4(),
        user_id="u",
        operation_type="text_to_image",
        provider_id="sim",
        status=status,
        params={},
        canonical_params={},
        inputs=[],
        canonical_inputs=[],
        priority=5,
        scheduled_at=None,
        deadline_at=NOW,
        reproducible_hash="0" * 64,
        name=None,
        metadata={},
        attempt=1,
        account_id=None,
        provider_job_id=None,
        asset=asset,
        error=None,
        created_at=NOW,
        updated_at=NOW,
        submitted_at=None,
        completed_at=None,
    )


def test_inputs_naming_a_generation_take_its_asset_url() -> None:
    done = _generation(
        GenerationStatus.COMPLETED, Asset(url="https://cdn.example/x.png", media_type="image/png")
    )
    pending = _generation(GenerationStatus.PENDING, None)
    missing = UUID(int=7)
    inputs = [
        InputSpec(role="image", generation_id=done.id),
        InputSpec(role="style", url="https://example.com/s.png"),
    ]
    assert canonical_inputs(inputs, {done.id: done}) == [
        {"role": "image", "url": "https://cdn.example/x.png"},
        {"role": "style", "url": "https://example.com/s.png"},
    ]
    with pytest.raises(InvalidRequest) as caught:
        canonical_inputs(
            [
                InputSpec(role="image", generation_id=pending.id),
                InputSpec(role="image", generation_id=missing),
            ],
            {pending.id: pending},
        )
    assert {e.field: e.code for e in caught.value.errors} == {
        "inputs[0].generation_id": "generation_not_completed",
        "inputs[1].generation_id": "generation_not_found",
    }


def test_stored_inputs_take_their_presigned_url_and_keep_a_stable_ref() -> None:
    asset = Asset(url="https://cdn.example/x.png", media_type="image/png")
    stored = _generation(GenerationStatus.COMPLETED, asset.model_copy(update={"stored": True}))
    unstored = _generation(GenerationStatus.COMPLETED, asset)
    upload_id, other_upload = UUID(int=1), UUID(int=2)
    inputs = [
        InputSpec(role="image", generation_id=stored.id),
        InputSpec(role="image", generation_id=unstored.id),
        InputSpec(role="mask", upload_id=upload_id),
    ]
    sources = {stored.id: stored, unstored.id: unstored}
    keys = {upload_id: "uploads/u/1"}
    assert stored_input_keys(inputs, sources, keys) == [stored_asset_key(stored.id), "uploads/u/1"]
    signed = {stored_asset_key(stored.id): "https://s3/g?sig", "uploads/u/1": "https://s3/u?sig"}
    resolved = canonical_inputs(inputs, sources, upload_keys=keys, signed=signed)
    assert resolved == [
        {"role": "image", "url": "https://s3/g?sig", "ref": f"generation:{stored.id}"},
        # Not stored (yet): the provider's URL, as before.
        {"role": "image", "url": "https://cdn.example/x.png"},
        {"role": "mask", "url": "https://s3/u?sig", "ref": f"upload:{upload_id}"},
    ]
    # Another signature of the same objects hashes the same; another object does not.
    resigned = [dict(i, url=str(i["url"]) + "2") if "ref" in i else i for i in resolved]
    assert reproducible_hash("t", "sim", {}, resolved) == reproducible_hash(
        "t", "sim", {}, resigned
    )
    moved = [*resolved[:2], {**resolved[2], "ref": f"upload:{other_upload}"}]
    assert reproducible_hash("t", "sim", {}, resolved) != reproducible_hash("t", "sim", {}, moved)

    with pytest.raises(InvalidRequest) as caught:
        canonical_inputs([InputSpec(role="mask", upload_id=other_upload)], {}, upload_keys=keys)
    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("inputs[0].upload_id", "upload_not_found")
    ]
    with pytest.raises(InvalidRequest) as caught:
        canonical_inputs([InputSpec(role="mask", upload_id=upload_id)], {}, upload_keys=None)
    assert [e.code for e in caught.value.errors] == ["uploads_disabled"]


def test_provider_options_are_checked_by_the_providers_adapter() -> None:
    assert _validate(params={"prompt": "p", "provider_options": {"motion": 3}}).canonical_params[
        "provider_options"
    ] == {"motion": 3}
    assert _errors(params={"prompt": "p", "provider_options": {"motion": 11, "fps": 2}}) == {
        "params.provider_options.motion": "out_of_range",
        "params.provider_options.fps": "unknown_field",
    }


def test_provider_options_must_be_an_object() -> None:
    assert _errors(params={"prompt": "p", "provider_options": [1]}) == {
        "params.provider_options": "invalid_type"
    }


def test_the_prompt_version_id_is_kept() -> None:
    assert _validate(prompt_version_id="v-7").draft.prompt_version_id == "v-7"

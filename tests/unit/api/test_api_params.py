"""Per-operation param validation and canonical params."""

from __future__ import annotations

from typing import Any

import pytest

from genbus.api.domain.errors import InvalidRequest
from genbus.api.domain.params import OperationType, validate_params

T2V = OperationType.TEXT_TO_VIDEO
T2I = OperationType.TEXT_TO_IMAGE
I2V = OperationType.IMAGE_TO_VIDEO
I2I = OperationType.IMAGE_TO_IMAGE
EXTEND = OperationType.VIDEO_EXTEND


def _errors(operation: OperationType, params: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        validate_params(operation, params)
    return {e.field: e.code for e in caught.value.errors}


def test_text_to_video_defaults_are_filled_in() -> None:
    valid = validate_params(T2V, {"prompt": "  test video ", "quality": "1080p"})
    assert valid.canonical == {
        "prompt": "test video",
        "quality": "1080p",
        "duration": 5,
        "aspect_ratio": "16:9",
    }
    assert valid.url_inputs == {}


def test_text_to_image_has_no_duration_and_square_default() -> None:
    assert validate_params(T2I, {"prompt": "p"}).canonical == {
        "prompt": "p",
        "quality": "720p",
        "aspect_ratio": "1:1",
    }
    assert _errors(T2I, {"prompt": "p", "duration": 5}) == {"params.duration": "unknown_field"}


def test_every_documented_param_is_kept() -> None:
    params = {
        "prompt": "p",
        "negative_prompt": "blurry",
        "duration": 60,
        "quality": "360p",
        "aspect_ratio": "9:16",
        "seed": 0,
        "model": "v5",
        "provider_options": {"motion": {"strength": 0.5}},
    }
    assert validate_params(T2V, params).canonical == params


@pytest.mark.parametrize("operation", [T2V, T2I])
def test_prompt_is_required_for_text_operations(operation: OperationType) -> None:
    assert _errors(operation, {}) == {"params.prompt": "required"}
    assert _errors(operation, {"prompt": "   "}) == {"params.prompt": "out_of_range"}


@pytest.mark.parametrize("operation", [I2V, I2I, EXTEND])
def test_prompt_is_optional_for_the_others(operation: OperationType) -> None:
    assert "prompt" not in validate_params(operation, {}).canonical


def test_unknown_keys_are_named() -> None:
    assert _errors(T2V, {"prompt": "p", "fps": 24, "style": "x"}) == {
        "params.fps": "unknown_field",
        "params.style": "unknown_field",
    }


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"prompt": "x" * 4001}, "params.prompt", "out_of_range"),
        ({"prompt": 5}, "params.prompt", "invalid_type"),
        ({"prompt": "p", "negative_prompt": "x" * 2001}, "params.negative_prompt", "out_of_range"),
        ({"prompt": "p", "duration": 0}, "params.duration", "out_of_range"),
        ({"prompt": "p", "duration": 61}, "params.duration", "out_of_range"),
        ({"prompt": "p", "duration": "5"}, "params.duration", "invalid_type"),
        ({"prompt": "p", "duration": 5.0}, "params.duration", "invalid_type"),
        ({"prompt": "p", "duration": True}, "params.duration", "invalid_type"),
        ({"prompt": "p", "quality": "4k"}, "params.quality", "invalid_choice"),
        ({"prompt": "p", "quality": None}, "params.quality", "invalid_choice"),
        ({"prompt": "p", "aspect_ratio": "2:1"}, "params.aspect_ratio", "invalid_choice"),
        ({"prompt": "p", "seed": -1}, "params.seed", "out_of_range"),
        ({"prompt": "p", "seed": 2**64}, "params.seed", "out_of_range"),
        ({"prompt": "p", "model": "m" * 101}, "params.model", "out_of_range"),
        ({"prompt": "p", "provider_options": []}, "params.provider_options", "invalid_type"),
        ({"prompt": "p\x00"}, "params.prompt", "invalid_character"),
        ({"prompt": "\ud800"}, "params.prompt", "invalid_character"),
        (
            {"prompt": "p", "provider_options": {"x": float("nan")}},
            "params.provider_options.x",
            "invalid_number",
        ),
        (
            {"prompt": "p", "provider_options": {"x": float("inf")}},
            "params.provider_options.x",
            "invalid_number",
        ),
        (
            {"prompt": "p", "provider_options": {"x": "y" * 9000}},
            "params.provider_options",
            "too_large",
        ),
    ],
)
def test_bad_values_are_named(params: dict[str, Any], field: str, code: str) -> None:
    assert _errors(T2V, params) == {field: code}


def test_deep_provider_options_are_refused_not_recursed() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    errors = _errors(T2V, {"prompt": "p", "provider_options": deep})
    assert list(errors.values()) == ["too_deep"]
    assert next(iter(errors)).startswith("params.provider_options.x")


def test_image_url_becomes_an_input_not_a_param() -> None:
    valid = validate_params(I2V, {"image_url": "https://example.com/cat.png", "duration": 4})
    assert valid.url_inputs == {"image": "https://example.com/cat.png"}
    assert "image_url" not in valid.canonical
    assert valid.canonical["duration"] == 4
    assert _errors(I2V, {"image_url": "not a url"}) == {"params.image_url": "invalid_url"}
    assert _errors(T2V, {"prompt": "p", "image_url": "https://x.y/z"}) == {
        "params.image_url": "unknown_field"
    }


def test_empty_negative_prompt_means_none() -> None:
    assert (
        "negative_prompt"
        not in validate_params(T2V, {"prompt": "p", "negative_prompt": " "}).canonical
    )

"""The one problem+json format: body members, field names as sent, pydantic codes, no input."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from genbus.runtime.problems import (
    PROBLEM_MEDIA_TYPE,
    FieldError,
    field_errors_from,
    field_path,
    problem_body,
    problem_response,
)


class _Input(BaseModel):
    url: HttpUrl


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    inputs: list[_Input] = []
    quality: int = Field(default=1, le=3)


def test_body_members_and_errors_only_when_given() -> None:
    assert problem_body(409, "generation_terminal", "it ended") == {
        "type": "urn:genbus:problem:generation_terminal",
        "title": "Conflict",
        "status": 409,
        "detail": "it ended",
        "code": "generation_terminal",
    }
    listed = problem_body(422, "validation_error", "bad", [FieldError("a.b", "required", "m")])
    assert listed["errors"] == [{"field": "a.b", "code": "required", "message": "m"}]


def test_response_is_problem_json_with_headers() -> None:
    response = problem_response(429, "rate_limited", "slow down", headers={"Retry-After": "3"})
    assert (response.status_code, response.media_type) == (429, PROBLEM_MEDIA_TYPE)
    assert response.headers["retry-after"] == "3"
    assert json.loads(response.body)["title"] == "Too Many Requests"


@pytest.mark.parametrize(
    ("loc", "prefix", "expected"),
    [
        (("inputs", 0, "url"), "", "inputs[0].url"),
        (("prompt",), "params", "params.prompt"),
        ((), "", "body"),
    ],
)
def test_fields_are_named_as_sent(loc: tuple[str | int, ...], prefix: str, expected: str) -> None:
    assert field_path(loc, prefix) == expected


def test_pydantic_errors_become_stable_codes_without_the_input() -> None:
    secret = "sk-live-secret"
    with pytest.raises(ValidationError) as caught:
        _Body.model_validate({"inputs": [{"url": secret}], "quality": 9, "token": secret})
    errors = field_errors_from(caught.value, "params")
    assert {(e.field, e.code) for e in errors} == {
        ("params.prompt", "required"),
        ("params.inputs[0].url", "invalid_url"),
        ("params.quality", "out_of_range"),
        ("params.token", "unknown_field"),
    }
    assert all(secret not in e.message for e in errors)

"""The catalog asks the provider adapter's `validate_provider_options` hook, when it has one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from genbus.api.adapters.providers import CapabilitiesCatalog


class _SimOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    motion: int = Field(default=0, ge=0, le=10)


def _pydantic_hook(operation_type: str, options: Mapping[str, Any]) -> None:
    _SimOptions.model_validate(dict(options))


def _value_hook(operation_type: str, options: Mapping[str, Any]) -> None:
    if operation_type == "text_to_image" and options:
        raise ValueError("no options for images")


def _broken_hook(operation_type: str, options: Mapping[str, Any]) -> None:
    raise KeyError("bug")


def test_pydantic_errors_name_each_option() -> None:
    catalog = CapabilitiesCatalog({"sim": _pydantic_hook})
    assert catalog.provider_options_problems("sim", "text_to_video", {"motion": 3}) == []
    problems = catalog.provider_options_problems("sim", "text_to_video", {"motion": 11, "fps": 1})
    assert {(p.field, p.code) for p in problems} == {
        ("motion", "out_of_range"),
        ("fps", "unknown_field"),
    }


def test_a_value_error_is_a_problem_with_the_options_object() -> None:
    catalog = CapabilitiesCatalog({"sim": _value_hook})
    (problem,) = catalog.provider_options_problems("sim", "text_to_image", {"x": 1})
    assert (problem.field, problem.code, problem.message) == (
        "",
        "invalid",
        "no options for images",
    )
    assert catalog.provider_options_problems("sim", "text_to_video", {"x": 1}) == []


def test_a_broken_hook_refuses_the_request_instead_of_failing_it() -> None:
    catalog = CapabilitiesCatalog({"sim": _broken_hook})
    (problem,) = catalog.provider_options_problems("sim", "text_to_video", {})
    assert problem.code == "invalid"


def test_providers_without_a_hook_accept_any_object() -> None:
    catalog = CapabilitiesCatalog()
    assert catalog.provider_options_problems("sim", "text_to_video", {"anything": [1]}) == []

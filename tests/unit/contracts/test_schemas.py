"""The committed event schemas are the contract: code and files agree, and breaks are caught."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from genbus.contracts.schema import breaking_changes, committed_schemas, current_schemas


def test_committed_schemas_match_the_code() -> None:
    current, committed = current_schemas(), committed_schemas()
    assert set(current) == set(committed), "run: uv run python -m genbus.contracts.schema --write"
    for name, schema in current.items():
        assert not breaking_changes(committed[name], schema), name
        assert schema == committed[name], (
            f"{name} changed compatibly; refresh with `python -m genbus.contracts.schema --write`"
        )


def _requested() -> dict[str, Any]:
    return copy.deepcopy(committed_schemas()["GenerationRequested.v1"])


def test_removed_field_is_breaking() -> None:
    new = _requested()
    del new["properties"]["priority"]
    assert breaking_changes(_requested(), new) == ["<event>.priority: removed or renamed"]


def test_changed_type_is_breaking() -> None:
    new = _requested()
    new["properties"]["priority"] = {"type": "string"}
    assert breaking_changes(_requested(), new) == ["<event>.priority: type changed"]


def test_new_required_field_is_breaking() -> None:
    new = _requested()
    new["properties"]["tenant"] = {"type": "string"}
    new["required"] = [*new["required"], "tenant"]
    assert breaking_changes(_requested(), new) == ["<event>.tenant: newly required"]


def test_nested_change_is_breaking() -> None:
    old = copy.deepcopy(committed_schemas()["GenerationCompleted.v1"])
    new = copy.deepcopy(old)
    new["$defs"]["Asset"]["properties"]["width"] = {"type": "string"}
    assert any("width" in p for p in breaking_changes(old, new))


@pytest.mark.parametrize("name", sorted(committed_schemas()))
def test_new_optional_field_is_compatible(name: str) -> None:
    old = committed_schemas()[name]
    new = copy.deepcopy(old)
    new["properties"]["added_later"] = {"type": "string", "default": ""}
    assert breaking_changes(old, new) == []

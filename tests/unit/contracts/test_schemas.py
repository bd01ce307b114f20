"""The committed event schemas are the contract: code and files agree, and breaks are caught."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from genbus.contracts.schema import breaking_changes, committed_schemas, current_schemas


def _version(name: str) -> tuple[str, int]:
    event, version = name.rsplit(".v", 1)
    return event, int(version)


def test_committed_schemas_match_the_code() -> None:
    current, committed = current_schemas(), committed_schemas()
    assert set(current) <= set(committed), "run: uv run python -m genbus.contracts.schema --write"
    for name, schema in current.items():
        assert not breaking_changes(committed[name], schema), name
        assert schema == committed[name], (
            f"{name} changed compatibly; refresh with `python -m genbus.contracts.schema --write`"
        )


def test_every_earlier_version_is_kept_and_the_current_one_reads_it() -> None:
    """A new event version is published beside the old ones, and stays compatible with each:
    consumers on the new code still read events of every earlier version."""
    current = {_version(name)[0]: (_version(name)[1], s) for name, s in current_schemas().items()}
    for name, old in committed_schemas().items():
        event, version = _version(name)
        latest, schema = current[event]
        assert version <= latest, name
        for earlier in range(1, latest):
            assert f"{event}.v{earlier}" in committed_schemas(), f"{event}.v{earlier} dropped"
        assert not breaking_changes(old, schema), name


def test_generation_completed_is_at_version_2() -> None:
    assert "GenerationCompleted.v2" in current_schemas()
    assert "GenerationCompleted.v1" not in current_schemas()


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

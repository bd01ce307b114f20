"""Domain objects from rows: same-named columns, converted fields, defaults, missing columns."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from genbus.runtime.rows import dataclass_from_row


@dataclass(frozen=True)
class Thing:
    id: int
    name: str
    tags: tuple[str, ...]
    note: str | None = None
    extra: list[int] = field(default_factory=list)


def test_columns_fill_fields_of_the_same_name_and_conversions_win() -> None:
    row = {"id": 1, "name": "a", "tags": ["x", "y"], "note": "n", "unrelated": 5}
    thing = dataclass_from_row(Thing, row, tags=tuple(row["tags"]))
    assert thing == Thing(1, "a", ("x", "y"), "n")


def test_a_missing_column_is_an_error_unless_its_field_has_a_default() -> None:
    assert dataclass_from_row(Thing, {"id": 2, "name": "b", "tags": ()}) == Thing(2, "b", ())
    with pytest.raises(KeyError, match=r"Thing\.name"):
        dataclass_from_row(Thing, {"id": 3, "tags": ()})

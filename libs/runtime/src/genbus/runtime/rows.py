"""Rows and domain objects: every service's repositories map rows the same way, and write
rows that depend on another part of the same statement the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import CTE, Table, bindparam, select
from sqlalchemy.dialects.postgresql import Insert, insert

T = TypeVar("T")


def dataclass_from_row(cls: type[T], row: Mapping[Any, Any], **converted: Any) -> T:
    """An instance of the dataclass `cls` whose fields are the row's columns of the same names.

    `converted` gives the fields whose value is not a column as it is (an enum, a model, a
    renamed column). A column missing from the row is an error, unless its field has a default.
    """
    values = dict(converted)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not field.init or field.name in values:
            continue
        if field.name in row:
            values[field.name] = row[field.name]
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise KeyError(f"{cls.__name__}.{field.name}: no such column in the row")
    return cls(**values)


def insert_selecting(
    table: Table, source: CTE, prefix: str, columns: Sequence[str] | None = None
) -> Insert:
    """INSERT into `table` of one row for each row of `source` (one, or none: a statement's
    earlier step decides whether it is written), its values the parameters `prefix` + column
    name (`columns`, default all of the table's), typed as the columns are."""
    names = list(columns or (c.name for c in table.columns))
    row = select(*(bindparam(prefix + n, type_=table.c[n].type).label(n) for n in names))
    return insert(table).from_select(names, row.select_from(source))


def prefixed(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` as the parameters of an `insert_selecting` with `prefix`."""
    return {prefix + name: value for name, value in values.items()}

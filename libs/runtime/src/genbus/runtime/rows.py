"""Domain objects from database rows: every service's repositories map rows the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

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

"""How results are shown: an aligned text table, or JSON with `--json`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

Column = tuple[str, Callable[[Mapping[str, Any]], object]]


def print_json(data: object, out: TextIO) -> None:
    json.dump(data, out, indent=2, sort_keys=True)
    out.write("\n")


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], out: TextIO) -> None:
    """One line per row; a cell of None shows as `-`."""
    header = [title for title, _ in columns]
    cells = [[_cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    for line in [header, *cells]:
        out.write("  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)))
        out.write("\n")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value).replace("\n", " ")

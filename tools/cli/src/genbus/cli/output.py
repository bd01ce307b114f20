"""How results are shown: `rich` tables (plain text when not a terminal), or JSON with `--json`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

Column = tuple[str, Callable[[Mapping[str, Any]], object]]


def print_json(data: object, out: TextIO) -> None:
    json.dump(data, out, indent=2, sort_keys=True)
    out.write("\n")


def console_for(out: TextIO) -> Console:
    """A console on `out`: colours and full width on a terminal, plain and wide otherwise."""
    terminal = bool(getattr(out, "isatty", lambda: False)())
    return Console(file=out, width=None if terminal else 250, no_color=not terminal)


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    title: str = "",
    *,
    boxed: bool = False,
) -> Table:
    """One line per row, under a header line; a cell of None shows as `-`. `boxed` (for a
    terminal) rules the header off; unboxed, the lines are plain columns for scripts."""
    shown = Table(
        title=title or None,
        box=box.SIMPLE_HEAD if boxed else None,
        title_justify="left",
        pad_edge=False,
        padding=(0, 2, 0, 0) if not boxed else (0, 1),
    )
    for heading, _ in columns:
        shown.add_column(heading, overflow="fold")
    for row in rows:
        shown.add_row(*(_cell(get(row)) for _, get in columns))
    return shown


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], out: TextIO) -> None:
    console = console_for(out)
    console.print(table(rows, columns, boxed=console.is_terminal))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value).replace("\n", " ")

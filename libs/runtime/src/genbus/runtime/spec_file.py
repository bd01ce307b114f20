"""A committed API document kept equal to the code: `--write` refreshes it, `--check` exits 1
when it is out of date (a test runs the check), no flag prints it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def committed(path: Path) -> dict[str, Any] | None:
    """The committed document, or None when there is none."""
    if not path.exists():
        return None
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec


def spec_file_main(
    prog: str, path: Path, current: Callable[[], dict[str, Any]], argv: list[str] | None = None
) -> None:
    parser = argparse.ArgumentParser(prog=prog)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {path.name}")
    group.add_argument("--check", action="store_true", help="exit 1 if it is out of date")
    args = parser.parse_args(argv)
    spec = current()
    if args.write:
        path.write_text(render(spec))
        print(f"wrote {path}")
    elif args.check:
        if committed(path) != spec:
            sys.exit(f"{path} is out of date: run {prog} --write")
    else:
        sys.stdout.write(render(spec))

"""The committed OpenAPI document (`services/api/openapi.json`): what the served one must equal.

`python -m genbus.api.openapi --write` refreshes it after an intended API change;
`--check` exits 1 when it is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app

#: services/api/openapi.json, next to the service's pyproject.toml.
SPEC_PATH = Path(__file__).resolve().parents[3] / "openapi.json"


def current_spec() -> dict[str, Any]:
    """The OpenAPI document the app serves (it does not depend on settings or connections)."""
    app = create_app(ApiSettings())
    return app.openapi()


def committed_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m genbus.api.openapi")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {SPEC_PATH.name}")
    group.add_argument("--check", action="store_true", help="exit 1 if it is out of date")
    args = parser.parse_args(argv)
    spec = current_spec()
    if args.write:
        SPEC_PATH.write_text(render(spec))
        print(f"wrote {SPEC_PATH}")
    elif args.check:
        if not SPEC_PATH.exists() or committed_spec() != spec:
            sys.exit(f"{SPEC_PATH} is out of date: run python -m genbus.api.openapi --write")
    else:
        sys.stdout.write(render(spec))


if __name__ == "__main__":
    main()

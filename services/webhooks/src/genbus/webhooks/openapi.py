"""The committed OpenAPI document of the management API (`services/webhooks/openapi.json`).

`python -m genbus.webhooks.openapi --write` refreshes it after an intended API change;
`--check` exits 1 when it is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from genbus.webhooks.entrypoints.http import management_app

#: services/webhooks/openapi.json, next to the service's pyproject.toml.
SPEC_PATH = Path(__file__).resolve().parents[3] / "openapi.json"


def current_spec() -> dict[str, Any]:
    return management_app(None).openapi()


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m genbus.webhooks.openapi")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {SPEC_PATH.name}")
    group.add_argument("--check", action="store_true", help="exit 1 if it is out of date")
    args = parser.parse_args(argv)
    spec = current_spec()
    if args.write:
        SPEC_PATH.write_text(render(spec))
        print(f"wrote {SPEC_PATH}")
    elif args.check:
        if not SPEC_PATH.exists() or json.loads(SPEC_PATH.read_text()) != spec:
            sys.exit(f"{SPEC_PATH} is out of date: run python -m genbus.webhooks.openapi --write")
    else:
        sys.stdout.write(render(spec))


if __name__ == "__main__":
    main()

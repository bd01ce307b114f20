"""The committed OpenAPI document of the management API (`services/webhooks/openapi.json`).

`python -m genbus.webhooks.openapi --write` refreshes it after an intended API change;
`--check` exits 1 when it is out of date.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genbus.runtime.spec_file import spec_file_main
from genbus.webhooks.entrypoints.http import management_app

#: services/webhooks/openapi.json, next to the service's pyproject.toml.
SPEC_PATH = Path(__file__).resolve().parents[3] / "openapi.json"


def current_spec() -> dict[str, Any]:
    return management_app(None).openapi()


def main(argv: list[str] | None = None) -> None:
    spec_file_main("python -m genbus.webhooks.openapi", SPEC_PATH, current_spec, argv)


if __name__ == "__main__":
    main()

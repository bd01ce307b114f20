"""The committed OpenAPI document (`services/api/openapi.json`): what the served one must equal.

`python -m genbus.api.openapi --write` refreshes it after an intended API change;
`--check` exits 1 when it is out of date.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app
from genbus.runtime.spec_file import committed, spec_file_main

#: services/api/openapi.json, next to the service's pyproject.toml.
SPEC_PATH = Path(__file__).resolve().parents[3] / "openapi.json"


def current_spec() -> dict[str, Any]:
    """The OpenAPI document the app serves (it does not depend on settings or connections)."""
    app = create_app(ApiSettings())
    return app.openapi()


def committed_spec() -> dict[str, Any]:
    spec = committed(SPEC_PATH)
    assert spec is not None, f"{SPEC_PATH} is missing"
    return spec


def main(argv: list[str] | None = None) -> None:
    spec_file_main("python -m genbus.api.openapi", SPEC_PATH, current_spec, argv)


if __name__ == "__main__":
    main()

"""The client's models are what the committed OpenAPI document generates (no drift), and the
stream event models it writes by hand match the document's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from genbus.client.calls import GenerationDeleted

ROOT = Path(__file__).resolve().parents[3]
GENERATOR = ROOT / "libs" / "client" / "codegen" / "generate_models.py"
SPEC = ROOT / "services" / "api" / "openapi.json"


def test_models_are_generated_from_the_committed_spec(tmp_path: Path) -> None:
    fresh = tmp_path / "models.py"
    subprocess.run([sys.executable, str(GENERATOR), "--output", str(fresh)], check=True)
    committed = (ROOT / "libs" / "client" / "src" / "genbus" / "client" / "models.py").read_text()
    assert fresh.read_text() == committed, "libs/client models are stale: run `make clients`"


def test_the_deleted_event_model_matches_the_spec() -> None:
    spec: dict[str, Any] = json.loads(SPEC.read_text())
    stream = spec["paths"]["/api/v1/generations/{generation_id}/events"]["get"]
    variants = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]["oneOf"]
    (deleted,) = [v for v in variants if v["properties"]["event"]["const"] == "generation.deleted"]
    schema = deleted["properties"]["data"]["contentSchema"]
    assert set(schema["properties"]) == set(GenerationDeleted.model_fields)
    assert set(schema["required"]) == set(GenerationDeleted.model_fields)

"""The TypeScript types (`clients/typescript`) are what the committed OpenAPI document
generates (no drift), and they compile together with a usage file (`tsc --noEmit`).

Node.js and npm are required: without them this fails and says so, never skips. The npm
packages (pinned by the committed package-lock.json) are installed by `npm ci` into
clients/typescript/node_modules (gitignored) when missing or when the lock changed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "clients" / "typescript"
SPEC = ROOT / "services" / "api" / "openapi.json"
TYPES = PACKAGE / "src" / "genbus-api.d.ts"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not installed: the TypeScript client's test needs Node.js and npm "
            "(e.g. `apt-get install nodejs npm`)"
        )
    return path


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """clients/typescript/node_modules, installed from the lock file when it is stale."""
    node = _tool("node")
    npm = _tool("npm")
    modules = PACKAGE / "node_modules"
    stamp = modules / ".genbus-package-lock.sha256"
    digest = hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=PACKAGE,
            check=True,
            timeout=300,
        )
        stamp.write_text(digest)
    assert subprocess.run([node, "--version"], check=True, capture_output=True).stdout
    return modules


def test_types_are_generated_from_the_committed_spec(node_modules: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "genbus-api.d.ts"
    subprocess.run(
        [
            _tool("node"),
            str(node_modules / "openapi-typescript" / "bin" / "cli.js"),
            str(SPEC),
            "--output",
            str(fresh),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert fresh.read_text() == TYPES.read_text(), "TypeScript types are stale: run `make clients`"


def test_types_compile_with_a_usage_file(node_modules: Path) -> None:
    result = subprocess.run(
        [_tool("node"), str(node_modules / "typescript" / "bin" / "tsc"), "--noEmit", "-p", "."],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr

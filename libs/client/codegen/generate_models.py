"""Generate `genbus.client.models` from the committed OpenAPI document (`make clients`).

`python libs/client/codegen/generate_models.py [--check | --output PATH]`: writes the module,
checks that the committed one is what the spec generates (exit 1 on drift), or writes it
elsewhere. The output is formatted with the repository's ruff settings, so it is the same
wherever it is written.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "services" / "api" / "openapi.json"
MODELS = ROOT / "libs" / "client" / "src" / "genbus" / "client" / "models.py"
RUFF_CONFIG = ROOT / "pyproject.toml"

HEADER = (
    "# Generated from services/api/openapi.json by libs/client/codegen/generate_models.py\n"
    "# (`make clients`): do not edit by hand.\n"
    "# ruff: noqa: E501, RUF001, RUF002, RUF003"
)

CODEGEN_OPTIONS = (
    "--input-file-type=openapi",
    "--output-model-type=pydantic_v2.BaseModel",
    "--target-python-version=3.11",
    "--use-annotated",
    "--field-constraints",
    "--use-standard-collections",
    "--use-union-operator",
    "--use-double-quotes",
    "--use-schema-description",
    "--use-field-description",
    "--collapse-root-models",
    "--disable-timestamp",
    # A newer server may add fields: an older client ignores them.
    "--extra-fields=ignore",
    "--formatters=builtin",
)


def generate(output: Path, spec: Path = SPEC) -> None:
    """Write the models of `spec` to `output`, formatted as the repository formats code.

    They are generated and formatted beside the committed file, whatever `output` is: the
    generator's and ruff's formatting depend on where a file lies (a git-ignored folder such
    as the tests' `.local/` is formatted differently, or not at all)."""
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(dir=MODELS.parent, prefix=".generating-") as work:
        draft = Path(work) / MODELS.name
        subprocess.run(
            [
                str(bindir / "datamodel-codegen"),
                f"--input={spec}",
                f"--output={draft}",
                f"--custom-file-header={HEADER}",
                *CODEGEN_OPTIONS,
            ],
            check=True,
            capture_output=True,
        )
        ruff = [str(bindir / "ruff"), "--config", str(RUFF_CONFIG)]
        subprocess.run([*ruff[:1], "check", *ruff[1:], "--fix", "-q", str(draft)], check=True)
        subprocess.run([*ruff[:1], "format", *ruff[1:], "-q", str(draft)], check=True)
        output.write_text(draft.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="generate_models.py")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if models.py is stale")
    group.add_argument("--output", type=Path, help="write here instead of models.py")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "models.py"
            generate(fresh)
            if fresh.read_text() != MODELS.read_text():
                sys.exit(f"{MODELS} is out of date: run `make clients`")
        return
    target = args.output or MODELS
    generate(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

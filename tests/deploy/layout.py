"""Where the deployment files live, and the services an image can be built for."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DOCKERIGNORE = DEPLOY / "docker" / "Dockerfile.dockerignore"
COMPOSE_FILE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"

#: Every folder under deploy/k8s with a kustomization, each rendered and validated on its own.
KUSTOMIZATIONS = sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def image_services() -> list[str]:
    """The values of the Dockerfile's SERVICE build argument (from its guard clause)."""
    match = re.search(r"^\s*([a-z-]+(?:\|[a-z-]+)+)\)\s*;;", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, "the Dockerfile's SERVICE guard (`case ... in a|b|c) ;;`) was not found"
    return match.group(1).split("|")


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()

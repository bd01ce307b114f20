"""The one Dockerfile builds a small, non-root image per service, offline-checkable parts only.

No Docker engine here: the tests read the Dockerfile and its ignore file, and run the image's
health probe script against a local HTTP server.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import re
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType

import pytest

from .layout import DEPLOY, DOCKERFILE, DOCKERIGNORE, ROOT, image_services, relative


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    parsed = []
    for line in logical:
        instruction, _, args = line.strip().partition(" ")
        parsed.append((instruction.upper(), " ".join(args.split())))
    return parsed


def _global_args() -> dict[str, str]:
    found: dict[str, str] = {}
    for instruction, args in _instructions():
        if instruction == "FROM":
            break
        if instruction == "ARG" and "=" in args:
            name, _, default = args.partition("=")
            found[name] = default
    return found


def _stages() -> list[Stage]:
    stages: list[Stage] = []
    for instruction, args in _instructions():
        if instruction == "FROM":
            match = re.fullmatch(r"(\S+)(?: AS (\S+))?", args, re.IGNORECASE)
            assert match, args
            stages.append(Stage(match.group(1), match.group(2)))
        elif stages:
            stages[-1].instructions.append((instruction, args))
    return stages


def _stage(name: str) -> Stage:
    (stage,) = [s for s in _stages() if s.name == name]
    return stage


def _final() -> Stage:
    return _stages()[-1]


def test_service_argument_names_the_workspace_services() -> None:
    services = image_services()
    assert services == ["api", "dispatcher", "poller", "webhooks", "provider-sim"]
    for service in services:
        project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
        assert project["project"]["name"] == f"genbus-{service}"
        # The image runs `genbus-service`, a link to this console script.
        assert f"genbus-{service}" in project["project"]["scripts"]


def test_images_are_python_slim_with_uv_from_its_official_image() -> None:
    defaults = _global_args()
    assert defaults["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert defaults["UV_IMAGE"].startswith("ghcr.io/astral-sh/uv:")
    # The same uv as `make` installs, so the lock file is read the same way everywhere.
    makefile_uv = re.search(r'"uv==([\d.]+)"', (ROOT / "Makefile").read_text())
    assert makefile_uv, "the Makefile no longer pins uv"
    assert defaults["UV_IMAGE"].endswith(f":{makefile_uv.group(1)}")
    stages = _stages()
    assert [s.image for s in stages] == ["${UV_IMAGE}", "${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert "--from=uv /uv /usr/local/bin/uv" in _stage("build").args_of("COPY")


def test_each_image_syncs_only_its_own_package_from_the_lock() -> None:
    syncs = [
        match.group(1)
        for run in _stage("build").args_of("RUN")
        if (match := re.search(r"uv sync ([^&]+)", run))
    ]
    assert len(syncs) == 2
    for options in syncs:
        assert "--frozen" in options
        assert "--no-dev" in options
        assert '--package "genbus-${SERVICE}"' in options
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]


def _workspace_member_manifests() -> set[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = set()
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in ROOT.glob(pattern):
            if (folder / "pyproject.toml").is_file():
                members.add(relative(folder / "pyproject.toml"))
    return members


def test_dependency_layer_copies_every_workspace_manifest() -> None:
    """uv cannot load the workspace (so the build fails) when a member's pyproject is missing."""
    copied = {
        args.split()[0]
        for args in _stage("build").args_of("COPY")
        if args.split()[0].endswith("pyproject.toml") and not args.startswith("--")
    }
    assert copied == {"pyproject.toml"} | _workspace_member_manifests()


def test_runtime_stage_runs_unprivileged_with_a_healthcheck_and_exec_form_cmd() -> None:
    final = _final()
    assert final.name == "runtime"
    (user,) = final.args_of("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "USER must be numeric: runAsNonRoot cannot check a name"
    assert int(uid) > 0
    assert not gid or int(gid) > 0
    (healthcheck,) = final.args_of("HEALTHCHECK")
    assert json.loads(healthcheck.split(" CMD ", 1)[1]) == ["python", "/app/healthcheck.py"]
    (cmd,) = final.args_of("CMD")
    assert json.loads(cmd) == ["genbus-service"]
    # Only the built virtualenv and the probe script reach the runtime image.
    assert sorted(final.args_of("COPY")) == [
        "--from=build /app/.venv /app/.venv",
        "deploy/docker/healthcheck.py /app/healthcheck.py",
    ]


def test_no_secret_is_baked_into_the_image() -> None:
    for stage in _stages():
        for instruction, args in stage.instructions:
            if instruction in ("ENV", "ARG", "LABEL"):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split()[0]]
                for name in names:
                    assert not re.search(r"KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL", name), args


# --- build context ----------------------------------------------------------------------------


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(excluded, regex) per .dockerignore line, in order: the last match decides."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.removeprefix("!").strip("/")
        regex = (
            re.escape(glob)
            .replace(r"\*\*/", "(.*/)?")
            .replace(r"\*\*", ".*")
            .replace(r"\*", "[^/]*")
            .replace(r"\?", "[^/]")
        )
        patterns.append((not negated, re.compile(regex)))
    return patterns


def _sent_to_the_builder(path: str) -> bool:
    """Whether BuildKit keeps `path` in the context (a pattern also matches everything below)."""
    parts = path.split("/")
    excluded = False
    for is_exclusion, regex in _ignore_patterns():
        if any(regex.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            excluded = is_exclusion
    return not excluded


def _copied_files() -> Iterator[str]:
    for stage in _stages():
        for args in stage.args_of("COPY"):
            if args.startswith("--from"):
                continue
            *sources, _ = args.split()
            for source in sources:
                path = ROOT / source
                assert path.exists(), f"COPY source {source} does not exist"
                if path.is_dir():
                    for file in path.rglob("*"):
                        if file.is_file() and "__pycache__" not in file.parts:
                            yield relative(file)
                else:
                    yield source


def test_build_context_holds_everything_the_dockerfile_copies() -> None:
    left_out = [path for path in _copied_files() if not _sent_to_the_builder(path)]
    assert left_out == []


def test_build_context_leaves_out_the_rest() -> None:
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "deploy/local/src/x.py",
        "libs/runtime/src/genbus/runtime/__pycache__/x.pyc",
        ".local/pg/data",
    ):
        assert not _sent_to_the_builder(path), path


# --- health probe -----------------------------------------------------------------------------


def _healthcheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "healthcheck", DEPLOY / "docker" / "healthcheck.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("service", "port_variable"),
    [
        ("api", "GENBUS_API_PORT"),
        ("dispatcher", "GENBUS_HEALTH_PORT"),
        ("poller", "GENBUS_HEALTH_PORT"),
        ("webhooks", "GENBUS_HEALTH_PORT"),
    ],
)
def test_health_probe_reports_the_service_endpoint(
    monkeypatch: pytest.MonkeyPatch, health_server: int, service: str, port_variable: str
) -> None:
    probe = _healthcheck_module()
    monkeypatch.setenv("GENBUS_SERVICE", service)
    monkeypatch.setenv(port_variable, str(health_server))
    assert probe.main(["healthcheck.py"]) == 0
    assert probe.main(["healthcheck.py", "/readyz"]) == 1


def test_health_probe_fails_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = _healthcheck_module()
    monkeypatch.setenv("GENBUS_HEALTHCHECK_URL", "http://127.0.0.1:9/healthz")
    assert probe.main(["healthcheck.py"]) == 1


def test_health_probe_knows_the_simulator() -> None:
    probe = _healthcheck_module()
    assert probe._default_url("provider-sim", None) == "http://127.0.0.1:9100/_sim/config"

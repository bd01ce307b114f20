"""The connection facts `make run` leaves in `.local/connection.json` (mode 0600), so that the
operators' commands work with no environment set: where NATS, Postgres, the api and the
dispatcher's admin listener are, and the admin token.

A variable set in the environment always wins over the file; the file only fills gaps. Services
never read it (they are configured by their environment); only the command-line tools do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

FILE_NAME = "connection.json"
#: Where the file is looked for: this directory, else `<nearest dir with uv.lock>/.local`.
LOCAL_DIR_ENV = "GENBUS_LOCAL_DIR"
#: Set to a path to read another file, or to an empty string to read none.
FACTS_ENV = "GENBUS_CONNECTION_FILE"

#: The environment variable each fact stands for.
ENV_OF_FACT = {
    "nats_url": "NATS_URL",
    "nats_user": "GENBUS_NATS_USER",
    "nats_password": "GENBUS_NATS_PASSWORD",
    "nats_tls_ca": "GENBUS_NATS_TLS_CA",
    "database_url": "DATABASE_URL",
    "admin_url": "GENBUS_ADMIN_URL",
    "admin_token": "GENBUS_ADMIN_TOKEN",
    "api_url": "GENBUS_API_URL",
    "console_url": "GENBUS_CONSOLE_URL",
    "credentials_keys": "GENBUS_CREDENTIALS_KEYS",
}


def local_dir(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    env = os.environ if env is None else env
    if override := env.get(LOCAL_DIR_ENV):
        return Path(override).resolve()
    here = (cwd or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "uv.lock").is_file() and (directory / "pyproject.toml").is_file():
            return directory / ".local"
    return here / ".local"


def facts_path(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    if FACTS_ENV in env:
        return Path(env[FACTS_ENV]) if env[FACTS_ENV] else None
    return local_dir(env) / FILE_NAME


def write_facts(path: Path, facts: Mapping[str, str]) -> None:
    """Write the facts readable by the owner only (it holds the admin token)."""
    unknown = set(facts) - set(ENV_OF_FACT)
    if unknown:
        raise ValueError(f"unknown connection facts: {', '.join(sorted(unknown))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(dict(facts), out, indent=2, sort_keys=True)
        out.write("\n")
    path.chmod(0o600)


def read_facts(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The facts of the file, or {} when there is none or it cannot be read."""
    path = facts_path(env)
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: str(v) for k, v in data.items() if k in ENV_OF_FACT and v}


def env_with_facts(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: the process's) with every variable it lacks filled from the facts file."""
    env = dict(os.environ if env is None else env)
    for fact, value in read_facts(env).items():
        variable = ENV_OF_FACT[fact]
        if not env.get(variable):
            env[variable] = value
    return env


def fill_environment() -> None:
    """`env_with_facts` applied to this process (before settings are read)."""
    for variable, value in env_with_facts().items():
        os.environ.setdefault(variable, value)

"""What a local Postgres needs before it runs: pgserver's binaries, the server's settings and
command line, and (as root) the system user it runs as."""

from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from genbus.devstack.ports import LOOPBACK
from genbus.devstack.processes import (
    DevstackError,
)

SUPERUSER = "postgres"
SYSTEM_USER = "pgserver"  # same system user pgserver itself creates when run as root
DB_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; keep room for ".s.PGSQL.NNNNN.lock"


def import_pgserver() -> None:
    """Import pgserver once, silencing the platformdirs warning its import emits when
    XDG_RUNTIME_DIR is unset (test runs turn warnings into errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver  # noqa: F401


def bin_dir() -> Path:
    """pgserver's bundled Postgres `bin/` directory."""
    import_pgserver()
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def postgres_settings(
    *, fast: bool, max_connections: int = 200, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Server settings (`-c name=value`). `fast` trades crash safety for speed (tests only).

    Note: with `fast`, `synchronous_commit=off` means a SIGKILL can lose the last ~0.5 s of
    acknowledged commits; fault tests that kill Postgres and count rows need `fast=False`.
    """
    settings = {
        "max_connections": str(max_connections),
        "fsync": "on",
        "synchronous_commit": "on",
        "full_page_writes": "on",
    }
    if fast:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    settings |= dict(extra or {})
    return settings


def postgres_argv(
    data_dir: Path,
    *,
    port: int,
    socket_dir: Path,
    settings: Mapping[str, str],
    host: str = LOOPBACK,
) -> list[str]:
    """The `postgres` server command line."""
    argv = [
        str(bin_dir() / "postgres"),
        "-D",
        str(data_dir),
        "-h",
        host,
        "-p",
        str(port),
        "-k",
        str(socket_dir),
    ]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    return argv


@dataclass(frozen=True)
class RunAs:
    """The unprivileged system user Postgres runs as when we are root."""

    user: str
    uid: int
    gid: int


def run_as_user() -> RunAs | None:
    """None when we are not root (Postgres runs as us); else pgserver's system user."""
    if os.geteuid() != 0:
        return None
    import_pgserver()
    from pgserver.utils import ensure_user_exists

    entry = ensure_user_exists(SYSTEM_USER)
    if entry is None:
        raise DevstackError(f"could not create system user {SYSTEM_USER!r} for Postgres")
    return RunAs(SYSTEM_USER, int(entry.pw_uid), int(entry.pw_gid))


_binaries_opened = False


def open_up_for(run_as: RunAs, data_dir: Path) -> None:
    """Let `run_as` traverse to `data_dir` and read/execute the bundled binaries (as pgserver does),
    and own `data_dir`."""
    global _binaries_opened
    import_pgserver()
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(data_dir)
    if not _binaries_opened:
        read = stat.S_IRGRP | stat.S_IROTH
        execute = stat.S_IXGRP | stat.S_IXOTH
        binaries = bin_dir()
        ensure_prefix_permissions(binaries)
        ensure_folder_permissions(binaries, read | execute)
        ensure_folder_permissions(binaries.parent / "lib", read)
        _binaries_opened = True
    os.chown(data_dir, run_as.uid, run_as.gid)


def clean_env() -> dict[str, str]:
    """Our environment without libpq/server PG* variables that would override our arguments."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

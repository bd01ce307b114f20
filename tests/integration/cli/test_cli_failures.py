"""Every operator command with its server stopped: one line on stderr naming what could not be
reached, a non-zero exit, never a traceback. The servers are "stopped" as a client sees it: the
connection facts point at ports nothing listens on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genbus.devstack.ports import free_port
from genbus.runtime.connection import write_facts

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a shell after `make run` stopped: only the facts file remains."""
    local = tmp_path_factory.mktemp("stopped-local")
    write_facts(
        local / "connection.json",
        {
            "nats_url": f"nats://127.0.0.1:{free_port()}",
            "database_url": f"postgresql://postgres:pw@127.0.0.1:{free_port()}/genbus",
            "admin_url": f"http://127.0.0.1:{free_port()}",
            "admin_token": "x" * 43,
            "credentials_keys": "k" * 44,
        },
    )
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "GENBUS_LOCAL_DIR": str(local)}


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(env["GENBUS_LOCAL_DIR"]),
    )


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (("genbus.cli", "deadletters", "list"), "NATS"),
        (("genbus.cli", "status"), "127.0.0.1"),
        (("genbus.dispatcher", "accounts", "list"), "Postgres"),
        (("genbus.api", "keys", "list"), "Postgres"),
    ],
)
def test_a_stopped_server_is_one_line_and_a_non_zero_exit(
    stopped: dict[str, str], argv: tuple[str, ...], names: str
) -> None:
    result = _run(stopped, *argv)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert names in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert "pw@" not in result.stderr

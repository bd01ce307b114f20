"""Every devstack test gets its own base dir; afterwards no live process may still refer to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from genbus.devstack.processes import pid_alive


def processes_using(path: Path) -> list[str]:
    """Live (non-zombie) processes whose command line mentions `path` (a check, never a kill)."""
    found: list[str] = []
    needle = str(path)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if needle in cmdline and pid_alive(proc.info["pid"]):
            found.append(f"{proc.info['pid']}: {cmdline}")
    return found


@pytest.fixture
def base_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    leftovers = processes_using(tmp_path)
    assert not leftovers, f"processes left running: {leftovers}"

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import psutil
import pytest

from genbus.devstack import ServiceProcess, StartupError, free_port, wait_until
from genbus.devstack.processes import group_members, pid_alive

pytestmark = pytest.mark.integration

PY = sys.executable

WITH_CHILD = """
import signal, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
print(f"child {child.pid}", flush=True)
signal.pause()
"""

ESCAPED_CHILD = """
import signal, subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True
)
print(f"child {child.pid}", flush=True)
signal.pause()
"""

IGNORES_SIGTERM = """
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
signal.pause()
"""


def child_pid(log: Path) -> int:
    """Wait for the "child <pid>" line the script prints."""
    found: list[int] = []

    def printed() -> bool:
        for line in log.read_text().splitlines() if log.exists() else []:
            if line.startswith("child "):
                found.append(int(line.split()[1]))
                return True
        return False

    wait_until(printed, 10, description="child pid printed")
    return found[0]


def test_stop_ends_the_whole_process_group(base_dir: Path) -> None:
    log = base_dir / "svc.log"
    svc = ServiceProcess("svc", [PY, "-c", WITH_CHILD], log_path=log)
    svc.start()
    assert svc.pid is not None
    pgid = svc.pid
    child = child_pid(log)
    assert group_members(pgid) == {svc.pid, child}

    svc.stop(timeout=5)

    assert not pid_alive(pgid)
    assert not pid_alive(child)
    assert group_members(pgid) == set()
    assert svc.returncode is not None
    assert not svc.is_running()


def test_stop_escalates_to_sigkill_and_reaches_children_outside_the_group(base_dir: Path) -> None:
    log = base_dir / "stubborn.log"
    svc = ServiceProcess("stubborn", [PY, "-c", IGNORES_SIGTERM], log_path=log)
    svc.start()
    wait_until(lambda: "ready" in log.read_text().splitlines(), 10, description="ready printed")
    started = time.monotonic()
    svc.stop(timeout=0.3)
    assert svc.returncode == -9
    assert time.monotonic() - started < 5

    log2 = base_dir / "escaped.log"
    svc2 = ServiceProcess("escaped", [PY, "-c", ESCAPED_CHILD], log_path=log2)
    svc2.start()
    child = child_pid(log2)
    svc2.stop(timeout=0.3)
    assert not pid_alive(child)


def test_output_is_forwarded_with_a_fixed_width_prefix(
    base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    out = io.StringIO()
    script = "import sys; print('hello'); print('oops', file=sys.stderr)"
    svc = ServiceProcess("api", [PY, "-c", script], output=out, prefix_width=10)
    svc.start()
    assert svc.wait(timeout=10) == 0
    lines = out.getvalue().splitlines()
    assert sorted(lines) == ["api        | hello", "api        | oops"]
    assert svc.log_tail() in ("hello\noops", "oops\nhello")


def test_wait_http_ok_restart_and_kill(base_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    argv = [PY, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(base_dir)]
    svc = ServiceProcess("web", argv, log_path=base_dir / "web.log")
    svc.start()
    try:
        assert svc.wait_http_ok(url, timeout=15).status_code == 200
        first = svc.pid
        svc.restart(timeout=5)
        assert svc.pid != first
        assert first is not None
        assert not pid_alive(first)
        assert svc.wait_http_ok(url, timeout=15).status_code == 200
        second = svc.pid
        svc.kill()
        assert svc.returncode == -9
        assert second is not None
        assert not pid_alive(second)
    finally:
        svc.stop()


def test_wait_http_ok_fails_fast_when_the_process_exits(base_dir: Path) -> None:
    script = "import sys; print('bad config'); sys.exit(3)"
    svc = ServiceProcess("broken", [PY, "-c", script], log_path=base_dir / "broken.log")
    svc.start()
    started = time.monotonic()
    with pytest.raises(StartupError, match=r"exited with 3(.|\n)*bad config"):
        svc.wait_http_ok(f"http://127.0.0.1:{free_port()}/", timeout=30)
    assert time.monotonic() - started < 10
    svc.stop()


def test_pause_freezes_the_process_until_resume_and_stop_still_works(base_dir: Path) -> None:
    log = base_dir / "paused.log"
    svc = ServiceProcess("paused", [PY, "-c", WITH_CHILD], log_path=log)
    svc.start()
    try:
        assert svc.pid is not None
        child = child_pid(log)
        svc.pause()
        assert svc.paused
        assert psutil.Process(svc.pid).status() == psutil.STATUS_STOPPED
        # Only the process itself: its children run on.
        assert psutil.Process(child).status() != psutil.STATUS_STOPPED
        svc.resume()
        assert not svc.paused
        assert psutil.Process(svc.pid).status() != psutil.STATUS_STOPPED

        svc.pause()
        started = time.monotonic()
        svc.stop(timeout=5)  # resumed first, so SIGTERM ends it: no SIGKILL after the timeout
        assert svc.returncode == -15
        assert time.monotonic() - started < 4
        assert not svc.paused
    finally:
        svc.stop()

"""What the command-line tools stand on: the connection facts file, one-line failures, and an
idle consumer fetch that is not logged as an error."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from genbus.runtime.connection import env_with_facts, read_facts, write_facts
from genbus.runtime.failures import one_line_failure, redacted_url
from genbus.runtime.logging import ExpectedFetchTimeout


def test_facts_are_private_and_fill_only_what_the_environment_lacks(tmp_path: Path) -> None:
    path = tmp_path / "connection.json"
    write_facts(path, {"nats_url": "nats://127.0.0.1:4999", "admin_token": "t" * 40})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = {"GENBUS_CONNECTION_FILE": str(path), "NATS_URL": "nats://set-by-env:4222"}
    filled = env_with_facts(env)
    assert filled["NATS_URL"] == "nats://set-by-env:4222"
    assert filled["GENBUS_ADMIN_TOKEN"] == "t" * 40
    # The local dir is found from GENBUS_LOCAL_DIR too; an empty file setting reads nothing.
    assert read_facts({"GENBUS_LOCAL_DIR": str(tmp_path)})["nats_url"] == "nats://127.0.0.1:4999"
    assert read_facts({"GENBUS_CONNECTION_FILE": ""}) == {}
    path.write_text("not json")
    assert read_facts({"GENBUS_CONNECTION_FILE": str(path)}) == {}
    with pytest.raises(ValueError, match="unknown"):
        write_facts(path, {"password": "x"})


def test_a_failure_is_one_line_without_the_password() -> None:
    error = ConnectionRefusedError(111, "Connect call failed\n('127.0.0.1', 5999)")
    line = one_line_failure(error, "Postgres", "postgresql://app:hunter2@127.0.0.1:5999/genbus")
    assert "\n" not in line
    assert "hunter2" not in line
    assert line.startswith("cannot reach Postgres at postgresql://app:***@127.0.0.1:5999/genbus")
    assert "ConnectionRefusedError" in line
    assert redacted_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def _record(exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "genbus.faststream",
        logging.ERROR,
        __file__,
        1,
        "Task-26 raised an exception, retrying...\nIf this behavior causes issues ...",
        None,
        (type(exc), exc, None),
    )


def test_an_idle_fetch_timeout_is_one_info_line_and_other_errors_stay() -> None:
    timeout = _record(TimeoutError())
    assert ExpectedFetchTimeout().filter(timeout)
    assert (timeout.levelno, timeout.levelname, timeout.exc_info) == (logging.INFO, "INFO", None)
    assert "\n" not in timeout.getMessage()

    broken = _record(ValueError("a real bug"))
    assert ExpectedFetchTimeout().filter(broken)
    assert broken.levelno == logging.ERROR
    assert broken.exc_info is not None


_SERVICE_LOGGING = """
import logging
import nats.errors
from genbus.runtime.logging import configure_logging

configure_logging("test", "json", "INFO")
try:
    raise nats.errors.TimeoutError
except TimeoutError as exc:
    logging.getLogger("genbus.faststream").error(
        "Task-7 raised an exception, retrying...", exc_info=exc
    )
"""


def test_the_configured_logging_renders_the_fetch_timeout_as_info() -> None:
    # In a process of its own: configuring logging here would change this session's logging.
    result = subprocess.run(
        [sys.executable, "-c", _SERVICE_LOGGING],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [line] = result.stdout.splitlines()
    rendered = json.loads(line)
    assert rendered["level"] == "info"
    assert "exception" not in rendered
    assert "Traceback" not in result.stdout + result.stderr

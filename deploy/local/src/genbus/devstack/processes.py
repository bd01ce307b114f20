"""Service processes: a service (api, dispatcher, ...) with its output forwarded line by line to
our stdout behind a coloured, fixed-width `name |` prefix (like foreman/honcho), or to a log file.

The primitives they are built on (`spawn`, `stop_process`, `kill_process`, ...) are in
`process_control`, re-exported here.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TextIO

import httpx

from genbus.devstack.process_control import (
    DevstackError,
    StartupError,
    descendants,
    exit_status,
    group_members,
    is_stopped,
    kill_process,
    pid_alive,
    running,
    signal_pid,
    spawn,
    stop_process,
    wait_until,
)

__all__ = [
    "DevstackError",
    "ServiceProcess",
    "StartupError",
    "descendants",
    "exit_status",
    "group_members",
    "kill_process",
    "open_log",
    "pid_alive",
    "running",
    "spawn",
    "stop_process",
    "tail",
    "wait_http_ok",
    "wait_until",
]


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def open_log(path: Path, header: str) -> IO[bytes]:
    """Open a log file for appending (creating its directory) and write a start marker line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = path.open("ab")
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    f.write(f"--- {stamp} {header}\n".encode())
    f.flush()
    return f


# --------------------------------------------------------------------------------------------------
# Services

_OUTPUT_LOCK = threading.Lock()
_COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
_colour_cycle = itertools.cycle(_COLOURS)


def _use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ServiceProcess:
    """A service run as a child process in its own process group.

    Output goes line by line to `output` (default: our stdout, resolved per line) prefixed with
    `log_prefix` padded to `prefix_width`, or to `log_path` when given (tests). `env` is laid
    over our environment (or replaces it when `inherit_env=False`); PYTHONUNBUFFERED=1 is set
    unless given.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        log_prefix: str | None = None,
        *,
        log_path: Path | None = None,
        cwd: Path | None = None,
        inherit_env: bool = True,
        stop_timeout: float = 10.0,
        stop_signal: int = signal.SIGTERM,
        output: TextIO | None = None,
        colour: str | None = None,
        prefix_width: int | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env or {})
        self.log_prefix = log_prefix if log_prefix is not None else name
        self.log_path = log_path
        self.cwd = cwd
        self.inherit_env = inherit_env
        self.stop_timeout = stop_timeout
        self.stop_signal = stop_signal
        self.output = output
        self.colour = colour if colour is not None else next(_colour_cycle)
        self.prefix_width = prefix_width if prefix_width is not None else len(self.log_prefix)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._recent: collections.deque[str] = collections.deque(maxlen=200)
        self._paused = False

    # -- state

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return exit_status(self._proc) if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and running(self._proc)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is not None:
            return tail(self.log_path, lines)
        return "\n".join(list(self._recent)[-lines:])

    # -- lifecycle

    def start(self) -> None:
        if self.is_running():
            raise DevstackError(f"{self.name} is already running (pid {self.pid})")
        env = dict(os.environ) if self.inherit_env else {}
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.env)
        self._recent.clear()
        self._paused = False
        if self.log_path is not None:
            with open_log(self.log_path, f"start {self.name}: {self.argv}") as log:
                self._proc = spawn(self.argv, env=env, cwd=self.cwd, stdout=log)
            return
        self._proc = spawn(self.argv, env=env, cwd=self.cwd, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        self._reader = threading.Thread(
            target=self._forward, args=(self._proc.stdout,), name=f"log-{self.name}", daemon=True
        )
        self._reader.start()

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM (or `stop_signal`) to the process group; SIGKILL after `timeout`.

        A paused process is resumed first, so that it can act on the signal."""
        if self._proc is None:
            return
        if self._paused:
            self.resume()
        try:
            stop_process(
                self._proc,
                timeout=self.stop_timeout if timeout is None else timeout,
                sig=self.stop_signal,
            )
        finally:
            self._join_reader()

    def kill(self) -> None:
        """SIGKILL the process group now (fault injection)."""
        if self._proc is None:
            return
        self._paused = False
        try:
            kill_process(self._proc)
        finally:
            self._join_reader()

    def pause(self) -> None:
        """SIGSTOP the process (by its own PID, not its group): it holds its sockets, leases and
        connections but runs nothing until `resume` (fault injection: a frozen VM, a GC pause)."""
        proc = self._proc
        if proc is None or not running(proc):
            raise DevstackError(f"{self.name} is not running")
        signal_pid(proc.pid, signal.SIGSTOP)
        self._paused = True
        # Signals are delivered asynchronously: return once it is frozen.
        wait_until(
            lambda: not running(proc) or is_stopped(proc.pid),
            5.0,
            description=f"{self.name} stops",
            interval=0.01,
        )

    def resume(self) -> None:
        """SIGCONT a process `pause` stopped; returns once it runs again."""
        proc = self._proc
        self._paused = False
        if proc is None or not running(proc):
            return
        signal_pid(proc.pid, signal.SIGCONT)
        wait_until(
            lambda: not running(proc) or not is_stopped(proc.pid),
            5.0,
            description=f"{self.name} continues",
            interval=0.01,
        )

    @property
    def paused(self) -> bool:
        return self._paused

    def restart(self, timeout: float | None = None) -> None:
        self.stop(timeout)
        self.start()

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the process to exit by itself, clean up what it left in its group, return
        its exit code. Raises `TimeoutError` if it is still running after `timeout`."""
        proc = self._proc
        if proc is None:
            raise DevstackError(f"{self.name} was never started")
        wait_until(lambda: not running(proc), timeout, description=f"{self.name} exits")
        self.stop()
        return int(proc.returncode)

    def wait_http_ok(self, url: str, timeout: float = 30.0) -> httpx.Response:
        """Poll `url` until it answers 2xx; fail early if this process exits."""
        return wait_http_ok(url, timeout, process=self)

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- output

    def _forward(self, stream: IO[bytes]) -> None:
        out = self.output
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._recent.append(line)
                target = out if out is not None else sys.stdout
                prefix = f"{self.log_prefix:<{self.prefix_width}} |"
                if _use_colour(target):
                    prefix = f"\x1b[{self.colour}m{prefix}\x1b[0m"
                with _OUTPUT_LOCK:
                    try:
                        target.write(f"{prefix} {line}\n")
                        target.flush()
                    except (ValueError, OSError):  # our stdout is gone; keep draining the pipe
                        pass

    def _join_reader(self) -> None:
        if self._reader is not None:
            # EOF arrives once every process holding the pipe has exited.
            self._reader.join(timeout=5.0)
            self._reader = None


def wait_http_ok(
    url: str,
    timeout: float = 30.0,
    *,
    process: ServiceProcess | None = None,
    ok: Callable[[httpx.Response], bool] | None = None,
) -> httpx.Response:
    """Poll `url` with GET until `ok(response)` (default: 2xx) or the deadline.

    Connection errors count as "not yet". When `process` is given and exits, raise `StartupError`
    with its last output instead of waiting out the timeout.
    """
    accept = ok if ok is not None else (lambda r: r.is_success)
    result: list[httpx.Response] = []

    def check() -> bool:
        try:
            response = client.get(url)
        except httpx.TransportError:
            return False
        if accept(response):
            result.append(response)
            return True
        return False

    def exited() -> str | None:
        if process is None or process.is_running():
            return None
        return f"{process.name} exited with {process.returncode}:\n{process.log_tail()}"

    with httpx.Client(timeout=2.0) as client:
        wait_until(check, timeout, description=f"GET {url}", interval=0.1, abort=exited)
    return result[0]

"""Child processes we own: start in their own session, end only by PID / process group.

Two layers:

- `spawn`, `stop_process`, `kill_process`: the primitives NATS, Postgres and services share.
- `ServiceProcess`: a service (api, dispatcher, ...) with its output forwarded line by line to our
  stdout behind a coloured, fixed-width `name |` prefix (like foreman/honcho), or to a log file.

Nothing here ever looks processes up by name. Zombies (exited, not yet reaped; this machine's init
does not reap orphans) count as gone.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TextIO

import httpx
import psutil


class DevstackError(RuntimeError):
    """Something in the local stack could not be started or stopped."""


class StartupError(DevstackError):
    """A process did not become ready; the message carries the tail of its log."""


# --------------------------------------------------------------------------------------------------
# Waiting on conditions (never on time alone)


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    *,
    description: str,
    interval: float = 0.1,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Poll `condition` until it is true, with a short backoff (10 ms doubling to `interval`).

    `abort` is checked between polls; a non-None return (a reason) raises `StartupError` at once,
    e.g. when the process we wait for has exited. Raises `TimeoutError` at the deadline.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if condition():
            return
        if abort is not None:
            reason = abort()
            if reason is not None:
                raise StartupError(f"{description}: {reason}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{description}: not done after {timeout:.1f}s")
        time.sleep(min(delay, interval, remaining))
        delay *= 2


# --------------------------------------------------------------------------------------------------
# PID-level primitives


def pid_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def group_members(pgid: int) -> set[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    members: set[int] = set()
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and pid_alive(pid):
                members.add(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def descendants(pid: int) -> set[int]:
    """Live descendants of `pid` (they may have left its process group, e.g. Postgres children)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return set()
    return {child.pid for child in children if pid_alive(child.pid)}


def _stopped(pid: int) -> bool:
    """True when `pid` is stopped by a signal (SIGSTOP), False when it runs or is gone."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_STOPPED)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# Everything spawned and not yet reaped; killed at interpreter exit as a safety net.
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: int | IO[bytes] | None = None,
    user: int | None = None,
    group: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session (so its process group id is its PID).

    stderr goes to the same place as stdout. When `user` is given (we are root), the child drops
    to that uid/gid and loses our supplementary groups.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
        user=user,
        group=group,
        extra_groups=[] if user is not None else None,
    )
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def exit_status(proc: subprocess.Popen[bytes]) -> int | None:
    """`proc`'s exit code (negative signal number if killed) once it has exited, else None.

    Unlike `Popen.poll()` this does not reap it: an exited leader stays a zombie until
    `stop_process` / `kill_process` has dealt with its process group, so its PID (which is the
    group id) cannot be reused by an unrelated process in the meantime.
    """
    if proc.returncode is not None:
        return proc.returncode
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped behind our back
        return proc.poll()
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def running(proc: subprocess.Popen[bytes]) -> bool:
    """True until `proc` exits (without reaping it, see `exit_status`)."""
    return exit_status(proc) is None


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(proc)


def _wait_gone(pids: Callable[[], set[int]], timeout: float) -> set[int]:
    """Wait until `pids()` is empty or the timeout passes; return what is left."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not pids(), timeout, description="processes exit", interval=0.05)
    return pids()


def _reap(proc: subprocess.Popen[bytes], leftovers: set[int]) -> int:
    try:
        code = proc.wait(10.0)
    except subprocess.TimeoutExpired as exc:
        raise DevstackError(f"process {proc.pid} did not exit after SIGKILL") from exc
    _forget(proc)
    if leftovers:
        raise DevstackError(f"processes {sorted(leftovers)} survived SIGKILL")
    return code


def kill_process(
    proc: subprocess.Popen[bytes], *, timeout: float = 10.0, also: set[int] | None = None
) -> int:
    """SIGKILL `proc`, its process group, all its descendants and the PIDs in `also` (descendants
    seen earlier that may have been orphaned since); reap it; return its exit code.

    The leader is first stopped (SIGSTOP) so it cannot fork while we collect its descendants:
    Postgres children put themselves in their own process groups, so the group alone is not enough.
    """
    if proc.returncode is not None:  # reaped earlier: its group id may belong to others now
        _forget(proc)
        return proc.returncode
    pgid = proc.pid  # still ours: the leader is not reaped yet
    if running(proc):
        _signal_pid(proc.pid, signal.SIGSTOP)
    tree = descendants(proc.pid) | {p for p in also or () if pid_alive(p)}
    _signal_group(pgid, signal.SIGKILL)
    _signal_pid(proc.pid, signal.SIGKILL)
    for pid in tree:
        _signal_pid(pid, signal.SIGKILL)
    left = _wait_gone(lambda: group_members(pgid) | {p for p in tree if pid_alive(p)}, timeout)
    return _reap(proc, left)


def stop_process(
    proc: subprocess.Popen[bytes],
    *,
    timeout: float = 10.0,
    sig: int = signal.SIGTERM,
    whole_group: bool = True,
) -> int:
    """Graceful stop: send `sig` (to the whole group, or to the leader only when the leader stops
    its own children, like the Postgres postmaster), wait up to `timeout` for the leader, its group
    and its descendants to exit, then SIGKILL whatever is left. Reaps the leader last and returns
    its exit code."""
    if proc.returncode is not None:
        _forget(proc)
        return proc.returncode
    pgid = proc.pid
    leader_running = running(proc)
    tree = descendants(proc.pid) if leader_running else set()
    if whole_group:
        _signal_group(pgid, sig)
    elif leader_running:
        _signal_pid(proc.pid, sig)

    def left() -> set[int]:
        alive = group_members(pgid) | {p for p in tree if pid_alive(p)}
        if running(proc):
            alive.add(proc.pid)
        return alive

    if _wait_gone(left, timeout):
        return kill_process(proc, also=tree)
    return _reap(proc, set())


@atexit.register
def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        with contextlib.suppress(Exception):
            kill_process(proc, timeout=2.0)


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
        _signal_pid(proc.pid, signal.SIGSTOP)
        self._paused = True
        # Signals are delivered asynchronously: return once it is frozen.
        wait_until(
            lambda: not running(proc) or _stopped(proc.pid),
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
        _signal_pid(proc.pid, signal.SIGCONT)
        wait_until(
            lambda: not running(proc) or not _stopped(proc.pid),
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

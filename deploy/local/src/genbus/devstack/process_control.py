"""Process primitives NATS, Postgres and services share: spawn in a session of its own, stop
or kill by PID and process group, wait for a condition.

Nothing here ever looks processes up by name. Zombies (exited, not yet reaped; this machine's init
does not reap orphans) count as gone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Self

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


def is_stopped(pid: int) -> bool:
    """True when `pid` is stopped by a signal (SIGSTOP), False when it runs or is gone."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_STOPPED)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def signal_pid(pid: int, sig: int) -> None:
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
        signal_pid(proc.pid, signal.SIGSTOP)
    tree = descendants(proc.pid) | {p for p in also or () if pid_alive(p)}
    _signal_group(pgid, signal.SIGKILL)
    signal_pid(proc.pid, signal.SIGKILL)
    for pid in tree:
        signal_pid(pid, signal.SIGKILL)
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
        signal_pid(proc.pid, sig)

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


class OwnedServer:
    """A server process we started (`start()` sets `_proc`): its pid, whether it runs, a clean
    stop (SIGTERM, SIGKILL after `timeout`), a kill now (fault injection), and `with`."""

    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and running(self._proc)

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            stop_process(self._proc, timeout=timeout, sig=signal.SIGTERM)

    def kill(self) -> None:
        if self._proc is not None:
            kill_process(self._proc)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

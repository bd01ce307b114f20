"""genbus.devstack: local NATS + Postgres and service processes for `make run` and the tests."""

from genbus.devstack.nats import NatsConfig, NatsServer, find_nats_server, nats_server_argv
from genbus.devstack.ports import free_port, free_ports
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.processes import (
    DevstackError,
    ServiceProcess,
    StartupError,
    wait_http_ok,
    wait_until,
)
from genbus.devstack.stack import Component, LocalInfra, Stack, default_base_dir

__all__ = [
    "Component",
    "DevstackError",
    "LocalInfra",
    "NatsConfig",
    "NatsServer",
    "PostgresServer",
    "ServiceProcess",
    "Stack",
    "StartupError",
    "default_base_dir",
    "find_nats_server",
    "free_port",
    "free_ports",
    "nats_server_argv",
    "wait_http_ok",
    "wait_until",
]

"""The whole genbus system as local processes: sim provider, api, dispatcher, poller and
(when asked for: `replicas["webhooks"]`) the webhooks service.

`make run` and the end-to-end and fault suites use this one composition, so what the tests
prove is what a developer runs.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from genbus.contracts.permissions import OPERATOR, PROVISIONER
from genbus.devstack.nats_security import NatsSecurity
from genbus.devstack.ports import free_port
from genbus.devstack.processes import ServiceProcess, StartupError, wait_http_ok
from genbus.devstack.stack import Stack


@dataclass(frozen=True)
class AccountSeed:
    """A provider account `make run` and the tests register (credentials come from the env)."""

    label: str
    api_key: str
    max_concurrent: int
    provider_id: str = "sim"
    priority: int = 0


DEFAULT_ACCOUNTS = (
    AccountSeed("sim-1", "sim-key-1", max_concurrent=4),
    AccountSeed("sim-2", "sim-key-2", max_concurrent=4),
    # The sim also speaks Pixverse's API at the same base URL, so the real Pixverse adapter
    # runs end to end locally: `provider_id: "pixverse"` is served by these (simulated) accounts.
    AccountSeed("pixverse-sim-1", "sim-key-3", max_concurrent=4, provider_id="pixverse"),
    AccountSeed("pixverse-sim-2", "sim-key-4", max_concurrent=4, provider_id="pixverse"),
)


def new_credentials_key() -> str:
    """A random Fernet key (32 url-safe base64 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def new_admin_token() -> str:
    """A random token for the dispatcher's admin API."""
    return secrets.token_urlsafe(32)


#: Services started only when `SystemConfig.replicas` asks for them (default replicas: 0).
OPTIONAL_SERVICES = {"webhooks": 0}


@dataclass
class SystemConfig:
    base_dir: Path
    nats_url: str
    database_url: str
    api_port: int | None = None
    sim_port: int | None = None
    sim_env: Mapping[str, str] = field(default_factory=dict)
    accounts: tuple[AccountSeed, ...] = DEFAULT_ACCOUNTS
    #: Write each process's output to `<base_dir>/logs/<name>.log` instead of our stdout.
    log_to_files: bool = False
    log_format: str = "console"
    replicas: Mapping[str, int] = field(
        default_factory=lambda: {"api": 1, "dispatcher": 1, "poller": 1}
    )
    credentials_key: str = field(default_factory=new_credentials_key)
    #: Bearer token of the dispatcher's admin API (`genbus` CLI: GENBUS_ADMIN_TOKEN).
    admin_token: str = field(default_factory=new_admin_token)
    #: Port of the first dispatcher's probes and metrics; None: a free port.
    dispatcher_port: int | None = None
    #: Port of the first dispatcher's admin listener (admin API and console); None: a free port.
    admin_port: int | None = None
    #: Port of the first webhooks replica (management API, probes, metrics); None: a free port.
    webhooks_port: int | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Env of one service's processes, laid over the shared env (`extra_env` included): keyed by
    #: service ("poller": every poller replica) or by process name ("dispatcher-2": that replica
    #: only, applied after its service's entry). E.g. a poller with other credential keys.
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: The NATS server's users and CA (`NatsServer.security`): each service connects as its
    #: own user over TLS, provisioning runs as the provisioner. None: a server without auth.
    nats_security: NatsSecurity | None = None


class GenbusSystem(Stack):
    """Starts the sim, seeds accounts, then the services; stops them in reverse order."""

    name = "genbus"

    def __init__(self, config: SystemConfig) -> None:
        super().__init__()
        self.config = config
        #: Ports handed out to this system's processes: a port is never given twice (the
        #: kernel may offer a just-released port again).
        self._ports: set[int] = set()
        self.api_port = config.api_port or self._free_port()
        self.sim_port = config.sim_port or self._free_port()
        self.processes: dict[str, ServiceProcess] = {}
        self.sim = self._add("sim", [sys.executable, "-m", "genbus.provider_sim"], self._sim_env())
        for service in ("dispatcher", "poller", "webhooks", "api"):
            for index in range(config.replicas.get(service, OPTIONAL_SERVICES.get(service, 1))):
                self._add_service(service, index)
        # `replicas["api-consumers"]` > 0: the api's event consumers run as processes of their
        # own (`genbus-api consumers`) and the api processes serve HTTP only.
        for index in range(config.replicas.get("api-consumers", 0)):
            name = "api-consumers" if index == 0 else f"api-consumers-{index + 1}"
            env = {
                **self._env(self._free_port()),
                **self.nats_env("api"),
                **config.service_env.get(name, {}),
            }
            self._add(name, [sys.executable, "-m", "genbus.api", "consumers"], env)
            for process_name, process in self.processes.items():
                if process_name.split("-")[0] == "api" and "consumers" not in process_name:
                    process.env["GENBUS_API_ROLE"] = "http"

    def _add_service(self, service: str, index: int) -> ServiceProcess:
        name = service if index == 0 else f"{service}-{index + 1}"
        port = self.api_port if index == 0 and service == "api" else self._free_port()
        if index == 0 and service == "dispatcher" and self.config.dispatcher_port:
            port = self.config.dispatcher_port
        if index == 0 and service == "webhooks" and self.config.webhooks_port:
            port = self.config.webhooks_port
        env = {**self._env(port), **self.nats_env(service)}
        if service == "dispatcher":
            env["GENBUS_DISPATCHER_ADMIN_TOKEN"] = self.config.admin_token
            admin_port = self.config.admin_port if index == 0 else None
            env["GENBUS_DISPATCHER_ADMIN_PORT"] = str(admin_port or self._free_port())
            env.update(self._operator_env())
        if service == "webhooks":
            # Callers' keys are checked by asking the api who they belong to.
            env["GENBUS_WEBHOOKS_API_URL"] = self.api_url
        env.update(self.config.service_env.get(service, {}))
        if name != service:
            env.update(self.config.service_env.get(name, {}))
        return self._add(name, [sys.executable, "-m", f"genbus.{service}"], env)

    def _free_port(self) -> int:
        while (port := free_port()) in self._ports:
            continue
        self._ports.add(port)
        return port

    def add_replica(self, service: str) -> ServiceProcess:
        """One more replica of a worker service ("dispatcher-3", ...), not started: start it and
        wait for `<http_url(name)>/readyz`. `stop()` stops it with the rest."""
        if service not in ("dispatcher", "poller", "webhooks"):
            raise ValueError(f"only worker services get replicas this way, not {service!r}")
        index = sum(1 for name in self.processes if name.split("-")[0] == service)
        process = self._add_service(service, index)
        self.add(process)
        return process

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def webhooks_url(self) -> str:
        """The webhooks service's management API (`/api/v1/webhooks/...`), probes and metrics."""
        return self.http_url("webhooks")

    @property
    def admin_url(self) -> str:
        """The first dispatcher's admin API and console (`genbus` CLI: GENBUS_ADMIN_URL)."""
        return self.admin_url_of("dispatcher")

    def admin_url_of(self, name: str) -> str:
        """A dispatcher process's admin listener (its admin API and `/console`)."""
        return f"http://127.0.0.1:{self.processes[name].env['GENBUS_DISPATCHER_ADMIN_PORT']}"

    def service_env(self) -> dict[str, str]:
        """What every genbus process needs to find NATS, Postgres and its secrets."""
        return {
            "NATS_URL": self.config.nats_url,
            "DATABASE_URL": self.config.database_url,
            "GENBUS_CREDENTIALS_KEYS": self.config.credentials_key,
            "GENBUS_LOG_FORMAT": self.config.log_format,
            # Local providers (the sim) are plain http on loopback; console cookies not Secure.
            "GENBUS_DISPATCHER_DEVELOPMENT": "true",
            "GENBUS_DISPATCHER_ALLOW_PRIVATE_BASE_URLS": "true",
            **self.config.extra_env,
        }

    def _operator_env(self) -> dict[str, str]:
        """The dispatcher's admin listener connects as the `operator` (console, dead letters)."""
        security = self.config.nats_security
        if security is None:
            return {}
        return {
            "GENBUS_DISPATCHER_OPERATOR_NATS_USER": OPERATOR,
            "GENBUS_DISPATCHER_OPERATOR_NATS_PASSWORD": security.password(OPERATOR),
        }

    def nats_env(self, user: str) -> dict[str, str]:
        """The NATS identity and TLS settings of a process that connects as `user`."""
        security = self.config.nats_security
        return security.client_env(user) if security is not None else {}

    def nats_url_for(self, user: str) -> str:
        """`NATS_URL` with `user`'s credentials in each server URL (a secured server's)."""
        security = self.config.nats_security
        if security is None:
            return self.config.nats_url
        password = security.password(user)
        return ",".join(
            url.replace("://", f"://{user}:{password}@", 1)
            for url in self.config.nats_url.split(",")
        )

    def provision(self) -> None:
        """The privileged step before any service starts: streams, consumers, KV bucket."""
        result = subprocess.run(
            [sys.executable, "-m", "genbus.runtime.provision"],
            env={**os.environ, **self.service_env(), **self.nats_env(PROVISIONER)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise StartupError(f"provisioning NATS failed:\n{result.stderr}{result.stdout}")

    def _env(self, port: int) -> dict[str, str]:
        # The api serves on GENBUS_API_PORT; workers serve probes/metrics on GENBUS_HEALTH_PORT.
        return {**self.service_env(), "GENBUS_API_PORT": str(port), "GENBUS_HEALTH_PORT": str(port)}

    def http_url(self, name: str) -> str:
        """Base URL of a process's HTTP server (the API, or a worker's probes and metrics)."""
        return f"http://127.0.0.1:{self.processes[name].env['GENBUS_HEALTH_PORT']}"

    def _sim_env(self) -> dict[str, str]:
        keys = ",".join(sorted({a.api_key for a in self.config.accounts} | {"sim-key-1"}))
        return {"SIM_PORT": str(self.sim_port), "SIM_KEYS": keys, **self.config.sim_env}

    def _add(self, name: str, argv: list[str], env: dict[str, str]) -> ServiceProcess:
        log_path = (
            self.config.base_dir / "logs" / f"{name}.log" if self.config.log_to_files else None
        )
        process = ServiceProcess(
            name, argv, env, log_path=log_path, cwd=self.config.base_dir, prefix_width=12
        )
        self.processes[name] = process
        return process

    def start(self) -> None:
        self.config.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.sim.start()
            # Provisioning (NATS) and the migration (Postgres) need neither each other nor the
            # sim: they run while it starts.
            _all_at_once([self.provision, lambda: self.dispatcher_cli("migrate")])
            wait_http_ok(f"{self.sim_url}/_sim/stats", 30.0, process=self.sim)
            self.seed_accounts()
            for name, process in self.processes.items():
                if name != "sim":
                    process.start()
                    self.add(process)
            self.add(self.sim)
            for name, process in self.processes.items():
                if name != "sim":
                    wait_http_ok(f"{self.http_url(name)}/readyz", 60.0, process=process)
        except BaseException:
            self.stop_all()
            raise

    def stop_all(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def stop(self) -> None:
        self.stop_all()

    def dispatcher_cli(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run `genbus-dispatcher <args>` against this system; returns its stdout."""
        return self._service_cli("dispatcher", args, env)

    def api_cli(self, *args: str) -> str:
        """Run `genbus-api <args>` (e.g. `keys create`) against this system; returns its stdout."""
        return self._service_cli("api", args, None)

    def create_api_key(self, user_id: str, name: str) -> str:
        """A new API key for `user_id` (shown once; stored hashed)."""
        created = json.loads(self.api_cli("keys", "create", "--user", user_id, "--name", name))
        key: str = created["key"]
        return key

    def _service_cli(self, service: str, args: Sequence[str], env: Mapping[str, str] | None) -> str:
        result = subprocess.run(
            [sys.executable, "-m", f"genbus.{service}", *args],
            env={**os.environ, **self.service_env(), **self.nats_env(service), **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise StartupError(f"genbus-{service} {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def seed_accounts(self) -> None:
        """Every configured account, added through the accounts CLI (one process each, at once)."""
        _all_at_once([functools.partial(self._seed_account, a) for a in self.config.accounts])

    def _seed_account(self, account: AccountSeed) -> None:
        self.dispatcher_cli(
            "accounts",
            "add",
            "--provider",
            account.provider_id,
            "--label",
            account.label,
            "--max-concurrent",
            str(account.max_concurrent),
            "--priority",
            str(account.priority),
            "--base-url",
            self.sim_url,
            "--credential",
            "api_key=GENBUS_SEED_API_KEY",
            env={"GENBUS_SEED_API_KEY": account.api_key},
        )


def _all_at_once(steps: Sequence[Callable[[], object]]) -> None:
    """Run `steps` (each blocking on a process of its own) in parallel; the first error raises."""
    with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
        for future in [pool.submit(step) for step in steps]:
            future.result()

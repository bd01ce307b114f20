"""`genbus-dev`: the local launcher.

genbus-dev infra     start NATS + Postgres in .local/, print their URLs, run until Ctrl-C
genbus-dev run       the whole system: infra, sim provider, api, dispatcher, poller, webhooks
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from genbus.contracts.bindings import COMPLETED
from genbus.contracts.permissions import PROVISIONER, SUBSCRIBER, inbox_prefix
from genbus.devstack.first_screen import (
    RunFacts,
    first_screen,
    local_url,
    service_lines,
    write_connection_facts,
)
from genbus.devstack.processes import tail
from genbus.devstack.seaweed import local_object_store
from genbus.devstack.stack import LocalInfra, Stack
from genbus.devstack.system import (
    GenbusSystem,
    SystemConfig,
    new_admin_token,
    new_credentials_key,
)
from genbus.runtime.nats_client import NatsAccess
from genbus.runtime.provision import provision_blocking

#: Networks `make run`'s webhooks service may deliver to: receivers on this machine.
LOCAL_RECEIVERS = "127.0.0.0/8,::1"

_SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A shutdown signal arrived; unwinds through every `with` so everything gets stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def shutdown_on_signals() -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM/SIGHUP into `Interrupted`; ignore repeats so that a second
    Ctrl-C cannot interrupt the clean-up. Only the CLI installs this; the library never does."""
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _SHUTDOWN_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _say(message: str) -> None:
    print(f"genbus-dev | {message}", file=sys.stderr, flush=True)


def supervise(stack: Stack, poll_interval: float = 0.5) -> int:
    """Block until a shutdown signal (exit 0) or until a started component exits on its own
    (exit 1, with its log tail). The stack is stopped by the caller's `with`."""
    while True:
        dead = stack.not_running()
        if dead:
            for component in dead:
                _say(f"{component.name} exited unexpectedly")
                log_path = getattr(component, "log_path", None)
                if isinstance(log_path, Path):
                    print(tail(log_path), file=sys.stderr, flush=True)
            return 1
        time.sleep(poll_interval)  # supervision poll, interrupted at once by a signal


def cmd_infra(args: argparse.Namespace) -> int:
    infra = LocalInfra(
        args.dir,
        nats_port=args.nats_port,
        postgres_port=args.postgres_port,
        postgres_fast=args.fast,
        database=args.database,
    )
    try:
        with infra:
            env = infra.env()
            lines = [f"{key}={value}" for key, value in env.items()]
            if infra.components:
                (infra.base_dir / "env").write_text("\n".join(lines) + "\n")
            for line in lines:
                print(line, flush=True)
            if infra.nats is not None:
                _say(f"nats-server pid {infra.nats.pid}, log {infra.nats.log_path}")
                _provision(infra)
            if infra.postgres is not None:
                _say(f"postgres pid {infra.postgres.pid}, log {infra.postgres.log_path}")
            _say("ready; Ctrl-C to stop")
            return supervise(infra)
    except Interrupted as exc:
        _say(f"{exc}: stopped")
        return 0


def _provision(infra: LocalInfra) -> None:
    """Streams, consumers and the KV bucket, as the provisioner (services never create them)."""
    security = infra.nats_security
    if infra.nats is None or security is None:
        return
    access = NatsAccess(
        (infra.nats.url,), PROVISIONER, security.password(PROVISIONER), str(security.tls.ca_file)
    )
    provision_blocking(access)
    _say(f"NATS users and passwords (provisioner: full access): {security.users_file}")


def _nats_facts(infra: LocalInfra) -> dict[str, Any]:
    """The command-line tools' NATS user (the provisioner) and CA, and the subscriber role's
    URL with the `nats` command that follows completion events."""
    security = infra.nats_security
    if infra.nats is None or security is None:
        return {}
    url = infra.nats.url_for(SUBSCRIBER)
    ca = security.tls.ca_file
    return {
        "nats_user": PROVISIONER,
        "nats_password": security.password(PROVISIONER),
        "nats_tls_ca": str(ca),
        "subscriber_lines": (
            f"completion events (subscriber role): {url}  CA {ca}",
            f"  nats --server {url} --tlsca {ca} --inbox-prefix {inbox_prefix(SUBSCRIBER)} "
            f"sub '{COMPLETED.wildcard}'",
        ),
    }


def _credentials_key(base_dir: Path) -> str:
    """The local credentials key, made once and kept, so stored account secrets stay readable."""
    return _kept_secret(base_dir / "credentials.key", new_credentials_key)


def _kept_secret(path: Path, make: Callable[[], str]) -> str:
    """A secret made on first use and kept in `path` (mode 600), read back afterwards."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def cmd_run(args: argparse.Namespace) -> int:
    infra = LocalInfra(args.dir, database="genbus")
    try:
        with infra, local_object_store(infra.base_dir) as s3:
            credentials_key = _credentials_key(infra.base_dir)
            config = SystemConfig(
                base_dir=infra.base_dir / "run",
                nats_url=infra.nats_url,
                database_url=infra.database_url,
                api_port=args.api_port,
                sim_port=args.sim_port,
                credentials_key=credentials_key,
                admin_token=_kept_secret(infra.base_dir / "admin.token", new_admin_token),
                admin_port=args.admin_port,
                # Each service's output (library lines included) goes to its log file; the
                # terminal shows what a person needs (`first_screen`).
                log_to_files=True,
                log_format="console",
                # Local only: calls without an API key act as the local user, so the old
                # system's curl line works unchanged. Production keeps this off.
                extra_env={
                    "GENBUS_API_ALLOW_ANONYMOUS": "true",
                    **s3.env(),
                    # Outputs are copied into S3; the sim serves them on loopback.
                    "GENBUS_API_ARCHIVE_ENABLED": "true",
                    "GENBUS_API_ARCHIVE_ALLOW_NETWORKS": "127.0.0.0/8",
                    # Files stored once and used as inputs (`POST /api/v1/uploads`).
                    "GENBUS_API_UPLOAD_ENABLED": "true",
                },
                replicas={
                    "api": 1,
                    "dispatcher": 1,
                    "poller": 1,
                    "webhooks": 1,
                    "api-consumers": 1 if args.api_consumers else 0,
                },
                webhooks_port=args.webhooks_port,
                # Local only: webhook receivers on this machine may be registered.
                service_env={"webhooks": {"GENBUS_WEBHOOKS_ALLOW_NETWORKS": LOCAL_RECEIVERS}},
                nats_security=infra.nats_security,
            )
            _say(f"S3 (SeaweedFS) at {s3.endpoint_url}, bucket {s3.bucket}, log {s3.log_path}")
            _say("starting NATS, Postgres, the sim provider and the services ...")
            with GenbusSystem(config) as system:
                facts = RunFacts(
                    nats_url=infra.nats_url,
                    database_url=infra.database_url,
                    api_url=local_url(system.api_url),
                    admin_url=local_url(system.admin_url),
                    sim_url=local_url(system.sim_url),
                    webhooks_url=local_url(system.webhooks_url),
                    admin_token=config.admin_token,
                    credentials_key=credentials_key,
                    logs={
                        name: process.log_path
                        for name, process in system.processes.items()
                        if process.log_path is not None
                    },
                    **_nats_facts(infra),
                )
                facts_file = write_connection_facts(infra.base_dir, facts)
                pids = {name: process.pid for name, process in system.processes.items()}
                key = system.create_api_key("local", "make-run")
                for line in service_lines(facts, pids) + first_screen(facts, key, facts_file):
                    if line.startswith("  "):  # a command to copy: no prefix in the way
                        print(line.strip(), file=sys.stderr, flush=True)
                    else:
                        _say(line)
                return supervise(system)
    except Interrupted as exc:
        _say(f"{exc}: stopped")
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genbus-dev", description="genbus local launcher")
    commands = parser.add_subparsers(dest="command", required=True)

    infra = commands.add_parser(
        "infra",
        help="start NATS (JetStream) + Postgres, print NATS_URL / DATABASE_URL, run until Ctrl-C",
        description="A set NATS_URL / DATABASE_URL means that server is external and not started.",
    )
    infra.add_argument("--dir", type=Path, default=None, help="base dir (default <repo>/.local)")
    infra.add_argument("--nats-port", type=int, default=None, help="default: a free port")
    infra.add_argument("--postgres-port", type=int, default=None, help="default: a free port")
    infra.add_argument("--database", default=None, help="create this database and point to it")
    infra.add_argument(
        "--fast", action="store_true", help="Postgres without fsync (loses data on a crash)"
    )
    infra.set_defaults(func=cmd_infra)

    run = commands.add_parser(
        "run", help="infra + sim provider + api, dispatcher and poller, until Ctrl-C"
    )
    run.add_argument("--dir", type=Path, default=None, help="base dir (default <repo>/.local)")
    run.add_argument("--api-port", type=int, default=8000)
    run.add_argument("--sim-port", type=int, default=9100)
    run.add_argument(
        "--admin-port", type=int, default=8001, help="dispatcher admin API and web console"
    )
    run.add_argument(
        "--webhooks-port", type=int, default=8002, help="webhooks management API, probes, metrics"
    )
    run.add_argument(
        "--api-consumers",
        action="store_true",
        help="run the api's event consumers as a process of their own (genbus-api consumers) "
        "beside an HTTP-only api, as deployed; default: one api process runs both",
    )
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with shutdown_on_signals():
        try:
            code: int = args.func(args)
        except Interrupted as exc:  # arrived before or after the command's own handling
            _say(f"{exc}: stopped")
            code = 0
    return code


if __name__ == "__main__":
    sys.exit(main())

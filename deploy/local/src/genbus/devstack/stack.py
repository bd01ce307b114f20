"""Stacks of local processes: started in order, stopped in reverse order, always stopped.

`LocalInfra` is NATS + Postgres under one base directory (or external ones from `NATS_URL` /
`DATABASE_URL`). A later `run` command composes `Stack([infra, *services])`: the services stop
first, the infrastructure last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, Self, TypeVar, runtime_checkable

from genbus.devstack.nats import NatsSecurity, NatsServer
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.processes import DevstackError, ServiceProcess

_log = logging.getLogger(__name__)


@runtime_checkable
class Component(Protocol):
    """Anything a `Stack` can start and stop (servers, services, another stack)."""

    @property
    def name(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_running(self) -> bool: ...


C = TypeVar("C", bound=Component)


class Stack:
    """Components started in the given order and stopped in reverse order.

    If a start fails, whatever already started is stopped before the error propagates. `stop()`
    tries every component even when some fail, then raises the first failure. Use as a context
    manager (`with` / `async with`), or call `start()` / `stop()`.
    """

    name = "stack"

    def __init__(self, components: Iterable[Component] = ()) -> None:
        self.components: list[Component] = list(components)
        self._started: list[Component] = []

    def add(self, component: C) -> C:
        self.components.append(component)
        return component

    def start(self) -> None:
        self._align_prefixes()
        try:
            for component in self.components:
                if component in self._started:
                    continue
                component.start()
                self._started.append(component)
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop()
            raise

    def stop(self) -> None:
        errors: list[Exception] = []
        while self._started:
            component = self._started.pop()
            try:
                component.stop()
            except Exception as exc:
                _log.exception("stopping %s failed", component.name)
                errors.append(exc)
        if errors:
            raise DevstackError(f"{len(errors)} component(s) failed to stop") from errors[0]

    def is_running(self) -> bool:
        return bool(self._started) and not self.not_running()

    def not_running(self) -> list[Component]:
        """Components that were started and have since exited (crashed or were killed)."""
        return [c for c in self._started if not c.is_running()]

    def _align_prefixes(self) -> None:
        services = [c for c in self.components if isinstance(c, ServiceProcess)]
        width = max((len(s.log_prefix) for s in services), default=0)
        for service in services:
            service.prefix_width = max(service.prefix_width, width)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Starting blocks (subprocesses, readiness polls): run it in a thread. If we are cancelled
        # meanwhile, the thread cannot be interrupted: let it finish, then stop what it started.
        starting = asyncio.ensure_future(asyncio.to_thread(self.start))
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await starting
            await asyncio.to_thread(self.stop)
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.to_thread(self.stop)


def default_base_dir() -> Path:
    """`$GENBUS_LOCAL_DIR`, else `<repo>/.local` (the nearest ancestor of the working directory
    holding `uv.lock`), else `./.local`."""
    override = os.environ.get("GENBUS_LOCAL_DIR")
    if override:
        return Path(override).resolve()
    cwd = Path.cwd().resolve()
    for directory in (cwd, *cwd.parents):
        if (directory / "uv.lock").is_file() and (directory / "pyproject.toml").is_file():
            return directory / ".local"
    return cwd / ".local"


class LocalInfra(Stack):
    """NATS (JetStream) + Postgres for `make run` and tests, under `base_dir`.

    Layout: `<base>/nats/` (JetStream store), `<base>/nats.log`, `<base>/postgres/` (cluster),
    `<base>/postgres.log`. With `use_env` (default), a set `NATS_URL` / `DATABASE_URL` means that
    server is external: it is not started and its URL is used as is. `database` names a database
    to create (if missing) on the local Postgres; `database_url` then points to it.
    """

    name = "infra"

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        nats_url: str | None = None,
        database_url: str | None = None,
        use_env: bool = True,
        nats_port: int | None = None,
        postgres_port: int | None = None,
        postgres_fast: bool = False,
        database: str | None = None,
    ) -> None:
        super().__init__()
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else default_base_dir()
        if use_env:
            nats_url = nats_url or os.environ.get("NATS_URL") or None
            database_url = database_url or os.environ.get("DATABASE_URL") or None
        self._external_nats_url = nats_url
        self._external_database_url = database_url
        self.database = database
        self.nats: NatsServer | None = None
        self.postgres: PostgresServer | None = None
        if nats_url is None:
            self.nats = self.add(
                NatsServer(
                    self.base_dir / "nats",
                    port=nats_port,
                    log_path=self.base_dir / "nats.log",
                )
            )
        if database_url is None:
            self.postgres = self.add(
                PostgresServer(
                    self.base_dir / "postgres",
                    port=postgres_port,
                    fast=postgres_fast,
                    log_path=self.base_dir / "postgres.log",
                )
            )

    @property
    def nats_url(self) -> str:
        if self.nats is not None:
            return self.nats.url
        assert self._external_nats_url is not None
        return self._external_nats_url

    @property
    def database_url(self) -> str:
        if self.postgres is not None:
            return self.postgres.dsn_for(self.database or "postgres")
        assert self._external_database_url is not None
        return self._external_database_url

    @property
    def nats_security(self) -> NatsSecurity | None:
        """The local server's users and CA; None for an external server."""
        return self.nats.security if self.nats is not None else None

    def env(self) -> dict[str, str]:
        """The variables services read to find the infrastructure (and trust the local NATS)."""
        env = {"NATS_URL": self.nats_url, "DATABASE_URL": self.database_url}
        if self.nats_security is not None:
            env["GENBUS_NATS_TLS_CA"] = str(self.nats_security.tls.ca_file)
        return env

    def start(self) -> None:
        if self.components:
            self.base_dir.mkdir(parents=True, exist_ok=True)
        super().start()
        if self.postgres is not None and self.database is not None:
            try:
                self.postgres.create_database(self.database)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.stop()
                raise

    def is_running(self) -> bool:
        return not self.not_running()

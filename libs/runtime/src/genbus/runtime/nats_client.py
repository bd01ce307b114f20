"""How a process reaches NATS: servers, its own identity, TLS against the deployment's CA."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nats
from faststream.nats.security import NatsSecurity, NatsUserPassword
from nats.aio.client import Client

from genbus.contracts.permissions import inbox_prefix
from genbus.runtime.settings import RuntimeSettings


def nats_servers(nats_url: str) -> list[str]:
    """`NATS_URL` as a server list: one URL, or several comma-separated (a cluster's seeds)."""
    servers = [url.strip() for url in nats_url.split(",") if url.strip()]
    if not servers:
        raise ValueError("NATS_URL names no server")
    return servers


@dataclass(frozen=True)
class NatsAccess:
    """Servers, identity and TLS trust of one NATS client. `user` unset: the URL's, if any."""

    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    tls_ca: str | None = None

    @classmethod
    def from_settings(cls, settings: RuntimeSettings, nats_url: str | None = None) -> NatsAccess:
        password = settings.nats_password
        return cls(
            servers=tuple(nats_servers(nats_url or settings.nats_url)),
            user=settings.nats_user,
            password=password.get_secret_value() if password is not None else None,
            tls_ca=settings.nats_tls_ca,
        )

    @property
    def identity(self) -> str | None:
        """Who this client is: the explicit user, else the first URL's user."""
        return self.user or urlsplit(self.servers[0]).username

    def tls_context(self) -> ssl.SSLContext | None:
        """Verification of the server against `tls_ca`; None when no CA is configured."""
        if self.tls_ca is None:
            return None
        return ssl.create_default_context(cafile=self.tls_ca)

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for `nats.connect` (servers excluded)."""
        options: dict[str, Any] = {}
        if self.user is not None:
            options.update(user=self.user, password=self.password or "")
        context = self.tls_context()
        if context is not None:
            options["tls"] = context
        identity = self.identity
        if identity is not None:
            options["inbox_prefix"] = inbox_prefix(identity)
        return options

    def broker_options(self) -> dict[str, Any]:
        """Keyword arguments for a FastStream `NatsBroker` (servers excluded)."""
        context = self.tls_context()
        options: dict[str, Any] = {}
        if self.user is not None:
            options["security"] = NatsUserPassword(
                self.user, self.password or "", ssl_context=context, use_ssl=context is not None
            )
        elif context is not None:
            options["security"] = NatsSecurity(ssl_context=context, use_ssl=True)
        identity = self.identity
        if identity is not None:
            options["inbox_prefix"] = inbox_prefix(identity)
        return options


async def connect_nats(nats_url: str | Sequence[str] | None = None, **options: Any) -> Client:
    """A plain NATS client as this process's settings say (`GENBUS_NATS_*`), on `nats_url`
    (default `NATS_URL`; a list or comma-separated servers); `options` go to `nats.connect`
    over the derived ones."""
    if nats_url is not None and not isinstance(nats_url, str):
        nats_url = ",".join(nats_url)
    access = NatsAccess.from_settings(RuntimeSettings(), nats_url)
    return await nats.connect(list(access.servers), **{**access.connect_options(), **options})


def broker_access(nats_url: str) -> dict[str, Any]:
    """`NatsBroker` keyword arguments (identity, TLS, inbox) for `nats_url` as this process's
    settings say: `NatsBroker(url, **broker_access(url))`."""
    return NatsAccess.from_settings(RuntimeSettings(), nats_url).broker_options()

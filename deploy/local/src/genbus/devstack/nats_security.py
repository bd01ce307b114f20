"""Authentication and TLS of a local NATS server: users from the contracts, certs from `pki`.

Every identity of `genbus.contracts.permissions` gets a generated password, kept (owner-only)
in `<dir>/users.json` beside the certificates so a restarted server and its clients agree.
Cluster routes authenticate as `route` and use TLS both ways.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from genbus.contracts.nats_config import render_authorization
from genbus.contracts.permissions import all_permissions
from genbus.devstack.pki import TlsFiles, ensure_tls_files

ROUTE_USER = "route"
#: Tests set it so every server of one run shares a CA and passwords (and clients trust them).
PKI_DIR_ENV = "GENBUS_NATS_PKI_DIR"


@dataclass(frozen=True)
class NatsSecurity:
    """The certificates and user passwords one server (or cluster) and its clients share."""

    tls: TlsFiles
    passwords: Mapping[str, str]

    @classmethod
    def ensure(cls, directory: Path) -> NatsSecurity:
        """Certificates and passwords in `directory`, made when missing."""
        directory = Path(directory).resolve()
        tls = ensure_tls_files(directory)
        users_file = directory / "users.json"
        passwords: dict[str, str] = {}
        if users_file.is_file():
            passwords = dict(json.loads(users_file.read_text()))
        wanted = [p.user for p in all_permissions()] + [ROUTE_USER]
        missing = [user for user in wanted if user not in passwords]
        if missing:
            passwords.update({user: secrets.token_urlsafe(24) for user in missing})
            _write_private(users_file, json.dumps(passwords, indent=2))
        return cls(tls, passwords)

    @classmethod
    def default_for(cls, data_dir: Path) -> NatsSecurity:
        """The run's shared security (`GENBUS_NATS_PKI_DIR`), else one beside `data_dir`."""
        shared = os.environ.get(PKI_DIR_ENV)
        directory = Path(shared) if shared else data_dir.parent / f"{data_dir.name}-pki"
        return cls.ensure(directory)

    @property
    def users_file(self) -> Path:
        """Where the passwords are kept (owner-only)."""
        return self.tls.ca_file.parent / "users.json"

    def password(self, user: str) -> str:
        return self.passwords[user]

    def url(self, host: str, port: int, user: str | None = None) -> str:
        """`tls://` URL of one server, with `user`'s credentials when given."""
        auth = f"{user}:{self.password(user)}@" if user is not None else ""
        return f"tls://{auth}{host}:{port}"

    def client_env(self, user: str) -> dict[str, str]:
        """The settings (`GENBUS_NATS_*`) a process needs to connect as `user`."""
        return {
            "GENBUS_NATS_USER": user,
            "GENBUS_NATS_PASSWORD": self.password(user),
            "GENBUS_NATS_TLS_CA": str(self.tls.ca_file),
        }

    def server_config(
        self,
        *,
        cluster_name: str | None = None,
        cluster_listen: str | None = None,
        routes: Sequence[str] = (),
    ) -> str:
        """A nats-server config: TLS for clients, the users, and the cluster block if any.

        `routes` are `host:port` of the other members; they get the route credentials here.
        """
        tls = self._tls_block(verify=False)
        text = f"tls {tls}\n{render_authorization(self.passwords)}"
        if cluster_listen is not None:
            password = json.dumps(self.password(ROUTE_USER))
            route_urls = json.dumps(
                [f"nats-route://{ROUTE_USER}:{self.password(ROUTE_USER)}@{r}" for r in routes]
            )
            text += (
                "cluster {\n"
                f"  name: {json.dumps(cluster_name or 'genbus')}\n"
                f"  listen: {json.dumps(cluster_listen)}\n"
                f"  authorization {{ user: {ROUTE_USER}, password: {password} }}\n"
                f"  tls {self._tls_block(verify=True)}\n"
                f"  routes = {route_urls}\n"
                "}\n"
            )
        return text

    def _tls_block(self, *, verify: bool) -> str:
        return (
            f"{{ cert_file: {json.dumps(str(self.tls.cert_file))}, "
            f"key_file: {json.dumps(str(self.tls.key_file))}, "
            f"ca_file: {json.dumps(str(self.tls.ca_file))}, "
            f"verify: {'true' if verify else 'false'}, timeout: 5 }}"
        )


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def write_server_config(path: Path, text: str) -> Path:
    """Write a server config (it holds passwords: owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, text)
    return path

"""The `authorization` block of a nats-server config, rendered from the permissions.

A password is either given (a local server's generated one) or taken from the server's
environment (`$VAR`, as the Kubernetes NATS pods get them from a Secret).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from genbus.contracts.permissions import Permissions, all_permissions


def password_env(user: str) -> str:
    """The environment variable a server reads `user`'s password from."""
    return f"NATS_PASSWORD_{user.upper().replace('-', '_')}"


def _user_block(permissions: Permissions, password: str | None) -> str:
    secret = f"${password_env(permissions.user)}" if password is None else json.dumps(password)
    publish = json.dumps(list(permissions.publish))
    subscribe = json.dumps(list(permissions.subscribe))
    return (
        f"    {{user: {json.dumps(permissions.user)}, password: {secret}, permissions: {{\n"
        f"      publish: {{allow: {publish}}},\n"
        f"      subscribe: {{allow: {subscribe}}}\n"
        "    }}"
    )


def render_authorization(
    passwords: Mapping[str, str] | None = None,
    identities: Iterable[Permissions] | None = None,
) -> str:
    """Every identity as a user with its allow-lists; no anonymous access.

    `passwords` maps each user to its password; without it each password is read from the
    server's environment (`password_env(user)`).
    """
    users = [
        _user_block(p, None if passwords is None else passwords[p.user])
        for p in (identities if identities is not None else all_permissions())
    ]
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"

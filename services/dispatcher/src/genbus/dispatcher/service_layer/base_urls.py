"""Where an account may send its credentials: the rules on a provider account's `base_url`.

Outside development a base URL must be https; a host that is a private, loopback, link-local or
otherwise non-public address (or `localhost`) is refused unless explicitly allowed. Host names
are not resolved here: the rule catches literal addresses, the way an edited entry would aim a
key at an internal service.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class BaseUrlPolicy:
    #: Plain http allowed (development only).
    allow_http: bool = False
    #: Private, loopback and link-local hosts allowed (a provider on a local network).
    allow_private: bool = False


#: What the dispatcher accepts unless its settings say otherwise.
STRICT = BaseUrlPolicy()
#: Anything http(s): development and tests.
PERMISSIVE = BaseUrlPolicy(allow_http=True, allow_private=True)


def base_url_problem(url: str | None, policy: BaseUrlPolicy) -> str | None:
    """Why `url` is refused under `policy`, or None when it is acceptable."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" and not policy.allow_http:
        return "base_url must be https (plain http is allowed only in development)"
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return "base_url must name a host"
    if policy.allow_private:
        return None
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"base_url host {host!r} is local (allow private base URLs to use it)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return f"base_url host {host} is not a public address (allow private base URLs to use it)"
    return None

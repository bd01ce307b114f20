"""Where a webhook may be sent: the shared SSRF rules (`genbus.runtime.addresses`).

Checked at registration and again, after DNS resolution, before every attempt
(`GENBUS_WEBHOOKS_ALLOW_NETWORKS` allows e.g. `127.0.0.0/8` for a local receiver).
"""

from __future__ import annotations

from genbus.runtime.addresses import (
    SCHEMES,
    AddressPolicy,
    IpAddress,
    IpNetwork,
    Target,
    UrlRefused,
    literal_address,
)
from genbus.runtime.addresses import parse_url as _parse_url

__all__ = [
    "SCHEMES",
    "AddressPolicy",
    "IpAddress",
    "IpNetwork",
    "Target",
    "UrlRefused",
    "literal_address",
    "parse_url",
]

PURPOSE = "receive webhooks"


def parse_url(url: str) -> Target:
    """The scheme, host and port of a webhook URL; `UrlRefused("invalid_url")` otherwise."""
    return _parse_url(url, purpose=PURPOSE)
